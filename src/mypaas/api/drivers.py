"""REST routes of driver accounts (``/drivers``: the clouds `host create` makes machines in) and of the
hosts they make (``/hosts/create``, ``/hosts/{name}/destroy``). Secrets are never answered back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from mypaas.api.deps import User
from mypaas.manager.operations import op_dict
from mypaas.manager.platform import Platform


class DriverBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, description="the account's name, as `host create --driver` gives it")
    type: str = Field(max_length=64, description="the machine driver: vsphere, libvirt, openstack, ...")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="the driver's options (url, user, password, ...; see its OPTIONS); secret ones are "
        "stored encrypted and shown as ********",
    )


class DriverChangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    options: dict[str, Any] = Field(
        description="the options to change; an empty string removes one. The account is checked against "
        "its endpoint with them before they are kept"
    )


class CreateHostsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=63, description="the host's name (with count: NAME-1..NAME-N)")
    driver: str = Field(max_length=64, description="the driver account that makes the machine")
    size: str | None = Field(
        None, max_length=128, description="a size of `driver sizes` (default: the account's)"
    )
    image: str | None = Field(None, max_length=255, description="an image of `driver images`")
    labels: dict[str, str] = Field(default_factory=dict, description="node labels, for placement")
    count: int = Field(1, ge=1, le=50, description="how many hosts to make")


def driver_routes(v1: APIRouter, platform: Platform) -> None:
    accounts = platform.hosts.accounts

    @v1.get("/drivers", tags=["hosts"])
    def list_drivers(_: User) -> list[dict[str, Any]]:
        """Every driver account: its type, endpoint, options (secrets as ********), capabilities, hosts."""
        return accounts.list()

    @v1.post("/drivers", status_code=201, tags=["hosts"])
    def add_driver(body: DriverBody, _: User) -> dict[str, Any]:
        """Keep a driver account once its endpoint answered and took its credentials (nothing is kept
        otherwise): 400 for a wrong password or option, 502 for an endpoint that does not answer."""
        return accounts.add(body.name, body.type, body.options)

    @v1.get("/drivers/{name}", tags=["hosts"])
    def show_driver(name: str, _: User) -> dict[str, Any]:
        """One driver account (secrets as ********)."""
        return accounts.get(name)

    @v1.patch("/drivers/{name}", tags=["hosts"])
    def update_driver(name: str, body: DriverChangeBody, _: User) -> dict[str, Any]:
        """Change some options of a driver account (rotate its password, say): kept only once the
        endpoint took them (400 for a wrong password or option, 502 for no answer: nothing changed)."""
        return accounts.update(name, body.options)

    @v1.delete("/drivers/{name}", tags=["hosts"])
    def remove_driver(name: str, _: User) -> dict[str, Any]:
        """Forget a driver account; 409 while hosts it made exist (`host destroy` them first)."""
        accounts.remove(name)
        return {"removed": name}

    @v1.get("/drivers/{name}/sizes", tags=["hosts"])
    def driver_sizes(name: str, _: User) -> list[dict[str, Any]]:
        """The machine sizes the account offers (`host create --size`): CPUs, memory, disk."""
        return accounts.sizes(name)

    @v1.get("/drivers/{name}/images", tags=["hosts"])
    def driver_images(name: str, _: User) -> list[dict[str, Any]]:
        """The images (templates, base disks) the account offers (`host create --image`)."""
        return accounts.images(name)

    @v1.post("/hosts/create", status_code=202, tags=["hosts"])
    def create_hosts(body: CreateHostsBody, who: User) -> dict[str, Any]:
        """Make machines with a driver account, then bootstrap them and join them to the Swarm like an
        added host. Bad input (an unknown account, size or image, a name taken) is refused at once
        with nothing made; then 202 with one operation per host to follow."""
        op_ids = platform.hosts.create(
            body.name,
            account=body.driver,
            size=body.size,
            image=body.image,
            labels=body.labels,
            count=body.count,
            who=who.label,
        )
        return {"operations": [op_dict(platform.operations.get(op_id)) for op_id in op_ids]}

    @v1.post("/hosts/{name}/destroy", status_code=202, tags=["hosts"])
    def destroy_host(name: str, who: User, force: Annotated[bool, Query()] = False) -> dict[str, Any]:
        """Drain a host `host create` made, take it out of the Swarm, then delete its machine. An
        unreachable host needs ``force``; a host `host add` added is refused (409: `host rm` it)."""
        op_id = platform.hosts.remove(name, force=force, who=who.label, destroy=True)
        return op_dict(platform.operations.get(op_id))

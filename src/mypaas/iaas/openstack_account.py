"""The options of an ``openstack`` driver account, checked before the SDK is touched: a clouds.yaml
entry's auth (a password login scoped to a project, or an application credential), the tenant network,
an optional floating IP network, the default flavor and image, the key pair and security group names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mypaas.errors import InvalidSpec

OPTIONS: Mapping[str, str] = {
    "auth_url": "Keystone's URL, as in clouds.yaml (https://keystone.example.com:5000/v3)",
    "username": "the user to log in as (a password login)",
    "password": "that user's password (stored encrypted)",
    "project_name": "the project (tenant) the machines go in",
    "user_domain_name": "the user's domain (default: Default)",
    "project_domain_name": "the project's domain (default: Default)",
    "region_name": "the region (default: the catalog's only one)",
    "application_credential_id": "an application credential's id, instead of username/password",
    "application_credential_secret": "that application credential's secret (stored encrypted)",
    "network": "the tenant network the machines join (name or id)",
    "floating_network": "an external network: give each machine a floating IP from it (optional)",
    "flavor": "the default size (a flavor name or id)",
    "image": "the default image (a Glance image name or id)",
    "key_name": "the key pair made from the platform's SSH key (default: mypaas-ACCOUNT)",
    "security_group": "the security group made for the machines (default: mypaas-ACCOUNT)",
    "ssh_timeout": "seconds to wait for SSH once a machine is ACTIVE (default: 300)",
}
SECRET_OPTIONS: tuple[str, ...] = ("password", "application_credential_secret")


@dataclass(frozen=True)
class AccountOptions:
    """A driver account's options, checked: a clouds.yaml entry's auth (a password login scoped to a
    project, or an application credential) and where machines go."""

    auth_url: str
    network: str
    username: str | None = None
    password: str | None = None
    project_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str | None = None
    application_credential_id: str | None = None
    application_credential_secret: str | None = None
    floating_network: str | None = None
    flavor: str | None = None
    image: str | None = None
    key_name: str | None = None
    security_group: str | None = None
    ssh_timeout: float = 300.0
    api_timeout: float = 30.0

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> AccountOptions:
        unknown = sorted(set(options) - set(OPTIONS) - {"api_timeout"})
        if unknown:
            known = ", ".join(OPTIONS)
            raise InvalidSpec(f"unknown openstack option {unknown[0]!r}; options: {known}", field=unknown[0])
        values: dict[str, Any] = {k: v for k, v in options.items() if v not in (None, "")}
        for required in ("auth_url", "network"):
            if required not in values:
                raise InvalidSpec(f"the openstack driver needs the option {required}", field=required)
        for name in ("ssh_timeout", "api_timeout"):
            if name in values:
                values[name] = _seconds(values[name], name)
        parsed = cls(**{k: v if k.endswith("_timeout") else str(v) for k, v in values.items()})  # type: ignore[arg-type]
        parsed._check()
        return parsed

    def _check(self) -> None:
        if not self.auth_url.startswith(("http://", "https://")):
            raise InvalidSpec(f"auth_url {self.auth_url!r} is not an http(s) URL", field="auth_url")
        if self.application_credential_id is not None:
            if not self.application_credential_secret:
                raise InvalidSpec(
                    "an application credential needs its secret", field="application_credential_secret"
                )
            return
        for name in ("username", "password", "project_name"):
            if not getattr(self, name):
                raise InvalidSpec(
                    f"a password login needs {name} (or give an application credential)", field=name
                )

    @property
    def auth_type(self) -> str:
        return "password" if self.application_credential_id is None else "v3applicationcredential"

    def auth(self) -> dict[str, str]:
        """The keystoneauth plugin's arguments, as a clouds.yaml ``auth`` section holds them."""
        if self.application_credential_id is not None:
            return {
                "auth_url": self.auth_url,
                "application_credential_id": self.application_credential_id,
                "application_credential_secret": self.application_credential_secret or "",
            }
        return {
            "auth_url": self.auth_url,
            "username": self.username or "",
            "password": self.password or "",
            "project_name": self.project_name or "",
            "user_domain_name": self.user_domain_name,
            "project_domain_name": self.project_domain_name,
        }


def _seconds(value: Any, field: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise InvalidSpec(f"{field} {value!r} is not a number of seconds (1-3600)", field=field)
    return seconds

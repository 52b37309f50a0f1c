"""Routes of an app's secrets (`mypaas secrets ls|set|rm`): values go in base64, never come back out."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response

from mypaas.api.deps import User, in_thread, new_app_team
from mypaas.api.schemas import SecretBody
from mypaas.domain import MAX_SECRET_BYTES
from mypaas.errors import InvalidSpec
from mypaas.manager.platform import Platform

MAX_VALUES = 1000


def secret_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.get("/apps/{name}/secrets", tags=["secrets"])
    def list_secrets(name: str, _: User) -> list[dict[str, Any]]:
        """The app's secrets and configs (those of the release it runs, and those set with
        ``secrets set``): where each comes from, its digest and where it is mounted; values masked."""
        return platform.secrets.listing(name)

    @v1.put("/apps/{name}/secrets/{secret}", tags=["secrets"])
    async def set_secret(
        name: str, secret: str, body: SecretBody, who: User, request: Request, response: Response
    ) -> dict[str, Any]:
        """Set a secret that a compose file's ``external`` secrets refer to. A changed value makes a
        new release of a deployed app (202 with its operation); else 200."""
        value = decode(body.value, "value")
        answer: dict[str, Any] = await in_thread(
            platform.secrets.set, name, secret, value, who.label, new_app_team(request)
        )
        response.status_code = 202 if answer["operation"] else 200
        return answer

    @v1.delete("/apps/{name}/secrets/{secret}", status_code=204, tags=["secrets"])
    def remove_secret(name: str, secret: str, who: User) -> None:
        """Forget a secret set with ``secrets set`` (refused while the app's release mounts it)."""
        platform.secrets.remove(name, secret, who.label)


def decode_values(values: Mapping[str, str]) -> dict[str, bytes]:
    """The deploy body's ``secret_values``: base64 text -> bytes."""
    if len(values) > MAX_VALUES:
        raise InvalidSpec(f"at most {MAX_VALUES} secret and config values", field="secret_values")
    return {key: decode(text, f"secret_values.{key}") for key, text in values.items()}


def decode(text: str, field: str) -> bytes:
    if len(text) > (MAX_SECRET_BYTES + 2) // 3 * 4 + 4:
        raise InvalidSpec(f"{field}: at most {MAX_SECRET_BYTES // 1024} KiB", field=field)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSpec(f"{field} must be base64", field=field) from exc

"""The API client's calls about an app's releases, config vars, domains, secrets and the platform file
(a part of ApiClient, kept apart so that client.py stays small)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

if TYPE_CHECKING:
    import httpx

    from mypaas.cli.wire import Reply


def _seg(value: str) -> str:
    return quote(value, safe="")


class ReleaseCalls:
    """Mixed into ApiClient, which gives the plumbing (``_request``, ``_dict``, ``_list``)."""

    if TYPE_CHECKING:

        def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response | Reply: ...

        def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]: ...

        def _list(self, path: str, **kwargs: Any) -> list[Any]: ...

    def releases(self, name: str) -> list[dict[str, Any]]:
        return self._list(f"/api/v1/apps/{_seg(name)}/releases")

    def rollback(self, name: str, release: int | None = None) -> dict[str, Any]:
        return self._dict("POST", f"/api/v1/apps/{_seg(name)}/rollback", json={"release": release})

    def config(self, name: str) -> dict[str, str]:
        return cast(dict[str, str], self._dict("GET", f"/api/v1/apps/{_seg(name)}/config"))

    def set_config(self, name: str, set_: dict[str, str], unset: list[str]) -> dict[str, Any]:
        body = {"set": set_, "unset": unset}
        return self._dict("PATCH", f"/api/v1/apps/{_seg(name)}/config", json=body)

    def domains(self, name: str) -> list[str]:
        return self._list(f"/api/v1/apps/{_seg(name)}/domains")

    def add_domain(self, name: str, domain: str) -> dict[str, Any]:
        return self._dict("POST", f"/api/v1/apps/{_seg(name)}/domains", json={"domain": domain})

    def set_https(self, name: str, redirect: bool) -> dict[str, Any]:
        return self._dict("PUT", f"/api/v1/apps/{_seg(name)}/https", json={"redirect": redirect})

    def remove_domain(self, name: str, domain: str) -> None:
        self._request("DELETE", f"/api/v1/apps/{_seg(name)}/domains/{_seg(domain)}")

    def export_platform(
        self, apps: list[str], fmt: str = "mypaas", include_secrets: bool = False
    ) -> dict[str, str]:
        params: dict[str, Any] = {"app": apps, "format": fmt, "include_secrets": include_secrets}
        return cast(dict[str, str], self._dict("GET", "/api/v1/export", params=params))

    def apply_platform(
        self, document: str, *, prune: bool, dry_run: bool, name: str = "platform.yml"
    ) -> dict[str, Any]:
        body = {"document": document, "prune": prune, "dry_run": dry_run, "name": name}
        return self._dict("POST", "/api/v1/apply", json=body)

    def secrets(self, name: str) -> list[dict[str, Any]]:
        return self._list(f"/api/v1/apps/{_seg(name)}/secrets")

    def set_secret(self, name: str, secret: str, value: bytes, team: str | None = None) -> dict[str, Any]:
        body = {"value": base64.b64encode(value).decode("ascii")}
        path = f"/api/v1/apps/{_seg(name)}/secrets/{_seg(secret)}"
        return self._dict("PUT", path, json=body, params={"team": team} if team else {})

    def remove_secret(self, name: str, secret: str) -> None:
        self._request("DELETE", f"/api/v1/apps/{_seg(name)}/secrets/{_seg(secret)}")

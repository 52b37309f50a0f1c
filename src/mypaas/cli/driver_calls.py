"""The API client's calls about driver accounts and the hosts they make (a part of ApiClient, kept
apart so that client.py stays small)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

CHECK_TIMEOUT_S = 120.0  # `driver add` reaches the endpoint; `host create` lists sizes and images first


def _seg(value: str) -> str:
    return quote(value, safe="")


class DriverCalls:
    """Mixed into ApiClient, which gives the plumbing (``_dict``, ``_list``)."""

    if TYPE_CHECKING:

        def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]: ...

        def _list(self, path: str, **kwargs: Any) -> list[Any]: ...

    def drivers(self) -> list[dict[str, Any]]:
        return self._list("/api/v1/drivers")

    def add_driver(self, name: str, type_: str, options: dict[str, Any]) -> dict[str, Any]:
        body = {"name": name, "type": type_, "options": options}
        return self._dict("POST", "/api/v1/drivers", json=body, timeout=CHECK_TIMEOUT_S)

    def update_driver(self, name: str, options: dict[str, Any]) -> dict[str, Any]:
        body = {"options": options}
        return self._dict("PATCH", f"/api/v1/drivers/{_seg(name)}", json=body, timeout=CHECK_TIMEOUT_S)

    def remove_driver(self, name: str) -> dict[str, Any]:
        return self._dict("DELETE", f"/api/v1/drivers/{_seg(name)}")

    def driver_sizes(self, name: str) -> list[dict[str, Any]]:
        return self._list(f"/api/v1/drivers/{_seg(name)}/sizes", timeout=CHECK_TIMEOUT_S)

    def driver_images(self, name: str) -> list[dict[str, Any]]:
        return self._list(f"/api/v1/drivers/{_seg(name)}/images", timeout=CHECK_TIMEOUT_S)

    def create_hosts(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        answer = self._dict("POST", "/api/v1/hosts/create", json=body, timeout=CHECK_TIMEOUT_S)
        return list(answer.get("operations") or [])

    def destroy_host(self, name: str, *, force: bool = False) -> dict[str, Any]:
        params = {"force": "true"} if force else {}
        return self._dict(
            "POST", f"/api/v1/hosts/{_seg(name)}/destroy", params=params, timeout=CHECK_TIMEOUT_S
        )

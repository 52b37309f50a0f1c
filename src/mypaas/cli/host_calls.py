"""The API client's calls about hosts and the cluster (a part of ApiClient, kept apart so that client.py
stays small)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from mypaas.cli.limits import TIMEOUT_S
from mypaas.errors import Conflict, MyPaasError

if TYPE_CHECKING:
    import httpx


def _seg(value: str) -> str:
    return quote(value, safe="")


class HostKeyToConfirm(Conflict):
    """`host add` reached a host seen for the first time: confirm ``fingerprint``, then send it again."""

    def __init__(self, message: str, fingerprint: str) -> None:
        super().__init__(message, field="host_key")
        self.fingerprint = fingerprint


class HostCalls:
    """Mixed into ApiClient, which gives the plumbing (``_dict``, ``_list``, ``_http``, ``_check``...)."""

    if TYPE_CHECKING:

        @property
        def _http(self) -> httpx.Client: ...

        def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]: ...

        def _list(self, path: str, **kwargs: Any) -> list[Any]: ...

        def _check(self, response: httpx.Response) -> None: ...

        def _transport_error(self, exc: httpx.HTTPError) -> MyPaasError: ...

    # -- hosts and the cluster ------------------------------------------------------------------

    def hosts(self) -> list[dict[str, Any]]:
        return self._list("/api/v1/hosts")

    def add_host(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start adding a host; a host seen for the first time raises HostKeyToConfirm."""
        import httpx  # its 409 answer is read whole (cli/wire.py takes plain calls)

        try:  # the manager connects before it answers
            response = self._http.post("/api/v1/hosts", json=body, timeout=TIMEOUT_S + 30)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code == 409:
            try:
                data = response.json()
            except ValueError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("fingerprint"), str):
                raise HostKeyToConfirm(str(data.get("error", "")), data["fingerprint"])
        self._check(response)
        return cast(dict[str, Any], response.json())

    def host_action(self, name: str, action: str) -> dict[str, Any]:
        """``drain`` or ``activate`` the host."""
        return self._dict("POST", f"/api/v1/hosts/{_seg(name)}/{_seg(action)}")

    def label_host(self, name: str, set_: dict[str, str], remove: list[str]) -> dict[str, Any]:
        return self._dict("PATCH", f"/api/v1/hosts/{_seg(name)}/labels", json={"set": set_, "remove": remove})

    def remove_host(self, name: str, *, force: bool = False) -> dict[str, Any]:
        params = {"force": "true"} if force else {}
        return self._dict("DELETE", f"/api/v1/hosts/{_seg(name)}", params=params, timeout=TIMEOUT_S + 30)

    def cluster(self) -> dict[str, Any]:
        return self._dict("GET", "/api/v1/cluster")

    def init_cluster(self, advertise_addr: str | None) -> dict[str, Any]:
        body = {"advertise_addr": advertise_addr}
        return self._dict("POST", "/api/v1/cluster/init", json=body, timeout=TIMEOUT_S + 30)

    def migrate_cluster(self) -> list[dict[str, Any]]:
        ops = self._dict("POST", "/api/v1/cluster/migrate").get("operations") or []
        return [op for op in ops if isinstance(op, dict)]

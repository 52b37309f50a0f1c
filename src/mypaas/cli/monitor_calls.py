"""The API client's calls about the monitor: events, the audit log, metrics, autoscaling and alert rules
(a part of ApiClient, kept apart so that client.py stays small)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mypaas.cli.limits import TIMEOUT_S


def _seg(value: str) -> str:
    return quote(value, safe="")


class MonitorCalls:
    """Mixed into ApiClient, which gives the plumbing (``_dict``, ``_list``, ``_request``)."""

    if TYPE_CHECKING:

        def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]: ...

        def _list(self, path: str, **kwargs: Any) -> list[Any]: ...

        def _request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    # -- monitor --------------------------------------------------------------------------------

    def events(self, **params: Any) -> list[dict[str, Any]]:
        """Events (app, since, limit, after, wait: see GET /api/v1/events)."""
        query = {k: v for k, v in params.items() if v is not None}
        timeout = float(params.get("wait") or 0) + TIMEOUT_S
        return self._list("/api/v1/events", params=query, timeout=timeout)

    def audit(self, **params: Any) -> list[dict[str, Any]]:
        """Audit entries (app, user, since, limit: see GET /api/v1/audit)."""
        return self._list("/api/v1/audit", params={k: v for k, v in params.items() if v is not None})

    def app_metrics(self, name: str, since: str) -> dict[str, Any]:
        return self._dict("GET", f"/api/v1/apps/{_seg(name)}/metrics", params={"since": since})

    def metrics_now(self) -> dict[str, Any]:
        return self._dict("GET", "/api/v1/metrics/now")

    def prometheus(self) -> str:
        return str(self._request("GET", "/metrics").text)

    # -- autoscaling and alerts -----------------------------------------------------------------

    def autoscale_policies(self, name: str) -> list[dict[str, Any]]:
        return self._list(f"/api/v1/apps/{_seg(name)}/autoscale")

    def set_autoscale(self, name: str, service: str, policy: dict[str, Any]) -> dict[str, Any]:
        return self._dict("PUT", f"/api/v1/apps/{_seg(name)}/autoscale/{_seg(service)}", json=policy)

    def remove_autoscale(self, name: str, service: str) -> None:
        self._request("DELETE", f"/api/v1/apps/{_seg(name)}/autoscale/{_seg(service)}")

    def alerts(self) -> list[dict[str, Any]]:
        return self._list("/api/v1/alerts")

    def add_alert(self, rule: dict[str, Any]) -> dict[str, Any]:
        return self._dict("POST", "/api/v1/alerts", json=rule)

    def remove_alert(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/alerts/{_seg(name)}")

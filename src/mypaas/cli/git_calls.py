"""The API client's calls about apps deployed from a repository (a part of ApiClient, kept apart so that
client.py stays small)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote


def _seg(value: str) -> str:
    return quote(value, safe="")


class GitCalls:
    """Mixed into ApiClient, which gives the plumbing (``_dict``, ``_list``, ``_request``)."""

    if TYPE_CHECKING:

        def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]: ...

        def _list(self, path: str, **kwargs: Any) -> list[Any]: ...

    def git_deploy(self, name: str, source: str, path: str, team: str | None = None) -> dict[str, Any]:
        params = {"team": team} if team else {}
        body = {"git": source, "path": path}
        return self._dict("POST", f"/api/v1/apps/{_seg(name)}/git-deploys", json=body, params=params)

    def deploy_key(self, name: str, *, rotate: bool = False, team: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"rotate": rotate}
        if team:
            params["team"] = team
        return self._dict("POST", f"/api/v1/apps/{_seg(name)}/git/deploy-key", params=params)

    def git_watch(self, name: str, body: dict[str, Any], team: str | None = None) -> dict[str, Any]:
        params = {"team": team} if team else {}
        return self._dict("PUT", f"/api/v1/apps/{_seg(name)}/git/watch", json=body, params=params)

    def git_unwatch(self, name: str) -> dict[str, Any]:
        return self._dict("DELETE", f"/api/v1/apps/{_seg(name)}/git/watch")

    def git_watches(self) -> list[dict[str, Any]]:
        return self._list("/api/v1/git/watches")

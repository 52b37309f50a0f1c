"""The API client's calls about an app's preview apps (a part of ApiClient, kept apart so that client.py
stays small); a preview is deployed by `deploy` with the body field ``preview``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote


def _seg(value: str) -> str:
    return quote(value, safe="")


class PreviewCalls:
    """Mixed into ApiClient, which gives the plumbing (``_dict``, ``_list``)."""

    if TYPE_CHECKING:

        def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]: ...

        def _list(self, path: str, **kwargs: Any) -> list[Any]: ...

    def previews(self, name: str) -> list[dict[str, Any]]:
        return self._list(f"/api/v1/apps/{_seg(name)}/previews")

    def set_previews(
        self, name: str, *, enabled: bool, limit: int | None = None, with_secrets: bool | None = None
    ) -> dict[str, Any]:
        body = {"enabled": enabled, "limit": limit, "with_secrets": with_secrets}
        body = {k: v for k, v in body.items() if v is not None}
        return self._dict("PUT", f"/api/v1/apps/{_seg(name)}/previews", json=body)

    def remove_preview(self, name: str, branch: str) -> dict[str, Any]:
        return self._dict("DELETE", f"/api/v1/apps/{_seg(name)}/previews/{_seg(branch)}")

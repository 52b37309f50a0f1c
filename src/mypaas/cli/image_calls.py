"""The API client's calls about images: the private registry (images, removal, garbage collection, the
mirror) and images made from root filesystems (a part of ApiClient, kept apart so that client.py stays
small)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mypaas.cli.limits import NO_TOKEN, UPLOAD_TIMEOUT_S
from mypaas.errors import Unauthorized

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


def _seg(value: str) -> str:
    return quote(value, safe="")


class ImageCalls:
    """Mixed into ApiClient, which gives the plumbing (``_dict``, ``_list``, ``_request``, ``token``)."""

    if TYPE_CHECKING:
        token: str | None

        def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]: ...

        def _list(self, path: str, **kwargs: Any) -> list[Any]: ...

        def _request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    # -- the private registry --------------------------------------------------------------------

    def images(self, repository: str | None = None) -> list[dict[str, Any]]:
        params = {"repository": repository} if repository else {}
        return self._list("/api/v1/images", params=params)

    def remove_images(self, refs: list[str], **how: bool) -> dict[str, Any]:
        """Remove images (``how``: all, force, registry, engine; see POST /images/remove)."""
        return self._dict("POST", "/api/v1/images/remove", json={"refs": refs, **how})

    def registry_gc(self) -> dict[str, Any]:
        return self._dict("POST", "/api/v1/registry/gc", timeout=UPLOAD_TIMEOUT_S)

    def enable_mirror(self, upstream: str) -> dict[str, Any]:
        return self._dict("PUT", "/api/v1/registry/mirror", json={"upstream": upstream})

    def disable_mirror(self) -> dict[str, Any]:
        return self._dict("DELETE", "/api/v1/registry/mirror")

    def registry_status(self) -> dict[str, Any]:
        return self._dict("GET", "/api/v1/registry/status")

    # -- images from root filesystems -------------------------------------------------------------

    def import_image(
        self, ref: str, chunks: Iterable[bytes], changes: Sequence[str] = (), *, size: int | None = None
    ) -> dict[str, Any]:
        """Upload a root filesystem archive as the request body, sent while ``chunks`` is read
        (with a Content-Length when ``size`` is known, else chunked)."""
        if not self.token:
            raise Unauthorized(NO_TOKEN)  # fail before reading the archive
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        return self._dict(  # each read and write may take UPLOAD_TIMEOUT_S, the connection TIMEOUT_S
            "POST",
            "/api/v1/images/import",
            params={"ref": ref, "change": list(changes)},
            content=chunks,
            headers=headers,
            timeout=UPLOAD_TIMEOUT_S,
        )

    def base_image(self, image: str, *, if_missing: bool = False) -> dict[str, Any]:
        """Start building a debootstrap base image; answers the operation to follow."""
        return self._dict("POST", "/api/v1/images/base", json={"image": image, "if_missing": if_missing})

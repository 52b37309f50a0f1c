"""The API client's calls about the users' own certificates and what each domain is served with (a part
of ApiClient, kept apart so that client.py stays small)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote


def _seg(value: str) -> str:
    return quote(value, safe="")


class CertCalls:
    """Mixed into ApiClient, which gives the plumbing (``_dict``, ``_list``, ``_request``)."""

    if TYPE_CHECKING:

        def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]: ...

        def _list(self, path: str, **kwargs: Any) -> list[Any]: ...

        def _request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def certs(self, name: str | None = None) -> list[dict[str, Any]]:
        """The users' own certificates: of app ``name``, or of every app the caller sees."""
        return self._list(f"/api/v1/apps/{_seg(name)}/certs" if name else "/api/v1/certs")

    def domain_status(self, name: str) -> list[dict[str, Any]]:
        """The app's custom domains, each with the certificate serving it and the last error."""
        return self._list(f"/api/v1/apps/{_seg(name)}/domains/status")

    def add_cert(self, name: str, domain: str, cert: str, key: str) -> dict[str, Any]:
        body = {"domain": domain, "cert": cert, "key": key}
        return self._dict("POST", f"/api/v1/apps/{_seg(name)}/certs", json=body)

    def remove_cert(self, name: str, domain: str) -> None:
        self._request("DELETE", f"/api/v1/apps/{_seg(name)}/certs/{_seg(domain)}")

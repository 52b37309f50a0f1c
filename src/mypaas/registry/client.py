"""The registry's HTTP API (v2), called by the manager with tokens it mints for itself."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from mypaas.errors import BackendError, InvalidSpec, NotFound
from mypaas.registry.tokens import Access, TokenIssuer

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


@dataclass(frozen=True)
class Manifest:
    repo: str
    tag: str
    digest: str
    size: int  # config plus layers, compressed, as stored
    config: str = ""  # the config blob's digest: the engine's image id of the same image


class RegistryApi(Protocol):
    """What the manager asks of the registry's HTTP API (RegistryClient; a fake in unit tests)."""

    def repositories(self) -> list[str]: ...

    def tags(self, repo: str) -> list[str]: ...

    def manifest(self, repo: str, tag: str) -> Manifest: ...

    def delete(self, repo: str, digest: str) -> None: ...


class RegistryClient:
    def __init__(self, url: str, issuer: TokenIssuer, verify: ssl.SSLContext | bool = True) -> None:
        self._url = url.rstrip("/")
        self._issuer = issuer
        self._http = httpx.Client(timeout=httpx.Timeout(30.0, connect=2.0), trust_env=False, verify=verify)

    def _auth(self, *access: Access) -> dict[str, str]:
        token = self._issuer.issue("mypaas-manager", list(access), ttl_s=60)["token"]
        return {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, path: str, access: Access, missing: str, **kw: Any) -> httpx.Response:
        """One call with a token for ``access``; 404 is NotFound(``missing``), other errors BackendError."""
        headers = {**self._auth(access), **kw.pop("headers", {})}
        try:
            r = self._http.request(method, f"{self._url}{path}", headers=headers, **kw)
        except httpx.InvalidURL as exc:  # a name that cannot be part of a URL: the caller's input
            raise InvalidSpec(f"not a valid registry name: {exc}", field="image") from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"registry at {self._url} is unreachable: {exc}") from exc
        if r.status_code == 404:
            raise NotFound(missing, field="image")
        if r.is_error:
            raise BackendError(f"registry: {method} {path}: HTTP {r.status_code} {r.text[:200]}")
        return r

    def _get(self, path: str, access: Access, **kw: Any) -> httpx.Response:
        return self._call("GET", path, access, f"not in the registry: {path.removeprefix('/v2/')}", **kw)

    def repositories(self) -> list[str]:
        repos: list[str] = []
        last = ""
        while True:
            r = self._get(
                "/v2/_catalog", Access("registry", "catalog", ("*",)), params={"n": 1000, "last": last}
            )
            page = r.json().get("repositories") or []
            repos.extend(page)
            if len(page) < 1000:
                return repos
            last = page[-1]

    def tags(self, repo: str) -> list[str]:
        try:
            r = self._get(f"/v2/{repo}/tags/list", Access("repository", repo, ("pull",)))
        except NotFound:
            return []
        return sorted(r.json().get("tags") or [])

    def manifest(self, repo: str, tag: str) -> Manifest:
        r = self._get(
            f"/v2/{repo}/manifests/{tag}",
            Access("repository", repo, ("pull",)),
            headers={"Accept": MANIFEST_TYPES},
        )
        body = r.json()
        size = int((body.get("config") or {}).get("size", 0)) + sum(
            int(layer.get("size", 0)) for layer in body.get("layers") or []
        )
        digest = r.headers.get("Docker-Content-Digest", "")
        config = str((body.get("config") or {}).get("digest", ""))
        return Manifest(repo=repo, tag=tag, digest=digest, size=size, config=config)

    def delete(self, repo: str, digest: str) -> None:
        access = Access("repository", repo, ("delete",))
        self._call(
            "DELETE", f"/v2/{repo}/manifests/{digest}", access, f"{repo}@{digest} is not in the registry"
        )

    def close(self) -> None:
        self._http.close()

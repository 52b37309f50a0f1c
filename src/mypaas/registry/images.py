"""The private registry's service: the token endpoint Distribution trusts, pushing images into it,
listings, removal, retention's deletes and garbage collection (with the registry read-only meanwhile).

Which releases' images to push or to delete is the manager's business (manager/publishing.py); who may
push or pull is its access policy's, asked through ``authorize``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from mypaas.errors import InvalidSpec, NotFound, Unauthorized
from mypaas.registry.client import Manifest, RegistryApi, RegistryClient
from mypaas.registry.distribution import Distribution
from mypaas.registry.refs import REPO_RE, Doomed, ImageRef, Listing, plan
from mypaas.registry.tokens import Access, TokenIssuer, parse_scope

PUSH_USER = "mypaas"
MAX_REPO = 255  # Distribution's limit on a repository name

# A caller's credentials (the API token sent as a Basic password) and the access it asks for -> (subject,
# the access granted: each asked scope with the actions it may take); Unauthorized for an unknown token.
Authorize = Callable[[str, list[Access]], tuple[str, list[Access]]]


class Pusher(Protocol):
    """What publishing needs of the engine (the composer's Backend)."""

    def push_image(self, image: str, *, repository: str, tag: str, username: str, password: str) -> str: ...

    def remove_image(self, ref: str, *, force: bool = False) -> None: ...


class Images:
    def __init__(
        self,
        *,
        registry: Distribution,
        issuer: TokenIssuer,
        pusher: Pusher,
        push_password: str,
        authorize: Authorize,
        keep_releases: int,
        client: RegistryApi | None = None,
    ) -> None:
        self.issuer = issuer
        self.registry = registry
        self.client = client or RegistryClient(registry.url, issuer, registry.verify())
        self._pusher = pusher
        self._push_password = push_password
        self._authorize = authorize
        self._keep = keep_releases
        self._gc_lock = threading.Lock()  # held by a collection; publishing waits for it

    @property
    def addr(self) -> str:
        return self.registry.addr

    def ensure_running(self) -> None:
        """Start the registry, or adopt the one running; not while a collection has it read-only."""
        if self._gc_lock.acquire(blocking=False):
            try:
                self.registry.ensure_running()
            finally:
                self._gc_lock.release()

    # -- the token endpoint (Docker registry token-auth spec) -------------------------------------

    def token(self, authorization: str | None, service: str | None, scopes: list[str]) -> dict[str, object]:
        """Check Basic credentials (any user name, a MyPaas API token as the password); grant scopes."""
        password = _basic_password(authorization)
        if service and service != self.issuer.service:
            raise InvalidSpec(f"unknown service {service!r}", field="service")
        subject, granted = self._authorize(password, [parse_scope(scope) for scope in scopes])
        return self.issuer.issue(subject, granted)

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, image: str, repo: str, tag: str) -> str:
        """Push a local image to the registry as ``repo:tag``; return ``addr/repo@digest``."""
        with self._gc_lock:
            target = f"{self.addr}/{repo}"
            digest = self._pusher.push_image(
                image, repository=target, tag=tag, username=PUSH_USER, password=self._push_password
            )
            # keep the engine's references tidy; the image itself stays for the instances using it
            self._pusher.remove_image(f"{target}:{tag}")
            self._pusher.remove_image(f"{target}@{digest}")
        return f"{target}@{digest}"

    # -- listing and removing -------------------------------------------------------------------

    def catalog(self, repo: str | None = None) -> list[dict[str, Any]]:
        if repo and (len(repo) > MAX_REPO or not REPO_RE.fullmatch(repo)):  # nothing else reaches a URL
            raise InvalidSpec(
                f"invalid repository name {repo[:80]!r}: lowercase letters, digits and . _ - /",
                field="repository",
            )
        repos = [repo] if repo else self.client.repositories()
        out = []
        for name in repos:
            for tag in self.client.tags(name):
                m = self.client.manifest(name, tag)
                out.append(
                    {"repository": name, "tag": tag, "digest": m.digest, "size": m.size, "config": m.config}
                )
        if repo and not out:
            raise NotFound(f"no repository {repo!r} in the registry", field="repository")
        return out

    def listing(self, repo: str) -> Listing:
        """``repo``'s tags with their manifests' digests and compressed sizes."""
        out = {}
        for tag in self.client.tags(repo):
            with contextlib.suppress(NotFound):  # deleted meanwhile
                m = self.client.manifest(repo, tag)
                out[tag] = (m.digest, m.size)
        return Listing(out)

    def plan_removal(
        self, refs: Iterable[ImageRef], *, whole_manifests: bool = True
    ) -> tuple[list[Doomed], list[ImageRef]]:
        """The manifests deleting ``refs`` takes (see refs.plan), and the refs the registry lacks."""
        return plan(refs, self.listing, whole_manifests=whole_manifests)

    def delete(self, doomed: Iterable[Doomed]) -> list[Doomed]:
        """Delete each manifest (with its tags; the blobs go at the next collection); one already gone
        counts as deleted. Waits for a collection in progress (the registry is read-only meanwhile)."""
        done = []
        with self._gc_lock:
            for d in doomed:
                with contextlib.suppress(NotFound):
                    self.client.delete(d.repo, d.digest)
                done.append(d)
        return done

    def manifest(self, repo: str, tag: str) -> Manifest:
        return self.client.manifest(repo, tag)

    def repositories(self) -> list[str]:
        return self.client.repositories()

    # -- retention and collection ---------------------------------------------------------------

    @property
    def keep_releases(self) -> int:
        """How many of an app's newest releases keep their images (setting registry_keep_releases)."""
        return self._keep

    def delete_refs(self, refs: Iterable[str]) -> list[str]:
        """Delete each ``registry/repo@digest`` (the manifest; its blobs go at the next collection);
        one already gone counts as deleted."""
        deleted = []
        with self._gc_lock:
            for ref in refs:
                name, _, digest = ref.partition("@")
                with contextlib.suppress(NotFound):
                    self.client.delete(name.removeprefix(f"{self.addr}/"), digest)
                deleted.append(ref)
        return deleted

    def collect(self) -> dict[str, Any]:
        """Garbage-collect: registry read-only (pulls go on, pushes are refused), collect, writable."""
        with self._gc_lock:
            before = self.registry.disk_usage()
            self.registry.restart(readonly=True)
            try:
                output = self.registry.garbage_collect()
                emptied = self.registry.remove_empty_repositories()
            finally:
                self.registry.restart(readonly=False)
            after = self.registry.disk_usage()
        deleted = sum(1 for line in output.splitlines() if "blob eligible for deletion" in line)
        return {
            "freed_bytes": max(0, before - after),
            "blobs_deleted": deleted,
            "disk_bytes": after,
            "repositories_removed": emptied,
        }

    def status(self) -> dict[str, Any]:
        healthy = self.registry.healthy()
        repos = self.client.repositories() if healthy else []
        return {
            "address": self.addr,
            "healthy": healthy,
            "repositories": len(repos),
            "disk_bytes": self.registry.disk_usage(),
            "keep_releases": self._keep,
        }


def _basic_password(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("basic "):
        raise Unauthorized("registry login needs a user name and a MyPaas API token as the password")
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized("malformed Basic credentials") from exc
    _, sep, password = decoded.partition(":")
    if not sep or not password:
        raise Unauthorized("registry login needs a user name and a MyPaas API token as the password")
    return password

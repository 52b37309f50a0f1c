"""The registry mirror: a second Distribution in proxy mode (a pull-through cache of an upstream
registry, Docker Hub by default), and the engine told to pull through it. Its upstream is kept in the
platform's store (``upstream``, handed over by the manager): enabled stays enabled across restarts."""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlparse

from mypaas.errors import InvalidSpec
from mypaas.registry.distribution import Distribution

DOCKER_HUB = "https://registry-1.docker.io"


class StoredValue(Protocol):
    """One optional value the platform keeps (manager/state/meta.py Setting)."""

    def get(self) -> str | None: ...

    def set(self, value: str | None) -> None: ...


class EngineMirrors(Protocol):
    """The local engine's registry mirrors (iaas/local.py LocalEngineConfig)."""

    def registry_mirrors(self) -> list[str]: ...

    def set_registry_mirrors(self, mirrors: list[str]) -> bool: ...


class Mirror:
    def __init__(self, *, upstream: StoredValue, registry: Distribution, engine: EngineMirrors) -> None:
        self._upstream = upstream
        self.registry = registry
        self._engine = engine

    def upstream(self) -> str | None:
        return self._upstream.get()

    def enable(self, upstream: str) -> dict[str, Any]:
        """Run the mirror of ``upstream`` and make the engine pull through it (first in its list)."""
        url = _check_upstream(upstream)
        self.registry.proxy_url = url
        self.registry.restart()
        self._upstream.set(url)
        self._engine.set_registry_mirrors([self.registry.url, *self._others()])
        return self.status()

    def disable(self) -> dict[str, Any]:
        """Undo both: the engine stops using the mirror, the mirror stops (its cache stays on disk)."""
        self._engine.set_registry_mirrors(self._others())
        self.registry.stop()
        self._upstream.set(None)
        return self.status()

    def _others(self) -> list[str]:
        """The engine's mirrors that are not ours (kept as they were)."""
        return [m for m in self._engine.registry_mirrors() if m.rstrip("/") != self.registry.url]

    def ensure_running(self) -> None:
        upstream = self.upstream()
        if upstream is not None:
            self.registry.proxy_url = upstream
            self.registry.ensure_running()

    def status(self) -> dict[str, Any]:
        upstream = self.upstream()
        return {
            "enabled": upstream is not None,
            "upstream": upstream,
            "address": self.registry.addr,
            "healthy": self.registry.healthy() if upstream else False,
            "engine_mirrors": self._engine.registry_mirrors(),
            "disk_bytes": self.registry.disk_usage(),
        }


def _check_upstream(url: str) -> str:
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path not in ("", "/"):
        raise InvalidSpec(f"invalid upstream {url!r}: expected http(s)://HOST[:PORT]", field="upstream")
    return f"{parsed.scheme}://{parsed.netloc}"

"""The registry mirror: a second Distribution in proxy mode (a pull-through cache of an upstream
registry, Docker Hub by default), and the engine told to pull through it. Enabled state persists."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from sqlalchemy.orm import Session, sessionmaker

from mypaas.errors import InvalidSpec
from mypaas.iaas.local import LocalEngineConfig
from mypaas.manager.state.models import Meta
from mypaas.registry.distribution import Distribution

MIRROR_KEY = "mirror_upstream"
DOCKER_HUB = "https://registry-1.docker.io"


class Mirror:
    def __init__(
        self, *, sessions: sessionmaker[Session], registry: Distribution, engine: LocalEngineConfig
    ) -> None:
        self._sessions = sessions
        self.registry = registry
        self._engine = engine

    def upstream(self) -> str | None:
        with self._sessions() as s:
            row = s.get(Meta, MIRROR_KEY)
            return row.value if row is not None else None

    def enable(self, upstream: str) -> dict[str, Any]:
        """Run the mirror of ``upstream`` and make the engine pull through it (first in its list)."""
        url = _check_upstream(upstream)
        self.registry.proxy_url = url
        self.registry.restart()
        with self._sessions.begin() as s:
            s.merge(Meta(key=MIRROR_KEY, value=url))
        self._engine.set_registry_mirrors([self.registry.url, *self._others()])
        return self.status()

    def disable(self) -> dict[str, Any]:
        """Undo both: the engine stops using the mirror, the mirror stops (its cache stays on disk)."""
        self._engine.set_registry_mirrors(self._others())
        self.registry.stop()
        with self._sessions.begin() as s:
            row = s.get(Meta, MIRROR_KEY)
            if row is not None:
                s.delete(row)
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

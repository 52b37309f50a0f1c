"""What the CLI asks while the manager is down (`mypaas up`, `down`, `status`): whether the engine and the
router answer, and stopping the router and the registries. The parts are made as the composition root
makes them (manager/platform.py), so the CLI never builds a component itself."""

from __future__ import annotations

from typing import Any

from mypaas import __version__
from mypaas.errors import MyPaasError
from mypaas.manager.parts import make_backend, make_router
from mypaas.settings import Settings


def engine_answers(settings: Settings) -> bool:
    try:
        backend = make_backend(settings, timeout=5, pool=False)
    except MyPaasError:
        return False
    try:
        return backend.ping()
    finally:
        backend.close()


def router_answers(settings: Settings) -> bool:
    router = make_router(settings)
    try:
        return router.healthy()
    finally:
        router.close()


def stop_router(settings: Settings) -> None:
    """Stop the router (apps keep running)."""
    router = make_router(settings)
    try:
        router.stop()
    finally:
        router.close()


def stop_registries(settings: Settings) -> list[str]:
    """Stop the registry and the mirror this platform started (after the manager, which restarts them);
    answers the names of those that were running."""
    from mypaas.registry.distribution import stop_in

    return [name for name in ("registry", "mirror") if stop_in(settings.home / name)]


def offline_status(settings: Settings, reason: str) -> dict[str, Any]:
    """`mypaas status` while the manager does not answer (``reason``): the engine and the router alone."""
    return {
        "version": __version__,
        "components": {
            "manager": {"healthy": False, "api": settings.api_url, "error": reason},
            "engine": {"healthy": engine_answers(settings), "url": settings.docker_url},
            "router": {"healthy": router_answers(settings), "port": settings.router_port},
        },
        "healthy": False,
    }

"""An app's named (compose) network is made with one engine call, whether it is new or there already (a
409); its default network comes from the pool (test_network_pool.py)."""

from __future__ import annotations

from typing import Any

import docker.errors
import pytest

from mypaas.composer.docker import DockerBackend
from mypaas.errors import BackendError


class Networks:
    """What DockerBackend asks of the Docker API to make networks; listing them is not expected."""

    def __init__(self) -> None:
        self.made: dict[str, dict[str, Any]] = {}
        self.calls = 0

    def create_network(self, name: str, **options: Any) -> dict[str, str]:
        self.calls += 1
        if name in self.made:
            raise docker.errors.APIError("conflict", response=_Response(409), explanation="exists")
        self.made[name] = options
        return {"Id": name}

    def networks(self, **_: Any) -> list[dict[str, Any]]:
        raise AssertionError("must not be called: one create call says whether it is there")


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.reason = "Conflict"
        self.url = "http://engine/networks/create"


def _backend(api: Networks) -> DockerBackend:
    backend = DockerBackend.__new__(DockerBackend)
    backend._api = api  # type: ignore[assignment]
    return backend


def test_a_network_is_made_once_with_one_call_each_time() -> None:
    api = Networks()
    backend = _backend(api)
    backend.ensure_network("p1", "shop", "back")
    backend.ensure_network("p1", "shop", "back")  # there already: the engine's 409 means done
    assert list(api.made) == ["mypaas_shop_back"]
    assert api.made["mypaas_shop_back"]["labels"]["mypaas.app"] == "shop"
    assert api.calls == 2


def test_another_refusal_is_an_error() -> None:
    class Refusing(Networks):
        def create_network(self, name: str, **options: Any) -> dict[str, str]:
            raise docker.errors.APIError("no", response=_Response(500), explanation="no space left")

    with pytest.raises(BackendError):
        _backend(Refusing()).ensure_network("p1", "shop", "back")

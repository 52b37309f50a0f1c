"""The API fuzz run: schemathesis over the OpenAPI spec of the API on the fake backend, in-process, with
the admin token. No 5xx, no answer that breaks its documented schema, content type or status list.

Bounded: a few examples per operation (``FUZZ_EXAMPLES``, 8: about a minute on two cores). Offline and
harmless: the routes that reach other machines (adding a host over SSH, the mirror's upstream, a base
image's package mirror) or restart a real part (the registry's garbage collection) are left out, the
registry's HTTP API is in memory, the engine's daemon.json too, and long polls are not held."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mypaas.api.app import create_app
from mypaas.composer.fake import FakeBackend
from mypaas.composer.fake_nodes import FakeNodes
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.registry.fake import FakeRegistry
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
# operations that reach other machines (kept out of an offline run)
AWAY = [
    ("POST", "/api/v1/hosts"),  # SSH to the host given
    ("POST", "/api/v1/drivers"),  # logs in to the driver account's endpoint (vCenter, libvirt, Keystone)
    ("PUT", "/api/v1/registry/mirror"),  # runs a mirror of the upstream given
    ("POST", "/api/v1/images/base"),  # debootstrap from a distribution's mirror
    ("POST", "/api/v1/registry/gc"),  # restarts Distribution itself, read-only, to collect
]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class MemoryEngineConfig:
    """The engine's daemon.json, in memory: the run never edits this machine's."""

    def __init__(self) -> None:
        self.mirrors: list[str] = []
        self.insecure: list[str] = []

    def registry_mirrors(self) -> list[str]:
        return list(self.mirrors)

    def set_registry_mirrors(self, mirrors: list[str]) -> bool:
        changed, self.mirrors = mirrors != self.mirrors, list(mirrors)
        return changed

    def insecure_registries(self) -> list[str]:
        return list(self.insecure)

    def set_insecure_registries(self, registries: list[str]) -> bool:
        changed, self.insecure = registries != self.insecure, list(registries)
        return changed


def _platform(home: Path) -> Platform:
    nodes = FakeNodes()
    parts = Components(
        backend=FakeBackend(),
        router=FakeRouter(),
        probe=lambda _: True,
        nodes=lambda: nodes,
        registry=FakeRegistry(),  # the registry's HTTP API in memory (Distribution is not started)
        engine_config=MemoryEngineConfig(),
    )
    return build_platform(Settings(home=home), parts)


# one platform for the whole run (schemathesis reads the spec when the module loads): state built by one
# operation is there for the next, as on a real manager
HOME = Path(tempfile.mkdtemp(prefix="mypaas-fuzz-"))
PLATFORM = _platform(HOME)
# failed logins slow the next one down (up to 8 s each): the run keeps the count (and its 429), not the wait
PLATFORM.identity.throttle.delay = lambda user, source: 0.0  # type: ignore[method-assign]
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(PLATFORM))
for _method, _path in AWAY:
    schema = schema.exclude(method=_method, path=_path)


@pytest.fixture(scope="module", autouse=True)
def _clean_home() -> Iterator[None]:
    yield
    PLATFORM.stop()
    shutil.rmtree(HOME, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_spec_says(case: schemathesis.Case) -> None:
    if case.query and "wait" in case.query:  # a long poll: a moment, not the minute the spec allows
        case.query["wait"] = 0
    headers = {"Authorization": f"Bearer {PLATFORM.admin_token}"}
    case.call_and_validate(headers=headers, checks=CHECKS)

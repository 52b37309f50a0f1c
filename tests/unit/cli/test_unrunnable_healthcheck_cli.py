"""What `mypaas deploy` shows when the new release's health check cannot even start (its command is
not in the image): one error with the engine's reason, at once rather than at the deadline."""

from __future__ import annotations

from pathlib import Path

import pytest

from mypaas.composer.base import InstanceRequest
from mypaas.composer.fake import FakeBackend
from mypaas.domain import HealthResult, Instance, InstanceReport
from mypaas.manager.platform import Platform
from mypaas.states import InstanceState
from tests.unit.cli.support import Server, cli

OCI = (  # as the engine words a health check run whose command is not in the image
    "OCI runtime exec failed: exec failed: unable to start container process: "
    'exec: "curl": executable file not found in $PATH: unknown'
)


class NoCurl(FakeBackend):
    """Every instance runs, silent, and its health check's runs all fail to start (exit -1)."""

    def create_instance(self, req: InstanceRequest) -> Instance:
        inst = super().create_instance(req)
        self.logs_by_id[inst.id] = []
        self.reports[inst.id] = InstanceReport(health=(HealthResult(-1, OCI + "\n"),) * 3)
        self.set_state(inst.id, InstanceState.STARTING)
        return self.instances[inst.id]


@pytest.fixture
def backend() -> FakeBackend:
    fake = NoCurl()
    fake.add_image("web:1", exposed=(80,))
    return fake


def test_a_health_check_that_cannot_run_fails_the_deploy_at_once(
    server: Server, manager: Platform, tmp_path: Path
) -> None:
    compose = tmp_path / "compose.yml"
    compose.write_text(
        "services:\n  web:\n    image: web:1\n    expose: [80]\n"
        "    healthcheck:\n      test: [CMD, curl, -f, http://localhost/]\n"
    )

    result = cli("deploy", "hello", "-f", str(compose))

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        'error: v1 failed: web: health check cannot run: exec: "curl": executable file not found in'
        " $PATH; nothing was running before, so the app is removed",
    ]

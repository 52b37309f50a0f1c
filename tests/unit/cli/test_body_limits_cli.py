"""What the user reads when a request body is past its cap (api/limits.py): one error line naming the cap
and the setting that raises it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.unit.cli.support import Server, cli, deploy, one_error_line


def test_a_config_value_past_the_json_cap_is_one_error_line(server: Server, api: TestClient) -> None:
    deploy(api, "hello", image="web:1")

    line = one_error_line(cli("config", "set", "hello", "BIG=" + "x" * (2 * 1024 * 1024)))

    assert line == (
        "error: the request body is larger than this route takes: at most 1 MiB (setting body_max_json)"
    )

"""Unit tests of the `mypaas` CLI against the real REST API over the fake backend, in this process.

State is set up through the platform's own services (deploys through the API, reconcile passes); a few
client-side cases the API cannot produce (a refused connection, a 500) use a small stub transport.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from mypaas.cli import client as client_module
from mypaas.cli.client import ApiClient
from mypaas.cli.deploy import compose_payload, folder_payload, tar_folder
from mypaas.cli.limits import NO_TOKEN
from mypaas.composer.fake import FakeBackend
from mypaas.errors import BackendError, NotFound, Unauthorized
from mypaas.manager.platform import Platform
from mypaas.states import InstanceState
from tests.unit.cli.support import Server, change, cli, deploy, finished, one_error_line, settle

TWO_SERVICES = "services:\n  web:\n    image: web:1\n  worker:\n    image: web:1\n"


@pytest.fixture
def hello(api: TestClient, platform: Platform, backend: FakeBackend) -> str:
    """App ``hello`` (image web:1) deployed and running at v1."""
    deploy(api, "hello", image="web:1")
    settle(platform, backend)
    return "hello"


# -- basics ---------------------------------------------------------------------------------------


def test_version_and_help() -> None:
    assert cli("--version").stdout.strip() == "mypaas 0.1.0"
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("deploy", "ps", "logs", "scale", "rollback", "config", "domains", "up", "down", "status"):
        assert command in result.stdout


def test_ls_json_is_the_api_listing(server: Server, api: TestClient, hello: str) -> None:
    result = cli("ls", "--json")

    assert result.exit_code == 0
    listing = json.loads(result.stdout)
    assert listing == api.get("/api/v1/apps").json()
    [app] = listing
    assert (app["name"], app["state"], app["release"], app["target_release"]) == ("hello", "running", 1, 1)
    assert (app["instances"], app["ready"]) == (1, 1)


def test_ls_table_shows_a_rollout_in_flight(
    server: Server, api: TestClient, platform: Platform, hello: str
) -> None:
    deploy(api, "hello", image="nginx:alpine")
    platform.reconciler.pass_once()  # creates the v2 instance; no probe has passed yet
    platform.reconciler.pass_once()  # sees it, not ready: v1 keeps serving

    result = cli("ls")

    assert result.exit_code == 0
    assert "hello" in result.stdout and "v1 → v2" in result.stdout and "1/2" in result.stdout


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (["ps", "hello", "--json"], "/api/v1/apps/hello/instances"),
        (["releases", "hello", "--json"], "/api/v1/apps/hello/releases"),
        (["config", "hello", "--json"], "/api/v1/apps/hello/config"),
        (["domains", "ls", "hello", "--json"], "/api/v1/apps/hello/domains/status"),
    ],
)
def test_every_listing_prints_json(
    server: Server, api: TestClient, hello: str, args: list[str], path: str
) -> None:
    change(api, "PATCH", "apps/hello/config", {"set": {"A": "1"}})
    change(api, "POST", "apps/hello/domains", {"domain": "www.example.com"})

    result = cli(*args)

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data and data == api.get(path).json()


def test_status_json_from_the_api(server: Server, api: TestClient) -> None:
    result = cli("status", "--json")

    assert result.exit_code == 0
    status = json.loads(result.stdout)
    assert status == api.get("/api/v1/status").json()
    assert status["healthy"] is True and status["components"]["manager"]["healthy"] is True


# -- errors ---------------------------------------------------------------------------------------


def test_api_404_is_one_error_line_and_exit_1(server: Server) -> None:
    result = cli("ps", "nope")

    assert one_error_line(result) == "error: no app named 'nope'"
    assert result.stdout == ""


def test_connection_refused_gives_the_friendly_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stub transport: the API in this process cannot refuse a connection.
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    transport = httpx.MockTransport(refuse)
    monkeypatch.setattr(
        client_module, "connect", lambda: ApiClient("http://127.0.0.1:9", "t", transport=transport)
    )

    line = one_error_line(cli("ls"))

    assert (
        line == "error: cannot reach the MyPaas API at http://127.0.0.1:9: is the platform up? (`mypaas up`)"
    )


def test_status_codes_map_to_error_types(server: Server) -> None:
    with pytest.raises(NotFound) as missing:
        server.client().app("a")
    assert missing.value.message == "no app named 'a'" and missing.value.field == "app"

    # A stub for the 500: the API answers one only when it has a bug.
    def crash(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="Internal Server Error")

    with pytest.raises(BackendError, match="HTTP 500"):
        ApiClient("http://x", "t", transport=httpx.MockTransport(crash)).app("b")


def test_401_without_any_token_says_how_to_get_one(server: Server) -> None:
    client = server.client(token="")  # no env, no token file

    assert client.token is None
    with pytest.raises(Unauthorized) as exc:
        client.apps()
    assert exc.value.message == NO_TOKEN
    assert "authorization" not in server.last("GET", "/api/v1/apps").headers


def test_token_comes_from_the_admin_token_file(
    server: Server, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYPAAS_HOME", str(platform.settings.home))  # the user that ran `mypaas up`

    assert server.client(token="").apps() == []

    assert server.last("GET", "/api/v1/apps").headers["authorization"] == f"Bearer {platform.admin_token}"


def test_rm_without_a_tty_needs_yes(server: Server) -> None:
    line = one_error_line(cli("rm", "hello"))

    assert "--yes" in line
    assert not server.requests


# -- argument parsing -----------------------------------------------------------------------------


def test_config_set_parses_key_value_pairs(server: Server, api: TestClient, hello: str) -> None:
    result = cli("config", "set", "hello", "GREETING=hi there", "URL=a=b", "EMPTY=", "--no-wait")

    assert result.exit_code == 0, result.output
    sent = {"GREETING": "hi there", "URL": "a=b", "EMPTY": ""}
    assert server.body("PATCH", "/api/v1/apps/hello/config") == {"set": sent, "unset": []}
    assert api.get("/api/v1/apps/hello/config").json() == sent


def test_config_unset_sends_keys(server: Server, api: TestClient, hello: str) -> None:
    change(api, "PATCH", "apps/hello/config", {"set": {"A": "1", "B": "2", "C": "3"}})

    assert cli("config", "unset", "hello", "A", "B", "--no-wait").exit_code == 0
    assert server.body("PATCH", "/api/v1/apps/hello/config") == {"set": {}, "unset": ["A", "B"]}
    assert api.get("/api/v1/apps/hello/config").json() == {"C": "3"}


def test_config_app_shows_key_value_lines(server: Server, api: TestClient, hello: str) -> None:
    change(api, "PATCH", "apps/hello/config", {"set": {"B": "2", "A": "x y"}})

    result = cli("config", "hello")

    assert result.exit_code == 0
    assert result.stdout == "A=x y\nB=2\n"


@pytest.mark.parametrize(
    ("args", "bad"),
    [
        (["config", "set", "hello", "NOEQUALS"], "NOEQUALS"),
        (["config", "set", "hello", "=v"], "=v"),
        (["scale", "hello", "web"], "web"),
        (["scale", "hello", "web=x"], "web=x"),
        (["scale", "hello", "web=-1"], "web=-1"),
        (["rollback", "hello", "vx"], "vx"),
        (["rollback", "hello", "0"], "0"),
    ],
)
def test_malformed_arguments_are_usage_errors_naming_them(server: Server, args: list[str], bad: str) -> None:
    result = cli(*args)

    assert result.exit_code == 2
    assert repr(bad) in result.output
    assert not server.requests


def test_scale_parses_service_counts(server: Server, api: TestClient) -> None:
    deploy(api, "hello", compose=TWO_SERVICES)

    assert cli("scale", "hello", "web=3", "worker=0", "--no-wait").exit_code == 0
    assert server.body("PUT", "/api/v1/apps/hello/scale") == {"replicas": {"web": 3, "worker": 0}}
    services = api.get("/api/v1/apps/hello").json()["services"]
    assert (services["web"]["replicas"], services["worker"]["replicas"]) == (3, 0)


@pytest.fixture
def twelve_releases(api: TestClient, platform: Platform, backend: FakeBackend, hello: str) -> str:
    """``hello`` with v1 superseded by v2 (so "the previous release" exists), then config up to v12."""
    for n in range(2, 13):
        change(api, "PATCH", "apps/hello/config", {"set": {"N": str(n)}})
        if n == 2:
            settle(platform, backend)
    return "hello"


@pytest.mark.parametrize(("given", "sent"), [(["v3"], 3), (["3"], 3), (["V12"], 12), ([], None)])
def test_rollback_takes_3_or_v3(
    server: Server, api: TestClient, twelve_releases: str, given: list[str], sent: int | None
) -> None:
    result = cli("rollback", "hello", *given, "--no-wait")

    assert result.exit_code == 0, result.output
    assert server.body("POST", "/api/v1/apps/hello/rollback") == {"release": sent}
    newest = api.get("/api/v1/apps/hello/releases").json()[0]
    assert newest["description"] == f"Rollback to v{sent or 1}"


@pytest.mark.parametrize("args", [["deploy", "hello"], ["deploy", "hello", "--image", "x", "-f", "c.yml"]])
def test_deploy_needs_exactly_one_source(server: Server, args: list[str]) -> None:
    result = cli(*args)

    assert result.exit_code == 2
    assert not server.requests


# -- following operations -------------------------------------------------------------------------


def test_deploy_image_sends_the_request_and_prints_the_url(server: Server, manager: Platform) -> None:
    result = cli("deploy", "hello", "--image", "nginx:alpine", "--port", "80", "-m", "first")

    assert result.exit_code == 0, result.output
    assert server.body("POST", "/api/v1/apps/hello/deploys") == {
        "image": "nginx:alpine",
        "port": 80,
        "description": "first",
    }
    assert result.stdout.strip() == "hello v1 deployed: http://hello.localhost"


def test_deploy_streams_the_build_log_once(server: Server, manager: Platform, tmp_path: Path) -> None:
    write(tmp_path / "app", {"Dockerfile": "FROM scratch\n", "index.html": "hi"})

    result = cli("deploy", "hello", str(tmp_path / "app"), "--port", "80")

    assert result.exit_code == 0, result.output
    [(_, accepted)] = server.sent("POST", "/api/v1/apps/hello/deploys")
    op_id = accepted.json()["id"]
    log = server.platform.operations.get(op_id).log
    assert "Step 1/1 : fake build of" in log
    polls = server.sent("GET", f"/api/v1/operations/{op_id}")
    assert result.stderr == log  # every line of the build log shown, once, in order
    offsets = [int(request.url.params["log_offset"]) for request, _ in polls]
    answered = [0] + [answer.json()["log_offset"] for _, answer in polls[:-1]]
    assert offsets == answered  # each poll asks for what the previous answer did not hold
    assert result.stdout.strip() == "hello v1 deployed: http://hello.localhost"


@pytest.mark.parametrize("settings", [{"router_port": 8080}], indirect=True)
def test_deploy_url_carries_the_router_port(server: Server, manager: Platform) -> None:
    result = cli("deploy", "hello", "--image", "nginx:alpine")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "hello v1 deployed: http://hello.localhost:8080"


@pytest.mark.parametrize("settings", [{"deploy_timeout_s": 0}], indirect=True)
def test_failed_deploy_prints_the_message_and_exits_1(server: Server, manager: Platform) -> None:
    result = cli("deploy", "hello", "--image", "nginx:alpine")

    assert result.exit_code == 1
    [(_, accepted)] = server.sent("POST", "/api/v1/apps/hello/deploys")
    message = server.platform.operations.get(accepted.json()["id"]).message
    assert message.startswith("v1 did not become healthy in time")
    assert result.stderr == f"error: {message}\n"  # the operation's whole message
    assert "deployed" not in result.stdout


def test_wait_operation_long_polls_with_growing_offsets(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    op_id = deploy(api, "hello", image="web:1")["id"]
    platform.operations.append_log(op_id, "a\n")
    steps = [lambda: platform.operations.append_log(op_id, "b\n"), lambda: settle(platform, backend)]
    logs: list[str] = []

    done = server.client().wait_operation(op_id, logs.append, timeout=30, on_poll=lambda _: steps.pop(0)())

    assert done["status"] == "succeeded"
    assert logs == ["a\n", "b\n"]
    polls = [request.url.params for request in server.requests]
    assert [p["log_offset"] for p in polls] == ["0", "2", "4"]
    assert all(float(p["wait"]) == 10 for p in polls)


def test_logs_stream_lines_to_stdout(server: Server, backend: FakeBackend, hello: str) -> None:
    [iid] = backend.instances
    backend.logs_by_id[iid] = ["one", "two"]

    result = cli("logs", "hello", "web", "--tail", "5")

    assert result.exit_code == 0
    assert result.stdout == "one\ntwo\n"
    params = server.last("GET", "/api/v1/apps/hello/logs").url.params
    assert (params["service"], params["tail"], params["follow"]) == ("web", "5", "false")


# -- what deploy uploads --------------------------------------------------------------------------


def tar_names(data: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return set(tar.getnames())


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_tarball_honours_dockerignore_and_skips_git(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "Dockerfile": "FROM scratch\n",
            ".dockerignore": "# comment\nnode_modules\n*.log\n!keep.log\n**/secret.txt\n/build/\n",
            ".git/config": "x",
            "node_modules/pkg/index.js": "x",
            "a.log": "x",
            "keep.log": "x",
            "sub/b.log": "x",  # '*' stays in one folder, as in docker
            "src/app.py": "x",
            "src/deep/secret.txt": "x",
            "secret.txt": "x",
            "build/out.bin": "x",
        },
    )

    names = tar_names(tar_folder(tmp_path))

    assert {"Dockerfile", ".dockerignore", "keep.log", "sub/b.log", "src/app.py"} <= names
    for gone in ("a.log", "secret.txt", "src/deep/secret.txt", "build/out.bin", "node_modules/pkg/index.js"):
        assert gone not in names
    assert not [n for n in names if n.startswith((".git", "node_modules", "build"))]


def test_dockerignore_exception_inside_an_ignored_folder(tmp_path: Path) -> None:
    write(tmp_path, {".dockerignore": "docs\n!docs/keep.md\n", "docs/a.md": "x", "docs/keep.md": "x"})

    names = tar_names(tar_folder(tmp_path))

    assert "docs/keep.md" in names and "docs/a.md" not in names


def test_folder_with_dockerfile_uploads_it_as_part_app(tmp_path: Path) -> None:
    write(tmp_path, {"Dockerfile": "FROM scratch\n", "index.html": "hi"})

    payload = folder_payload(tmp_path, 8000, None)

    assert payload.body == {"dockerfile": "Dockerfile", "port": 8000}
    assert set(payload.contexts) == {"app"}
    assert "index.html" in tar_names(payload.contexts["app"])


def test_compose_collects_env_files_dotenv_and_build_contexts(tmp_path: Path) -> None:
    compose = """
services:
  web:
    build: ./web
    env_file: web.env
  worker:
    build:
      context: workers/main
      dockerfile: Worker.dockerfile
    env_file:
      - common.env
      - path: optional.env
        required: false
  db:
    image: postgres:16
    env_file: [common.env]
"""
    write(
        tmp_path,
        {
            "compose.yml": compose,
            ".env": "TAG=1\n",
            "web.env": "A=1\n",
            "common.env": "B=2\n",
            "web/Dockerfile": "FROM scratch\n",
            "web/.git/HEAD": "x",
            "workers/main/Worker.dockerfile": "FROM scratch\n",
        },
    )

    payload = compose_payload(tmp_path / "compose.yml", "msg")

    assert payload.body == {
        "compose_files": ["compose.yml"],
        "files": {"compose.yml": compose, ".env": "TAG=1\n", "web.env": "A=1\n", "common.env": "B=2\n"},
        "variables": {},
        "description": "msg",
    }
    assert set(payload.contexts) == {"./web", "workers/main"}  # part names exactly as written
    assert tar_names(payload.contexts["./web"]) == {"Dockerfile"}
    assert tar_names(payload.contexts["workers/main"]) == {"Worker.dockerfile"}


def test_compose_missing_required_env_file_is_an_error(tmp_path: Path, server: Server) -> None:
    write(tmp_path, {"compose.yml": "services:\n  web:\n    image: nginx\n    env_file: nope.env\n"})

    line = one_error_line(cli("deploy", "shop", "-f", str(tmp_path / "compose.yml")))

    assert "nope.env" in line
    assert not server.requests


def test_compose_deploy_sends_one_multipart_part_per_context(
    tmp_path: Path, server: Server, api: TestClient, manager: Platform
) -> None:
    write(
        tmp_path,
        {
            "compose.yml": "services:\n  web:\n    build: ./web\n    expose: [80]\n",
            "web/Dockerfile": "FROM scratch\n",
        },
    )

    result = cli("deploy", "shop", "-f", str(tmp_path / "compose.yml"), "--no-wait")

    assert result.exit_code == 0, result.output
    [(request, accepted)] = server.sent("POST", "/api/v1/apps/shop/deploys")
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'name="request"' in request.content and b'name="./web"' in request.content
    assert b'"compose_files": ["compose.yml"]' in request.content
    assert finished(api, accepted.json()["id"])["status"] == "succeeded"  # built from that part


def test_spinner_text_names_what_the_rollout_waits_for(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    from mypaas.cli.output import progress_line

    op = deploy(api, "hello", compose="services:\n  web:\n    image: web:1\n    deploy: {replicas: 2}\n")
    platform.reconciler.pass_once()  # creates both instances
    backend.set_state(next(iter(backend.instances)), InstanceState.HEALTHY)
    platform.reconciler.pass_once()  # one of two is ready
    client = server.client()

    assert (
        progress_line(client, "hello", "deploying hello", op)
        == "deploying hello v1… waiting for web: 1/2 ready"
    )
    building: dict[str, Any] = {**op, "status": "building", "release": None}
    assert progress_line(client, "hello", "deploying hello", building) == "deploying hello… building"

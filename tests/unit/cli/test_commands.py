"""Unit tests of the `mypaas` CLI against a mock REST API (httpx.MockTransport): no network, no manager."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from mypaas.cli import client as client_module
from mypaas.cli.client import NO_TOKEN, ApiClient
from mypaas.cli.deploy import compose_payload, folder_payload, tar_folder
from mypaas.cli.main import app
from mypaas.errors import BackendError, NotFound, Unauthorized

Handler = Callable[[httpx.Request], httpx.Response]


class FakeApi:
    """Answers requests from a table of (method, path) -> responses; records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[httpx.Response]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *responses: httpx.Response) -> None:
        self.routes[(method, path)] = list(responses)

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(404, json={"error": f"not mocked: {request.method} {request.url.path}"})
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def last(self, method: str, path: str) -> httpx.Request:
        return [r for r in self.requests if (r.method, r.url.path) == (method, path)][-1]

    def body(self, method: str, path: str) -> Any:
        return json.loads(self.last(method, path).content)


def ok(data: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=data)


def op(
    status: str = "running", *, log: str = "", release: int | None = 3, message: str = ""
) -> dict[str, Any]:
    return {
        "id": "op1",
        "app": "hello",
        "kind": "deploy",
        "status": status,
        "release": release,
        "message": message,
        "log": log,
        "log_offset": len(log),
    }


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("MYPAAS_HOME", str(tmp_path / "home"))
    for var in ("MYPAAS_URL", "MYPAAS_TOKEN", "MYPAAS_BASE_DOMAIN", "MYPAAS_ROUTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    client_module.settings.cache_clear()
    yield
    client_module.settings.cache_clear()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    transport = httpx.MockTransport(fake.handle)
    monkeypatch.setattr(
        client_module, "connect", lambda: ApiClient("http://mypaas.test", "tok", transport=transport)
    )
    return fake


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def one_error_line(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return str(lines[0])


# -- basics ---------------------------------------------------------------------------------------


def test_version_and_help() -> None:
    assert cli("--version").stdout.strip() == "mypaas 0.1.0"
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("deploy", "ps", "logs", "scale", "rollback", "config", "domains", "up", "down", "status"):
        assert command in result.stdout


def test_ls_json_is_the_api_listing(api: FakeApi) -> None:
    apps = [
        {"name": "hello", "state": "running", "release": 2, "target_release": 2, "instances": 1, "ready": 1}
    ]
    api.on("GET", "/api/v1/apps", ok(apps))

    result = cli("ls", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == apps


def test_ls_table_shows_a_rollout_in_flight(api: FakeApi) -> None:
    apps = [
        {"name": "hello", "state": "running", "release": 2, "target_release": 3, "instances": 2, "ready": 1}
    ]
    api.on("GET", "/api/v1/apps", ok(apps))

    result = cli("ls")

    assert result.exit_code == 0
    assert "hello" in result.stdout and "v2 → v3" in result.stdout and "1/2" in result.stdout


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (["ps", "web", "--json"], "/api/v1/apps/web/instances"),
        (["releases", "web", "--json"], "/api/v1/apps/web/releases"),
        (["config", "web", "--json"], "/api/v1/apps/web/config"),
        (["domains", "ls", "web", "--json"], "/api/v1/apps/web/domains"),
    ],
)
def test_every_listing_prints_json(api: FakeApi, args: list[str], path: str) -> None:
    data: Any = {"A": "1"} if "config" in args else [{"name": "web-1", "ready": True}]
    api.on("GET", path, ok(data))

    result = cli(*args)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == data


def test_status_json_from_the_api(api: FakeApi) -> None:
    status = {"healthy": True, "components": {"manager": {"healthy": True}, "router": {"healthy": True}}}
    api.on("GET", "/api/v1/status", ok(status))

    result = cli("status", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == status


# -- errors ---------------------------------------------------------------------------------------


def test_api_404_is_one_error_line_and_exit_1(api: FakeApi) -> None:
    api.on("GET", "/api/v1/apps/nope/instances", ok({"error": "no app named 'nope'", "field": "app"}, 404))

    result = cli("ps", "nope")

    assert one_error_line(result) == "error: no app named 'nope'"
    assert result.stdout == ""


def test_connection_refused_gives_the_friendly_error(monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_status_codes_map_to_error_types() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return {
            "/api/v1/apps/a": ok({"error": "no app named 'a'", "field": "app"}, 404),
            "/api/v1/apps/b": httpx.Response(500, text="Internal Server Error"),
        }[request.url.path]

    client = ApiClient("http://x", "t", transport=httpx.MockTransport(answer))

    with pytest.raises(NotFound) as missing:
        client.app("a")
    assert missing.value.message == "no app named 'a'" and missing.value.field == "app"
    with pytest.raises(BackendError, match="HTTP 500"):
        client.app("b")


def test_401_without_any_token_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers
        return ok({"error": "missing bearer token"}, 401)

    client = ApiClient("http://x", transport=httpx.MockTransport(answer))  # no env, no token file

    assert client.token is None
    with pytest.raises(Unauthorized) as exc:
        client.apps()
    assert exc.value.message == NO_TOKEN


def test_token_comes_from_the_admin_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "home" / "admin-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("mp_secret\n")
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return ok([])

    ApiClient("http://x", transport=httpx.MockTransport(answer)).apps()

    assert seen == ["Bearer mp_secret"]


def test_rm_without_a_tty_needs_yes(api: FakeApi) -> None:
    line = one_error_line(cli("rm", "hello"))

    assert "--yes" in line
    assert not api.requests


# -- argument parsing -----------------------------------------------------------------------------


def test_config_set_parses_key_value_pairs(api: FakeApi) -> None:
    api.on("PATCH", "/api/v1/apps/hello/config", ok(op(), 202))

    result = cli("config", "set", "hello", "GREETING=hi there", "URL=a=b", "EMPTY=", "--no-wait")

    assert result.exit_code == 0, result.output
    assert api.body("PATCH", "/api/v1/apps/hello/config") == {
        "set": {"GREETING": "hi there", "URL": "a=b", "EMPTY": ""},
        "unset": [],
    }


def test_config_unset_sends_keys(api: FakeApi) -> None:
    api.on("PATCH", "/api/v1/apps/hello/config", ok(op(), 202))

    assert cli("config", "unset", "hello", "A", "B", "--no-wait").exit_code == 0
    assert api.body("PATCH", "/api/v1/apps/hello/config") == {"set": {}, "unset": ["A", "B"]}


def test_config_app_shows_key_value_lines(api: FakeApi) -> None:
    api.on("GET", "/api/v1/apps/hello/config", ok({"B": "2", "A": "x y"}))

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
def test_malformed_arguments_are_usage_errors_naming_them(api: FakeApi, args: list[str], bad: str) -> None:
    result = cli(*args)

    assert result.exit_code == 2
    assert repr(bad) in result.output
    assert not api.requests


def test_scale_parses_service_counts(api: FakeApi) -> None:
    api.on("PUT", "/api/v1/apps/hello/scale", ok(op()))

    assert cli("scale", "hello", "web=3", "worker=0", "--no-wait").exit_code == 0
    assert api.body("PUT", "/api/v1/apps/hello/scale") == {"replicas": {"web": 3, "worker": 0}}


@pytest.mark.parametrize(("given", "sent"), [(["v3"], 3), (["3"], 3), (["V12"], 12), ([], None)])
def test_rollback_takes_3_or_v3(api: FakeApi, given: list[str], sent: int | None) -> None:
    api.on("POST", "/api/v1/apps/hello/rollback", ok(op(), 202))

    assert cli("rollback", "hello", *given, "--no-wait").exit_code == 0
    assert api.body("POST", "/api/v1/apps/hello/rollback") == {"release": sent}


@pytest.mark.parametrize("args", [["deploy", "hello"], ["deploy", "hello", "--image", "x", "-f", "c.yml"]])
def test_deploy_needs_exactly_one_source(api: FakeApi, args: list[str]) -> None:
    result = cli(*args)

    assert result.exit_code == 2
    assert not api.requests


# -- following operations -------------------------------------------------------------------------


def test_deploy_image_streams_the_log_and_prints_the_url(api: FakeApi) -> None:
    api.on("POST", "/api/v1/apps/hello/deploys", ok(op(release=None), 202))
    api.on(
        "GET",
        "/api/v1/operations/op1",
        ok(op(log="pulling\n")),
        ok({**op("succeeded", message="hello v3 is running"), "log": "", "log_offset": 8}),
    )
    api.on("GET", "/api/v1/apps/hello", ok({"name": "hello", "web": "web", "waiting": []}))

    result = cli("deploy", "hello", "--image", "nginx:alpine", "--port", "80", "-m", "first")

    assert result.exit_code == 0, result.output
    assert api.body("POST", "/api/v1/apps/hello/deploys") == {
        "image": "nginx:alpine",
        "port": 80,
        "description": "first",
    }
    assert "pulling" in result.stderr
    assert result.stdout.strip() == "hello v3 deployed: http://hello.localhost"
    offsets = [r.url.params["log_offset"] for r in api.requests if r.url.path == "/api/v1/operations/op1"]
    assert offsets == ["0", "8"]


def test_deploy_url_carries_the_router_port(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYPAAS_ROUTER_PORT", "8080")
    api.on("POST", "/api/v1/apps/hello/deploys", ok(op("succeeded"), 202))
    api.on("GET", "/api/v1/operations/op1", ok(op("succeeded")))
    api.on("GET", "/api/v1/apps/hello", ok({"name": "hello", "web": "web"}))

    result = cli("deploy", "hello", "--image", "nginx:alpine")

    assert result.stdout.strip() == "hello v3 deployed: http://hello.localhost:8080"


def test_failed_deploy_prints_the_message_and_exits_1(api: FakeApi) -> None:
    message = "v3 did not become healthy in time; v2 keeps serving\n--- last log lines ---\nboom"
    api.on("POST", "/api/v1/apps/hello/deploys", ok(op(), 202))
    api.on("GET", "/api/v1/operations/op1", ok(op("failed", message=message)))

    result = cli("deploy", "hello", "--image", "nginx:alpine")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: v3 did not become healthy")
    assert "boom" in result.stderr
    assert "deployed" not in result.stdout


def test_wait_operation_long_polls_with_growing_offsets() -> None:
    answers = [op(log="a\n"), {**op(log="b\n"), "log_offset": 4}, {**op("succeeded"), "log_offset": 4}]
    seen: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        return ok(answers.pop(0))

    client = ApiClient("http://x", "t", transport=httpx.MockTransport(answer))
    logs: list[str] = []

    done = client.wait_operation("op1", logs.append, timeout=30)

    assert done["status"] == "succeeded"
    assert logs == ["a\n", "b\n"]
    assert [p["log_offset"] for p in seen] == ["0", "2", "4"]
    assert all(float(p["wait"]) == 10 for p in seen)


def test_logs_stream_lines_to_stdout(api: FakeApi) -> None:
    api.on("GET", "/api/v1/apps/hello/logs", httpx.Response(200, text="one\ntwo\n"))

    result = cli("logs", "hello", "web", "--tail", "5")

    assert result.exit_code == 0
    assert result.stdout == "one\ntwo\n"
    params = api.last("GET", "/api/v1/apps/hello/logs").url.params
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
        "compose": compose,
        "env_files": {".env": "TAG=1\n", "web.env": "A=1\n", "common.env": "B=2\n"},
        "description": "msg",
    }
    assert set(payload.contexts) == {"./web", "workers/main"}  # part names exactly as written
    assert tar_names(payload.contexts["./web"]) == {"Dockerfile"}
    assert tar_names(payload.contexts["workers/main"]) == {"Worker.dockerfile"}


def test_compose_missing_required_env_file_is_an_error(tmp_path: Path, api: FakeApi) -> None:
    write(tmp_path, {"compose.yml": "services:\n  web:\n    image: nginx\n    env_file: nope.env\n"})

    line = one_error_line(cli("deploy", "shop", "-f", str(tmp_path / "compose.yml")))

    assert "nope.env" in line
    assert not api.requests


def test_compose_deploy_sends_one_multipart_part_per_context(tmp_path: Path, api: FakeApi) -> None:
    write(
        tmp_path, {"compose.yml": "services:\n  web:\n    build: ./web\n", "web/Dockerfile": "FROM scratch\n"}
    )
    api.on("POST", "/api/v1/apps/shop/deploys", ok(op(), 202))

    result = cli("deploy", "shop", "-f", str(tmp_path / "compose.yml"), "--no-wait")

    assert result.exit_code == 0, result.output
    request = api.last("POST", "/api/v1/apps/shop/deploys")
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'name="request"' in request.content and b'name="./web"' in request.content
    assert b'"compose": "services:' in request.content


def test_spinner_text_names_what_the_rollout_waits_for() -> None:
    from mypaas.cli.output import _progress

    def answer(request: httpx.Request) -> httpx.Response:
        return ok({"name": "hello", "waiting": ["web: 1/2 ready"]})

    client = ApiClient("http://x", "t", transport=httpx.MockTransport(answer))

    assert (
        _progress(client, "hello", "deploying hello", op())
        == "deploying hello v3… waiting for web: 1/2 ready"
    )
    assert (
        _progress(client, "hello", "deploying hello", op("building", release=None))
        == "deploying hello… building"
    )

"""The one mapping of Docker SDK and transport errors to MyPaas errors (composer/errors.py), offline:
the SDK's errors are made here with a hand-built HTTP response, as the SDK makes them from the engine's."""

from __future__ import annotations

from typing import Any

import docker.errors
import pytest
import requests

from mypaas.composer.errors import NOT_A_MANAGER, engine_error, engine_errors, explain
from mypaas.composer.nodes import SwarmNodes
from mypaas.errors import BackendError, BuildFailed, Conflict, InvalidSpec, MyPaasError, NotFound


def api_error(status: int, explanation: str) -> docker.errors.APIError:
    """What the SDK raises for an engine answer ``status`` with JSON ``{"message": explanation}``."""
    response = requests.Response()
    response.status_code = status
    response.url = "http+docker://localhost/v1.45/anything"
    response.reason = "Reason"
    response._content = ('{"message": "' + explanation + '"}').encode()
    with pytest.raises(docker.errors.APIError) as raised:
        docker.errors.create_api_error_from_http_exception(requests.HTTPError(response=response))
    return raised.value


@pytest.mark.parametrize(
    ("status", "explanation", "kind", "field"),
    [
        (404, "No such container: x", NotFound, None),
        (409, "Conflict. The container name is already in use", Conflict, None),
        (500, "driver failed: Bind for 0.0.0.0:8080 failed: port is already allocated", Conflict, "ports"),
        (400, "invalid reference format", InvalidSpec, None),
        (500, "something broke", BackendError, None),
        (503, "This node is not a swarm manager.", BackendError, None),  # no Swarm hint unless asked
        (500, "rpc error: code = FailedPrecondition desc = node is not down", BackendError, None),
    ],
)
def test_engine_answers_map_to_one_error_each(
    status: int, explanation: str, kind: type[MyPaasError], field: str | None
) -> None:
    err = engine_error(api_error(status, explanation), "creating web-1")
    assert type(err) is kind
    assert err.message == f"creating web-1: {explanation}"
    assert err.field == field


def test_the_swarm_control_calls_say_what_is_wrong_with_the_engine() -> None:
    answer = api_error(503, "This node is not a swarm manager.")
    not_manager = engine_error(answer, "listing", swarm_manager=True)
    assert isinstance(not_manager, Conflict)
    assert not_manager.message == (
        "listing: the local engine is not a Swarm manager (`mypaas cluster init` makes it one)"
    )
    precondition = engine_error(
        api_error(500, "rpc error: code = FailedPrecondition desc = node is not down"),
        "removing node n1",
        swarm_manager=True,
    )
    assert isinstance(precondition, Conflict) and "node is not down" in precondition.message
    missing = engine_error(api_error(404, "node n1 not found"), "inspecting node n1", not_found_field="host")
    assert isinstance(missing, NotFound) and missing.field == "host"


def test_transport_errors_and_other_sdk_errors_are_backend_errors() -> None:
    dropped = engine_error(requests.ConnectionError("Connection aborted."), "importing a:1")
    assert type(dropped) is BackendError and dropped.message == "importing a:1: Connection aborted."
    sdk = engine_error(docker.errors.DockerException("Error while fetching server API version"), "ping")
    assert type(sdk) is BackendError and sdk.message == "ping: Error while fetching server API version"
    assert explain(docker.errors.DockerException()) == "DockerException"


def test_the_engine_text_ends_with_its_reason() -> None:
    exc = api_error(500, "Error processing tar file(duplicates of file paths not supported): ")

    assert explain(exc) == "Error processing tar file(duplicates of file paths not supported)"
    assert str(engine_error(exc, "importing a/b:1")) == (
        "importing a/b:1: Error processing tar file(duplicates of file paths not supported)"
    )


def test_a_forced_kind_wins() -> None:
    err = engine_error(api_error(404, "pull access denied"), "build failed", as_error=BuildFailed)
    assert type(err) is BuildFailed and err.message == "build failed: pull access denied"


def test_the_context_manager_converts_and_chains() -> None:
    original = api_error(409, "name in use")
    with pytest.raises(Conflict) as raised, engine_errors("creating network n"):
        raise original
    assert raised.value.message == "creating network n: name in use"
    assert raised.value.__cause__ is original


def test_the_context_manager_lets_other_errors_through() -> None:
    own = InvalidSpec("bad", field="image")
    with pytest.raises(InvalidSpec) as raised, engine_errors("anything"):
        raise own
    assert raised.value is own
    with pytest.raises(KeyError), engine_errors("anything"):
        raise KeyError("x")
    with engine_errors("nothing wrong"):
        done = True
    assert done


# -- the sites: SwarmNodes over an SDK client that answers with errors ------------------------------


class FailingApi:
    """An SDK low-level client whose every call raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise self.error

        return call


class FailingClient:
    def __init__(self, error: Exception) -> None:
        self.api = FailingApi(error)


def nodes_failing_with(error: Exception) -> SwarmNodes:
    return SwarmNodes(FailingClient(error))  # type: ignore[arg-type]  # the SDK client's duck


def test_nodes_map_their_errors_at_the_boundary() -> None:
    with pytest.raises(Conflict) as not_manager:
        nodes_failing_with(api_error(503, "This node is not a swarm manager.")).nodes()
    assert not_manager.value.message == f"listing the Swarm's nodes: {NOT_A_MANAGER}"
    with pytest.raises(NotFound) as missing:
        nodes_failing_with(api_error(404, "node n1 not found")).node("n1")
    assert missing.value.message == "no Swarm node 'n1'" and missing.value.field == "host"
    with pytest.raises(BackendError) as unreachable:
        nodes_failing_with(requests.ConnectionError("Connection refused")).running_tasks("n1")
    assert unreachable.value.message == "listing the tasks of node n1: Connection refused"


def test_nodes_take_gone_as_done() -> None:
    gone = FailingClient(api_error(404, "node n1 not found"))
    SwarmNodes(gone).remove_node("n1")  # type: ignore[arg-type]
    assert gone.api.calls == ["remove_node"]
    alone = FailingClient(api_error(503, "This node is not part of a swarm"))
    SwarmNodes(alone).leave()  # type: ignore[arg-type]
    assert alone.api.calls == ["leave_swarm"]
    with pytest.raises(Conflict) as worker:
        nodes_failing_with(api_error(503, "This node is not a swarm manager.")).leave()
    assert worker.value.message == f"leaving the Swarm: {NOT_A_MANAGER}"

"""The OpenAPI spec lists every status an operation answers with, and the one Error body of them all: a
client generated from the spec knows the 400, 401, 403, 404, 409 … it can get (the fuzz run in tests/fuzz
checks the answers against it)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from mypaas.manager.identity.policy import RULES, Scope

ERROR_REF = "#/components/schemas/Error"
METHODS = {"get", "put", "post", "patch", "delete"}


def _spec(api: TestClient) -> dict[str, Any]:
    spec: dict[str, Any] = TestClient(api.app).get("/api/v1/openapi.json").json()
    return spec


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items() if m in METHODS]


def _rule(op: dict[str, Any]) -> str:
    return str(op["x-mypaas-access"]["scope"])


def test_every_operation_documents_the_errors_that_apply(api: TestClient) -> None:
    spec = _spec(api)
    ops = _operations(spec)
    assert len(ops) >= 60
    for method, path, op in ops:
        codes = set(op["responses"])
        where = f"{method.upper()} {path}"
        params = [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]  # not the token
        has_input = params or "requestBody" in op
        if has_input:
            assert "400" in codes, where
        if _rule(op) != Scope.PUBLIC.value:
            assert {"401", "403"} <= codes, where
        if "{" in path:
            assert "404" in codes, where
        if method != "get" and path not in (
            "/api/v1/login",
            "/api/v1/session",
            "/api/v1/reconcile",
            "/api/v1/registry/gc",
        ):
            assert "409" in codes, where
        assert "422" not in codes, where  # a request failing validation is answered 400
        for code in codes - {"200", "201", "202", "204"}:
            schema = op["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, (where, code)
    assert {"HTTPValidationError", "ValidationError"}.isdisjoint(spec["components"]["schemas"])


def test_the_error_schema_is_the_body_errors_have(api: TestClient) -> None:
    error = _spec(api)["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(error["properties"]) == {"error", "field"}
    answer = api.get("/api/v1/apps/nope")
    assert answer.status_code == 404
    assert set(answer.json()) <= set(error["properties"]) and answer.json()["field"] == "app"


def test_the_statuses_only_some_operations_answer(api: TestClient) -> None:
    paths = _spec(api)["paths"]
    login = paths["/api/v1/login"]["post"]["responses"]
    assert {"400", "401", "413", "429"} <= set(login) and "403" not in login
    assert set(paths["/api/v1/health"]["get"]["responses"]) == {"200"}
    assert "413" in paths["/api/v1/apps/{name}/deploys"]["post"]["responses"]  # a body read by hand
    assert "501" in paths["/api/v1/images"]["get"]["responses"]  # the registry turned off
    assert "404" in paths["/api/v1/events"]["get"]["responses"]  # ?app= naming no app
    assert "502" not in paths["/api/v1/whoami"]["get"]["responses"]  # only the manager's own state


def test_every_route_has_a_rule_so_its_401_and_403_come_from_it(api: TestClient) -> None:
    ops = _operations(_spec(api))
    public = [(m, p) for m, p, op in ops if _rule(op) == Scope.PUBLIC.value]
    assert sorted(public) == [
        ("delete", "/api/v1/session"),  # the dashboard's sign-out: checks the session itself
        ("get", "/api/v1/health"),
        ("get", "/api/v1/registry/token"),
        ("get", "/api/v1/session"),
        ("get", "/api/v1/tls/ca"),
        ("post", "/api/v1/hooks/git/{app}"),  # a forge's webhook: checks the forge's signature itself
        ("post", "/api/v1/login"),
        ("post", "/api/v1/session"),
    ]
    assert all(RULES[n].scope == Scope.PUBLIC for n in ("health", "registry_token", "login", "platform_ca"))

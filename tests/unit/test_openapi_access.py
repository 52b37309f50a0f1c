"""The OpenAPI spec at /api/v1/openapi.json says, for every operation, what access it needs: the rule of
policy.RULES for its route's name (a sentence ending the description and ``x-mypaas-access``)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mypaas.manager.identity.policy import RULES
from tests.unit.routes import api_routes


def test_every_operation_says_the_role_it_needs(api: TestClient) -> None:
    spec = TestClient(api.app).get("/api/v1/openapi.json").json()  # no token needed for the spec
    seen = 0
    for route in api_routes(api.app):  # type: ignore[arg-type]
        if not route.include_in_schema:
            continue
        rule = RULES[route.name]
        for method in route.methods - {"HEAD"}:
            op = spec["paths"][route.path_format][method.lower()]
            assert op["description"].endswith(f"Access: {rule.describe()}."), (route.name, op["description"])
            access = op["x-mypaas-access"]
            assert access["needs"] == rule.describe() and access["scope"] == rule.scope.value
            assert access.get("role") == (rule.role.label if rule.role else None)
            seen += 1
    assert seen >= 50


def test_examples_read_as_the_readme_says(api: TestClient) -> None:
    paths = TestClient(api.app).get("/api/v1/openapi.json").json()["paths"]
    deploy = paths["/api/v1/apps/{name}/deploys"]["post"]
    assert deploy["description"].endswith("\n\nAccess: deployer on the app's team (or an app token for it).")
    assert paths["/api/v1/hosts"]["get"]["description"].endswith("Access: platform admin.")
    assert paths["/api/v1/health"]["get"]["x-mypaas-access"] == {"needs": "no token", "scope": "public"}
    # the import's own extension (its streamed body) is kept
    assert "requestBody" in paths["/api/v1/images/import"]["post"]
    listing = paths["/api/v1/apps"]["get"]["x-mypaas-access"]
    assert listing == {
        "needs": "viewer in a team (lists only the caller's teams)",
        "scope": "listing",
        "role": "viewer",
    }

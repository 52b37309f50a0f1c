"""`mypaas previews on|off|ls|rm` and `mypaas deploy --preview BRANCH` through the real API over the fake
backend, with the manager's loops running."""

from __future__ import annotations

import json

from mypaas.domain import preview_app_name
from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, one_error_line

FEATURE = preview_app_name("shop", "feature/x")


def test_on_deploy_list_rm_off(server: Server, manager: Platform) -> None:
    assert cli("deploy", "shop", "--image", "web:1").exit_code == 0
    refused = cli("deploy", "shop", "--image", "web:1", "--preview", "feature/x")
    assert one_error_line(refused) == (
        "error: previews are off for app shop: `mypaas previews on shop` turns them on"
    )

    on = cli("previews", "on", "shop", "--limit", "2")
    assert on.exit_code == 0, on.output
    assert on.stdout.strip() == "previews of shop: on, limit 2, without secrets; 0 exist"

    deployed = cli("deploy", "shop", "--image", "web:1", "--preview", "feature/x")
    assert deployed.exit_code == 0, deployed.output
    assert deployed.stdout.strip() == f"{FEATURE} v1 deployed: http://{FEATURE}.localhost"
    assert server.body("POST", "/api/v1/apps/shop/deploys")["preview"] == "feature/x"

    listing = cli("previews", "shop")
    assert listing.stderr.strip() == "previews of shop: on, limit 2, without secrets; 1 exists"
    header, row = listing.stdout.splitlines()
    assert header.split() == ["NAME", "BRANCH", "URL", "STATUS", "RELEASE", "CREATED"]
    assert row.split()[:5] == [FEATURE, "feature/x", f"http://{FEATURE}.localhost", "running", "v1"]
    [entry] = json.loads(cli("previews", "ls", "shop", "--json").stdout)
    assert (entry["name"], entry["branch"]) == (FEATURE, "feature/x")
    assert f"{FEATURE} (preview of shop)" in cli("ls").stdout
    apps = {a["name"]: a for a in json.loads(cli("ls", "--json").stdout)}
    assert (apps[FEATURE]["preview_of"], apps[FEATURE]["preview_branch"]) == ("shop", "feature/x")

    off = cli("previews", "off", "shop")
    assert off.stdout.strip() == "previews of shop: off, limit 2, without secrets; 1 exists"

    removed = cli("previews", "rm", "shop", "feature/x")
    assert removed.exit_code == 0, removed.output
    assert f"removed {FEATURE}" in removed.stdout
    again = cli("previews", "rm", "shop", "feature/x")
    assert (again.exit_code, again.stdout.strip()) == (
        0,
        "no preview of shop for feature/x: nothing to remove",
    )
    assert cli("previews", "shop").stdout.strip() == "no previews"
    assert cli("previews", "shop", "--json").stdout.strip() == "[]"


def test_bad_input_is_one_line(server: Server, manager: Platform) -> None:
    assert cli("deploy", "shop", "--image", "web:1").exit_code == 0
    cli("previews", "on", "shop")
    bad = cli("deploy", "shop", "--image", "web:1", "--preview", "a..b")
    assert "invalid git branch name 'a..b'" in one_error_line(bad)
    assert cli("previews", "on", "shop", "--limit", "0").exit_code == 2
    assert "no app named 'shoq'" in one_error_line(cli("previews", "rm", "shoq", "x"))

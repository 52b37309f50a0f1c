"""`mypaas export` and `mypaas apply` through the real API over the fake backend: the file written, the
plan shown as +/~/- lines, a confirmation asked, a line per app as its rollout ends, "No changes" the
second time, and bad files refused with one error line."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, one_error_line


def test_export_edit_apply_then_no_changes(server: Server, manager: Platform, tmp_path: Path) -> None:
    for name in ("shop", "blog"):
        deployed = cli("deploy", name, "--image", "web:1", "--port", "80")
        assert deployed.exit_code == 0, deployed.output
    out = tmp_path / "platform.yml"
    exported = cli("export", "-o", str(out))
    assert exported.exit_code == 0 and exported.stdout.strip() == f"wrote {out}"
    assert cli("export").stdout == out.read_text()

    doc = yaml.safe_load(out.read_text())
    doc["apps"]["shop"]["scale"]["web"] = 2
    doc["apps"]["shop"]["config"] = {"GREETING": "hi"}
    del doc["apps"]["blog"]
    out.write_text(yaml.safe_dump(doc))

    planned = cli("apply", "-f", str(out), "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert planned.stdout.splitlines() == [
        "~ apps.shop.scale.web: 1 → 2 replicas",
        "+ apps.shop.config.GREETING: set",
        "  apps.blog: not in the file, kept (--prune removes it)",
        "Plan: 1 to add, 1 to change, 0 to remove.",
    ]
    as_json = json.loads(cli("apply", "-f", str(out), "--prune", "--dry-run", "--json").stdout)
    assert as_json["changes"][0]["path"] == "apps.blog"

    refused = one_error_line(cli("apply", "-f", str(out), "--prune", stdin=b"y\n"))
    assert refused == "error: apply changes the platform: confirm with --yes (stdin is not a terminal)"
    assert server.platform.apps.get("blog")["state"] == "running"

    applied = cli("apply", "-f", str(out), "--prune", "--yes")
    assert applied.exit_code == 0, applied.output
    assert "- apps.blog: app removed (volumes kept)" in applied.stdout
    assert applied.stdout.splitlines()[-2:] == ["removed blog", "shop v2 is running"]

    again = cli("apply", "-f", str(out), "--prune", "--yes")
    assert again.exit_code == 0 and again.stdout.strip() == "No changes: the platform matches the file."


def test_a_bad_file_is_one_error_line(server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "prod.yml"
    bad.write_text("apiVersion: mypaas/v1\nkind: Platform\napps: {}\nalertz: {}\n")
    line = one_error_line(cli("apply", "-f", str(bad), "--yes"))
    assert line == "error: prod.yml: unknown key 'alertz' at alertz"
    line = one_error_line(cli("apply", "-f", str(tmp_path / "missing.yml")))
    assert "missing.yml" in line
    line = one_error_line(cli("export", "shpo"))
    assert "no app named 'shpo'" in line


def test_a_file_that_a_service_would_refuse_is_one_error_line(server: Server, tmp_path: Path) -> None:
    assert cli("deploy", "shop", "--image", "web:1", "--port", "80", "--no-wait").exit_code == 0
    out = tmp_path / "platform.yml"
    assert cli("export", "-o", str(out)).exit_code == 0
    doc = yaml.safe_load(out.read_text())
    doc["apps"]["shop"]["config"] = {"GREETING": "hi"}
    doc["apps"]["shop"]["autoscale"] = {"web": {"min": 5, "max": 2, "target_cpu_pct": 70}}
    out.write_text(yaml.safe_dump(doc))
    line = one_error_line(cli("apply", "-f", str(out), "--yes"))
    assert line == "error: apps.shop.autoscale.web: max (2) is below min (5)"

    del doc["apps"]["shop"]["autoscale"]
    doc["apps"]["shop"]["spec"]["services"]["web"]["volumes"] = [
        {"source": "mypaas_blog_data", "target": "/x"}
    ]
    out.write_text(yaml.safe_dump(doc))
    line = one_error_line(cli("apply", "-f", str(out), "--yes"))
    assert line == (
        "error: apps.shop.spec.services.web.volumes[0]: volume 'mypaas_blog_data' is not declared in the "
        "top-level volumes"
    )
    assert server.platform.releases.config("shop") == {}  # nothing of either file was applied

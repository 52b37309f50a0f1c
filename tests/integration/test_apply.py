"""Issue 16, `mypaas export` / `mypaas apply` on the real engine and Caddy: a running platform of two apps
exported, the file changed (an image, a scale, a config value, one app left out), applied with --prune
--yes; the platform then serves what the file says, and applying it again changes nothing. A file that
mounts another app's volume is refused whole first, in one line."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml

from tests import kit

pytestmark = pytest.mark.integration


def test_export_change_apply_prune_then_no_changes(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    shop, blog = (f"{prefix}-{secrets.token_hex(3)}" for prefix in ("shop", "blog"))
    for app in (shop, blog):
        platform.cli("deploy", app, "--image", images["v1"], "--port", "80", check=True)
    platform.cli("config", "set", shop, "GREETING=hi", check=True)
    platform.wait_for(shop, body="version one")

    out = tmp_path / "platform.yml"
    platform.cli("export", "-o", str(out), check=True)
    doc = yaml.safe_load(out.read_text())
    assert set(doc["apps"]) == {shop, blog}
    app = doc["apps"][shop]
    app["spec"]["services"]["web"]["image"] = images["v2"]
    app["scale"]["web"] = 2
    app["config"]["GREETING"] = "hello"
    del doc["apps"][blog]
    out.write_text(yaml.safe_dump(doc))

    # a file whose spec mounts another app's volume (or whose autoscaling is out of bounds) is refused
    # whole, in one line naming its path, before anything of it is applied
    bad = tmp_path / "bad.yml"
    stolen = {"source": f"mypaas_{blog}_data", "target": "/steal"}
    web = {**app["spec"]["services"]["web"], "volumes": [stolen]}
    bad_app = {**app, "spec": {**app["spec"], "services": {"web": web}}}
    bad.write_text(yaml.safe_dump({**doc, "apps": {shop: bad_app}}))
    refused = platform.cli("apply", "-f", str(bad), "--yes")
    assert refused.code != 0 and "Traceback" not in refused.err, refused
    assert refused.err.strip().splitlines() == [
        f"error: apps.{shop}.spec.services.web.volumes[0]: volume 'mypaas_{blog}_data' is not declared in "
        "the top-level volumes"
    ], refused
    assert platform.api("GET", f"/api/v1/apps/{shop}/config") == {"GREETING": "hi"}

    applied = platform.cli("apply", "-f", str(out), "--prune", "--yes", check=True)
    for line in (
        f"~ apps.{shop}.spec",
        f"~ apps.{shop}.scale.web: 1 → 2 replicas",
        f"~ apps.{shop}.config.GREETING: new value",
        f"- apps.{blog}: app removed (volumes kept)",
    ):
        assert line in applied.out, applied
    assert f"removed {blog}" in applied.out and f"{shop} v" in applied.out, applied

    platform.wait_ready(shop, 2, timeout=60)
    platform.wait_for(shop, body="version two")
    assert platform.api("GET", f"/api/v1/apps/{shop}/config") == {"GREETING": "hello"}
    kit.wait_until(lambda: blog not in {a["name"] for a in platform.api("GET", "/api/v1/apps")}, timeout=60)

    again = platform.cli("apply", "-f", str(out), "--prune", "--yes", check=True)
    assert again.out.strip() == "No changes: the platform matches the file.", again
    platform.cli("rm", shop, "--yes")

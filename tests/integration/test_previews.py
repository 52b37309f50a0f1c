"""Issue 17, preview apps, on the real engine and Caddy: an app deployed from a folder with a config var
and a secret; previews on (limit 2, without secrets); `deploy --preview feature/x` serves at its own URL
with the app's config and without its secret; a third branch is refused by the limit; `previews rm`
removes the preview with everything it had."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from mypaas.domain import preview_app_name
from tests import kit

pytestmark = pytest.mark.integration

SHOW = (
    'echo "greeting=$GREETING secret=$(cat /run/secrets/api_token 2>/dev/null || echo none)" '
    "> /www/index.html; exec httpd -f -p 80 -h /www"
)


def engine_things(platform: kit.Platform, app: str) -> list[str]:
    """The containers, networks and volumes of ``app`` on the engine."""
    client = kit.docker_client()
    label = {"label": [f"mypaas.platform={platform.platform_id}", f"mypaas.app={app}"]}
    return [
        *(c.name for c in client.containers.list(all=True, filters=label)),
        *(n.name for n in client.networks.list(filters=label)),
        *(v.name for v in client.volumes.list(filters=label)),
    ]


def test_a_branch_preview_serves_with_the_config_without_the_secret_and_goes_away(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    app = f"shop{secrets.token_hex(2)}"
    preview = preview_app_name(app, "feature/x")
    (tmp_path / "Dockerfile").write_text(f"FROM {images['v1']}\nCMD {json.dumps(['/bin/sh', '-c', SHOW])}\n")
    try:
        platform.cli("deploy", app, str(tmp_path), "--port", "80", check=True, timeout=300)
        platform.cli("config", "set", app, "GREETING=hello", check=True)
        platform.cli("secrets", "set", app, "api_token", stdin="t0ken-77", check=True)
        kit.wait_served(platform, app, "/", 200, "greeting=hello secret=none\n")

        on = platform.cli("previews", "on", app, "--limit", "2", check=True)
        assert on.out.strip() == f"previews of {app}: on, limit 2, without secrets; 0 exist"
        made = platform.cli(
            "deploy", app, str(tmp_path), "--port", "80", "--preview", "feature/x", timeout=300
        )
        assert made.code == 0, made
        assert f"secrets of {app} left out (api_token)" in made.err
        assert made.out.strip().endswith(
            f"{preview} v1 deployed: http://{preview}.localhost:{platform.router_port}"
        )
        kit.wait_served(platform, preview, "/", 200, "greeting=hello secret=none\n")
        assert platform.cli("secrets", preview, "--json", check=True).json() == []
        assert f"{preview} (preview of {app})" in platform.cli("ls", check=True).out

        second = platform.cli("deploy", app, "--image", images["v1"], "--port", "80", "--preview", "b2")
        assert second.code == 0, second
        third = platform.cli("deploy", app, "--image", images["v1"], "--port", "80", "--preview", "b3")
        assert third.code == 1
        assert third.err.startswith(f"error: app {app} has 2 previews, its limit ({app}-b2, {preview})")
        listed = platform.cli("previews", app, "--json", check=True).json()
        assert sorted(p["branch"] for p in listed) == ["b2", "feature/x"]
        assert engine_things(platform, preview)

        removed = platform.cli("previews", "rm", app, "feature/x", check=True)
        assert f"removed {preview}" in removed.out
        assert engine_things(platform, preview) == []
        assert platform.api("GET", f"/api/v1/apps/{preview}", expect=404)["field"] == "app"
        assert platform.get(preview)[0] == 404
        assert [p["branch"] for p in platform.cli("previews", app, "--json", check=True).json()] == ["b2"]
        kit.wait_served(platform, app, "/", 200, "greeting=hello secret=none\n")  # the app itself serves on
    finally:
        platform.cli("rm", app, "--yes", "--volumes")
        kit.untag(f"mypaas-{app}")

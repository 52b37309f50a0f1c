"""`mypaas rm` on the real engine: an app's named volumes are kept unless --volumes, `volumes ls|rm`
see and remove them, a deploy of the same name mounts the kept data again; a removal that a foreign
container blocks says why (`ls`, `ps`, `rm`, `events`) and `rm --force` finishes it."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

import docker.errors
import pytest

from tests import kit

pytestmark = pytest.mark.integration

# the first start writes a marker into the volume; every start serves what the volume holds
KEEPER = """services:
  web:
    image: mypaas-test/web:v1
    expose: ["80"]
    volumes: ["data:/data"]
    command:
      - /bin/sh
      - -c
      - >-
        [ -f /data/first ] || echo born-$$$$-$$RANDOM > /data/first;
        cp /data/first /www/first.html; exec httpd -f -p 80 -h /www
volumes:
  data: {}
"""


def _volume_there(name: str) -> bool:
    return any(v.name == name for v in kit.docker_client().volumes.list(filters={"name": name}))


def _born(platform: kit.Platform, app: str) -> str:
    """The marker the app's first start wrote into its volume ("" until it answers)."""
    status, body = platform.get(app, "/first.html")
    return body if status == 200 and body.startswith("born-") else ""


def test_volumes_are_kept_listed_reused_and_removed_on_request(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    app = f"keep-{secrets.token_hex(3)}"
    volume = f"mypaas_{app}_data"
    compose = tmp_path / "compose.yml"
    compose.write_text(KEEPER)
    assert platform.cli("deploy", app, "-f", str(compose)).code == 0
    first = kit.wait_until(lambda: _born(platform, app))

    removed = platform.cli("rm", app, "--yes")

    assert removed.code == 0, removed
    assert removed.out.splitlines()[-1] == f"kept volume {volume} (mypaas volumes rm {volume} removes it)"
    assert _volume_there(volume)
    listed = [v for v in platform.cli("volumes", "ls", "--json").json() if v["app"] == app]
    assert [(v["name"], v["volume"], v["app_state"], v["used_by"]) for v in listed] == [
        (volume, "data", "removed", [])
    ]

    assert platform.cli("deploy", app, "-f", str(compose)).code == 0
    kit.wait_served(platform, app, "/first.html", 200, first)  # the kept data, mounted again
    refused = platform.cli("volumes", "rm", volume)
    assert refused.code == 1
    assert refused.err.startswith(f"error: volume {volume} is in use by app {app} (container {app}-web-")

    gone = platform.cli("rm", app, "--yes", "--volumes")

    assert gone.code == 0, gone
    assert gone.out.splitlines()[-1] == f"removed volume {volume}"
    assert not _volume_there(volume)


def test_a_foreign_container_blocks_the_removal_until_forced(
    platform: kit.Platform, images: dict[str, str]
) -> None:
    app = f"stuck-{secrets.token_hex(3)}"
    foreign = f"foreign-{secrets.token_hex(3)}"
    client = kit.docker_client()
    assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
    [mine] = client.containers.list(filters={"label": f"mypaas.app={app}"})
    [network] = mine.attrs["NetworkSettings"]["Networks"]  # the app's network, taken from the pool
    assert network.startswith("mypaaspool_")
    try:
        client.containers.run(
            images["v1"],
            ["/bin/sh", "-c", "sleep 300"],
            name=foreign,
            detach=True,
            network=network,
            labels={kit.TEST_LABEL: "1"},
        )
        why = f"network {network} has active endpoints (container {foreign})"

        blocked = platform.cli("rm", app, "--yes")

        assert blocked.code == 1
        assert [line for line in blocked.err.splitlines() if line.startswith("error:")] == [
            f"error: removing {app} cannot finish: {why} (mypaas rm {app} --force finishes it)"
        ]
        [line] = [row for row in platform.cli("ls").out.splitlines() if row.startswith(app)]
        assert f"deleting: {why}" in line
        ps = platform.cli("ps", app)
        assert ps.code == 0 and f"app {app} is being deleted but cannot be: {why}" in ps.err
        again = platform.cli("rm", app, "--yes")
        assert again.code == 1 and again.err.startswith(f"error: app {app} is being deleted but cannot be")
        kit.wait_until(lambda: f"cannot finish: {why}" in platform.cli("events", app).out)

        forced = platform.cli("rm", app, "--yes", "--force")

        assert forced.code == 0, forced
        assert app not in {a["name"] for a in platform.cli("ls", "--json").json()}
        assert not client.networks.list(names=[network])
        assert client.containers.get(foreign).status == "running"  # cut off, not removed
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.containers.get(foreign).remove(force=True)

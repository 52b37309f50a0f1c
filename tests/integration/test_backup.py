"""Backup and restore of the whole platform on the real engine: apps (a compose app whose named volume
holds data it wrote, a secret, a domain) backed up with their images and volumes; then everything
destroyed (the platform, its containers, volumes and images, the data folder with the registry's data);
a fresh platform on the same data folder restores the archive and serves the same content again."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
from pathlib import Path

import docker
import pytest

from tests import kit

pytestmark = pytest.mark.integration

COMPOSE = """
services:
  web:
    image: {image}
    ports: ["80"]
    volumes: ["data:/data"]
    secrets: [token]
    command:
      - /bin/sh
      - -c
      - >-
        test -s /data/x || echo data-$$RANDOM-$$RANDOM > /data/x;
        cp /data/x /www/index.html; cp /run/secrets/token /www/token.html;
        exec httpd -f -p 80 -h /www
secrets:
  token: {{external: true}}
volumes:
  data: {{}}
"""


def published(p: kit.Platform, *repos: str) -> bool:
    """Every release's images reached the registry (they are pushed after the rollout)."""
    have = {row["repository"] for row in p.api("GET", "/api/v1/images")}
    return set(repos) <= have


def destroy(p: kit.Platform, image_ids: list[str]) -> None:
    """Lose the machine's platform: stopped, its engine resources and images gone, its folder emptied."""
    p.down()
    for name in ("mirror", "registry"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((p.home / name / "registry.pid").read_text()), signal.SIGKILL)
    kit.remove_labelled(f"mypaas.platform={p.platform_id}")
    client = kit.docker_client()
    for image_id in image_ids:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(image_id, force=True)
    shutil.rmtree(p.home)
    p.home.mkdir(mode=0o700)


def test_a_platform_comes_back_from_its_backup(tmp_path: Path) -> None:
    tag = secrets.token_hex(3)
    data, web = f"bkdata-{tag}", f"bkweb-{tag}"
    domain = f"www.bk-{tag}.test"
    images = {
        "data": f"mypaas-bk-{tag}/data:1",
        "web": f"mypaas-bk-{tag}/web:1",
    }
    ids = [kit.busybox_image(images["data"]), kit.web_image(images["web"], "the web app")]
    (tmp_path / "compose.yml").write_text(COMPOSE.format(image=images["data"]))
    passfile = tmp_path / "passphrase"
    passfile.write_text("a passphrase for the test\n")
    archive = tmp_path / "platform.tar"
    p = kit.Platform()
    platforms: list[str] = []
    try:
        p.up()
        platforms.append(p.platform_id)
        p.cli("secrets", "set", data, "token", stdin="s3cret-token", check=True)
        p.cli("deploy", data, "-f", str(tmp_path / "compose.yml"), check=True)
        p.cli("deploy", web, "--image", images["web"], check=True)
        p.cli("domains", "add", web, domain, check=True)
        written = p.wait_for(data, body="data-").strip()
        kit.wait_served(p, data, "/token.html", 200, "s3cret-token")
        p.wait_for(domain, body="the web app")
        kit.wait_until(lambda: published(p, f"{data}/web", f"{web}/web"), timeout=60)

        made = p.cli(
            "backup", str(archive), "--with-images", "--with-volumes", "--passphrase-file", str(passfile)
        )
        assert made.code == 0, made
        assert f"  volumes/mypaas_{data}_data (" in made.out and "  registry (" in made.out
        assert made.out.splitlines()[-1].startswith(f"backup written to {archive} (")

        destroy(p, ids)
        assert p.get(data)[0] != 200
        p.up()  # a fresh platform on the same data folder: no apps
        platforms.append(p.platform_id)
        assert p.api("GET", "/api/v1/apps") == []

        done = p.cli("restore", str(archive), "--passphrase-file", str(passfile), timeout=300)
        assert done.code == 0, done
        assert "restored 2 app(s)" in done.out
        p.up()  # the restored admin token, the archive's platform id
        platforms.append(p.platform_id)
        assert p.platform_id == platforms[0]

        assert p.wait_for(data, body="data-", timeout=60).strip() == written  # the volume's data is back
        kit.wait_served(p, data, "/token.html", 200, "s3cret-token")
        p.wait_for(domain, body="the web app", timeout=30)
        assert sorted(a["name"] for a in p.api("GET", "/api/v1/apps")) == sorted([data, web])

        again = p.cli("restore", str(archive), "--passphrase-file", str(passfile))
        assert again.code == 1 and "this platform has 2 app(s)" in again.err and "--yes" in again.err
    finally:
        p.cleanup()
        for platform in platforms:
            kit.remove_labelled(f"mypaas.platform={platform}")
        for prefix in (f"mypaas-bk-{tag}/", f"mypaas-{data}/", f"mypaas-{web}/"):
            kit.untag(prefix)

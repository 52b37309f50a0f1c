"""Deploys from source with no Dockerfile, on the real engine: a Python app (pip inside the build, from
MyPaas's own Debian base) and a Node app; an unchanged redeploy comes from the build cache."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration

PY_APP = """import os
from http.server import BaseHTTPRequestHandler, HTTPServer

import six


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"python says hi (six {six.__version__})".encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Hello).serve_forever()
"""

NODE_APP = """const http = require("http");
http.createServer((req, res) => res.end("node says hi")).listen(process.env.PORT);
"""


def test_python_app_from_source_and_cached_redeploy(platform: kit.Platform, tmp_path: Path) -> None:
    app = f"py-{secrets.token_hex(3)}"
    (tmp_path / "app.py").write_text(PY_APP)
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    (tmp_path / "Procfile").write_text("web: python3 app.py\n")
    first = platform.cli("deploy", app, str(tmp_path), timeout=1500)
    assert first.code == 0, first
    assert "detected a python app (Procfile web)" in first.out + first.err
    platform.wait_for(app, body="python says hi (six 1.16.0)")
    again = platform.cli("deploy", app, str(tmp_path), timeout=600)
    assert again.code == 0, again
    log = again.out + again.err
    pip_step = log.split("RUN pip install", 1)[1]
    assert "Using cache" in pip_step.split("Step", 1)[0]  # the dependency layer came from the cache
    platform.wait_for(app, body="python says hi")
    platform.cli("rm", app, "--yes")


def test_node_app_from_source(platform: kit.Platform, tmp_path: Path) -> None:
    app = f"node-{secrets.token_hex(3)}"
    (tmp_path / "server.js").write_text(NODE_APP)
    (tmp_path / "package.json").write_text(json.dumps({"name": "hi", "scripts": {"start": "node server.js"}}))
    r = platform.cli("deploy", app, str(tmp_path), timeout=1500)
    assert r.code == 0, r
    assert "detected a node app" in r.out + r.err
    platform.wait_for(app, body="node says hi")
    platform.cli("rm", app, "--yes")

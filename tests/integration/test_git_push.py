"""`git push` deploys, with the real `git` and OpenSSH `ssh` against the manager's SSH endpoint: a
Dockerfile app, a compose app and a Python source app; a second push reuses the build cache; a broken
build rejects the push and the old release keeps serving; unknown keys and users without the right are
refused before anything is received; a force-push deploys; bad input is one line on the pusher's side."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gp() -> Iterator[kit.Platform]:
    with kit.running_platform(git_ssh_port=kit.free_port()) as p:
        yield p


def keygen(folder: Path, name: str) -> Path:
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


class Repo:
    """A working repository pushing with one SSH key."""

    def __init__(self, folder: Path, key: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        ssh = (
            f"ssh -i {key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        )
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "MYPAAS_"))},
            "GIT_SSH_COMMAND": f"{ssh} -o BatchMode=yes -o LogLevel=ERROR",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        }
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["git", *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def commit(self, files: dict[str, str], message: str, amend: bool = False) -> str:
        for name, text in files.items():
            (self.folder / name).parent.mkdir(parents=True, exist_ok=True)
            (self.folder / name).write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message, *(["--amend"] if amend else []))
        return self.git("rev-parse", "HEAD").stdout.strip()

    def push(self, url: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.git("push", url, *args, check=False)


def _objects(p: kit.Platform, app: str) -> int:
    folder = p.home / "git" / f"{app}.git" / "objects"
    return sum(1 for f in folder.rglob("*") if f.is_file()) if folder.exists() else 0


def _ref(p: kit.Platform, app: str, branch: str = "main") -> str:
    git_dir = str(p.home / "git" / f"{app}.git")
    done = subprocess.run(
        ["git", "--git-dir", git_dir, "rev-parse", "-q", "--verify", branch],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def test_git_push_deploys(gp: kit.Platform, images: dict[str, str], tmp_path: Path) -> None:
    admin_key, dev_key, stranger_key = (keygen(tmp_path, n) for n in ("admin", "dev", "stranger"))
    r = gp.cli("user", "key", "add", "admin", f"{admin_key}.pub", check=True)
    assert "added key SHA256:" in r.out
    again = gp.cli("user", "key", "add", "admin", f"{admin_key}.pub")
    assert again.code == 1 and "already registered" in again.err, again
    private = gp.cli("user", "key", "add", "admin", str(admin_key))
    assert private.code == 1 and "private key" in private.err and private.err.count("\n") == 1, private
    assert gp.cli("user", "key", "ls", "admin", "--json", check=True).json()[0]["type"] == "ssh-ed25519"
    gp.cli("user", "add", "dev", "--password-stdin", stdin="correct horse battery\n", check=True)
    gp.cli("team", "member", "add", "default", "dev", "--role", "viewer", check=True)
    gp.cli("user", "key", "add", "dev", f"{dev_key}.pub", check=True)

    app = f"gp-{secrets.token_hex(2)}"
    url = gp.cli("git", "remote", app, check=True).out.strip()
    port = str(gp.env["MYPAAS_GIT_SSH_PORT"])
    assert url == f"ssh://git@localhost:{port}/{app}.git"

    # a shell is refused in one line
    shell = subprocess.run(
        [
            "ssh",
            "-i",
            str(admin_key),
            "-p",
            port,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "git@127.0.0.1",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert shell.returncode != 0 and "no shell here" in shell.stderr, shell

    # a Dockerfile app: pushed, built, served; the release says the commit
    web = Repo(tmp_path / "web", admin_key)
    dockerfile = f"FROM {images['v1']}\nCOPY index.html /www/index.html\nEXPOSE 80\n"
    first = web.commit({"Dockerfile": dockerfile, "index.html": "push one\n"}, "first page")
    pushed = web.push(url, "main")
    assert pushed.returncode == 0, pushed.stderr
    assert "remote: mypaas: deploying" in pushed.stderr and "COPY index.html" in pushed.stderr
    gp.wait_for(app, body="push one")
    assert _ref(gp, app) == first
    assert f"{first[:12]} first page" in gp.cli("releases", app, check=True).out
    assert "Everything up-to-date" in web.push(url, "main").stderr  # git's own no-op

    # refused before anything is received: an unknown key, a viewer; the repository gains nothing
    before = _objects(gp, app)
    web.commit({"index.html": "not yours\n"}, "intruder")
    for key, says in ((stranger_key, "Permission denied"), (dev_key, "needs the deployer role")):
        other = Repo(tmp_path / f"other-{key.name}", key)
        other.git("fetch", "-q", str(web.folder), "main")
        other.git("reset", "-q", "--hard", "FETCH_HEAD")
        refused = other.push(url, "main")
        assert refused.returncode != 0 and says in refused.stderr, refused.stderr
    assert _objects(gp, app) == before and _ref(gp, app) == first
    assert not (gp.home / "git" / "gp-nobody.git").exists()
    web.git("reset", "-q", "--hard", first)

    # a broken build rejects the push; the old release keeps serving
    broken = web.commit({"Dockerfile": dockerfile + "RUN echo breaking && exit 7\n"}, "broken build")
    rejected = web.push(url, "main")
    assert rejected.returncode != 0 and "push rejected" in rejected.stderr, rejected.stderr
    assert "pre-receive hook declined" in rejected.stderr
    assert _ref(gp, app) == first and broken != first
    assert gp.get(app) == (200, "push one\n")

    # a force-push deploys what was pushed
    web.git("reset", "-q", "--hard", first)
    forced = web.commit({"index.html": "forced\n"}, "rewritten page", amend=True)
    assert web.push(url, "main").returncode != 0  # not a fast-forward
    assert web.push(url, "--force", "main").returncode == 0
    gp.wait_for(app, body="forced")
    assert _ref(gp, app) == forced

    # a compose app (compose.yml at the root)
    compose_app = f"{app}-c"
    composed = Repo(tmp_path / "compose", admin_key)
    composed.commit(
        {
            "compose.yml": "services:\n  web:\n    build: ./site\n    ports: ['80']\n",
            "site/Dockerfile": f"FROM {images['v1']}\nCOPY index.html /www/index.html\n",
            "site/index.html": "composed\n",
        },
        "compose app",
    )
    assert composed.push(url.replace(app, compose_app), "main").returncode == 0
    gp.wait_for(compose_app, body="composed")

    # a Python app from source; one changed file redeploys and the dependency layer is cached
    py_app = f"{app}-py"
    py = Repo(tmp_path / "py", admin_key)
    server = (
        "import os\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\n\n"
        "class H(BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200)\n"
        "        self.end_headers()\n        self.wfile.write(b'%s')\n\n"
        "HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n"
    )
    py.commit({"app.py": server % "py one", "requirements.txt": "# none\n"}, "python app")
    py_url = url.replace(app, py_app)
    one = py.push(py_url, "main")
    assert one.returncode == 0 and "detected a python app" in one.stderr, one.stderr
    gp.wait_for(py_app, body="py one")
    py.commit({"app.py": server % "py two"}, "one line changed")
    two = py.push(py_url, "main")
    assert two.returncode == 0, two.stderr
    pip_step = two.stderr.split("RUN pip install", 1)[1].split("Step", 1)[0]
    assert "Using cache" in pip_step
    gp.wait_for(py_app, body="py two")

    # bad input: an invalid app name, nothing deployable, a submodule that cannot be fetched
    bad = web.push(url.replace(f"/{app}.git", "/Not_An_App.git"), "main")
    assert bad.returncode != 0 and "invalid app name 'Not_An_App'" in bad.stderr, bad.stderr
    empty = Repo(tmp_path / "empty", admin_key)
    empty.commit({"README.md": "nothing here\n"}, "docs only")
    nothing = empty.push(url.replace(app, f"{app}-e"), "main")
    assert nothing.returncode != 0 and "push rejected" in nothing.stderr, nothing.stderr
    (empty.folder / ".gitmodules").write_text('[submodule "lib"]\n\tpath = lib\n\turl = /nowhere/lib.git\n')
    empty.git("add", ".gitmodules")
    empty.git("update-index", "--add", "--cacheinfo", f"160000,{first},lib")
    empty.git("commit", "-q", "-m", "a submodule")
    sub = empty.push(url.replace(app, f"{app}-e"), "main")
    assert sub.returncode != 0 and "submodule 'lib' (/nowhere/lib.git) cannot be fetched" in sub.stderr

    for name in (app, compose_app, py_app):
        gp.cli("rm", name, "--yes")


def test_branch_push_makes_a_preview(gp: kit.Platform, images: dict[str, str], tmp_path: Path) -> None:
    """A push to another branch deploys its preview; deleting the branch removes it; the app itself keeps
    serving its deploy branch."""
    from mypaas.domain import preview_app_name

    key = keygen(tmp_path, "pv")
    gp.cli("user", "key", "add", "admin", f"{key}.pub", check=True)
    app = f"pv-{secrets.token_hex(2)}"
    url = gp.cli("git", "remote", app, check=True).out.strip()
    repo = Repo(tmp_path / "pv-repo", key)
    dockerfile = f"FROM {images['v1']}\nCOPY index.html /www/index.html\nEXPOSE 80\n"
    repo.commit({"Dockerfile": dockerfile, "index.html": "main page\n"}, "main")
    assert repo.push(url, "main").returncode == 0
    gp.cli("previews", "on", app, check=True)
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit({"index.html": "feature page\n"}, "feature")
    pushed = repo.push(url, "feature")
    assert pushed.returncode == 0, pushed.stderr
    preview = preview_app_name(app, "feature")
    gp.wait_for(preview, body="feature page")
    assert gp.get(app) == (200, "main page\n")
    gone = repo.push(url, ":feature")
    assert gone.returncode == 0, gone.stderr
    kit.wait_until(lambda: gp.cli("previews", app, "--json", check=True).json() == [], timeout=60)
    gp.cli("rm", app, "--yes")

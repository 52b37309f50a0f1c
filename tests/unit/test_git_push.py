"""`git push` deploys, offline: SSH public keys (parsing, the store, the API), the SSH command the
endpoint runs, who may push where, the push token, and the pre-receive hook's decisions."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi.testclient import TestClient

from mypaas.cli import githook
from mypaas.composer.fake import FakeBackend
from mypaas.errors import Conflict, Forbidden, InvalidSpec, NotFound
from mypaas.manager.git import access, branches, commands, repos
from mypaas.manager.identity.policy import Role
from mypaas.manager.identity.sshkeys import fingerprint_of, parse_public_key
from mypaas.manager.platform import Platform
from tests.unit.teams import deploy_apps, make_cast, make_teams


def openssh(key: object, comment: str = "me@laptop") -> str:
    public = key.public_key()  # type: ignore[attr-defined]
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}\n"


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


ED = openssh(ed25519.Ed25519PrivateKey.generate())


# -- keys ---------------------------------------------------------------------------------------


def test_keys_of_each_kind_parse_with_the_fingerprint_ssh_keygen_prints() -> None:
    key = parse_public_key(ED)
    assert key.type == "ssh-ed25519" and key.comment == "me@laptop"
    import base64

    assert key.fingerprint == fingerprint_of(base64.b64decode(ED.split()[1]))
    assert key.fingerprint.startswith("SHA256:") and "=" not in key.fingerprint
    assert parse_public_key(openssh(ec.generate_private_key(ec.SECP256R1()))).type == "ecdsa-sha2-nistp256"
    big = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert parse_public_key(openssh(big)).type == "ssh-rsa"


def test_a_known_fingerprint() -> None:
    """The value `ssh-keygen -lf` printed for this key."""
    line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaSen/GuMSbML5FMwR42EFLNmesDmUk2nwyD/NS2o8h x"
    assert parse_public_key(line).fingerprint == "SHA256:LD7yQ9+C6jl77wM3Mcycp2R33qHn82TqN0YTw0h8KR0"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----\n",
            "private key",
        ),
        ("hello world", "not an OpenSSH public key"),
        ("", "expected one OpenSSH public key line"),
        (ED + ED, "expected one OpenSSH public key line"),
        ("ssh-ed25519 !!!notbase64", "not valid base64"),
        ("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ==", "not a valid ssh-ed25519 public key"),
        ("ssh-dss AAAAB3NzaC1kc3M=", "known type"),
    ],
)
def test_bad_keys_are_one_clear_line(text: str, says: str) -> None:
    with pytest.raises(InvalidSpec, match=says) as caught:
        parse_public_key(text)
    assert "\n" not in str(caught.value) and caught.value.field == "key"


def test_a_short_rsa_key_is_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidSpec, match="1024 bits is too weak"):
        parse_public_key(openssh(weak))


def test_the_key_store(platform: Platform) -> None:
    identity = platform.identity
    make_teams(platform)
    admin = identity.principal_of(platform.admin_token)
    dan = identity.principal_of_user("dan")
    added = identity.add_key(dan, "dan", ED)
    assert added["name"] == "me@laptop" and identity.key_owner(_blob(ED)) == "dan"
    with pytest.raises(Conflict, match="already registered"):
        identity.add_key(admin, "ann", ED)  # one key, one user
    with pytest.raises(NotFound, match="only a platform admin"):
        identity.keys(dan, "ann")
    assert [k["fingerprint"] for k in identity.keys(admin, "dan")] == [added["fingerprint"]]
    identity.remove_key(dan, "dan", added["fingerprint"].removeprefix("SHA256:"))
    assert identity.keys(dan, "dan") == [] and identity.key_owner(_blob(ED)) is None
    with pytest.raises(NotFound, match="no key"):
        identity.remove_key(admin, "dan", added["fingerprint"])


def _blob(line: str) -> bytes:
    import base64

    return base64.b64decode(line.split()[1])


def test_the_key_routes(platform: Platform, api: TestClient) -> None:
    make_teams(platform)
    deploy_apps(api, {"shop": "a"})
    cast = make_cast(platform)
    dan = cast.client(api, "deployer")
    r = dan.post("/api/v1/users/dan/keys", json={"key": ED, "name": "laptop"})
    assert r.status_code == 201 and r.json()["name"] == "laptop", r.text
    fingerprint = r.json()["fingerprint"]
    again = api.post("/api/v1/users/ann/keys", json={"key": ED})
    assert again.status_code == 409 and again.json()["field"] == "key"
    private = api.post("/api/v1/users/ann/keys", json={"key": "-----BEGIN RSA PRIVATE KEY-----\nx\n"})
    assert private.status_code == 400 and "private key" in private.json()["error"]
    assert dan.get("/api/v1/users/ann/keys").status_code == 404
    assert [k["fingerprint"] for k in api.get("/api/v1/users/dan/keys").json()] == [fingerprint]
    gone = dan.delete(f"/api/v1/users/dan/keys/{fingerprint}")  # the fingerprint may hold '/'
    assert gone.status_code == 200, gone.text
    assert api.get("/api/v1/users/nobody/keys").status_code == 404


# -- the SSH command and who may push --------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "app"),
    [
        ("git-receive-pack 'web.git'", "web"),
        ("git-receive-pack '/web.git'", "web"),
        ("git receive-pack 'web.git'", "web"),
        ("git-receive-pack 'web'", "web"),
        ("git-receive-pack '~/shop-2.git'", "shop-2"),
    ],
)
def test_receive_commands(command: str, app: str) -> None:
    assert commands.app_of_command(command) == app


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (None, "no shell here"),
        ("", "no shell here"),
        ("git-upload-pack 'web.git'", "fetching and cloning are not served"),
        ("git-upload-archive 'web.git'", "fetching and cloning are not served"),
        ("rm -rf /", "'rm' is not run here"),
        ("sh -c 'git-receive-pack web.git'", "'sh' is not run here"),
        ("git-receive-pack 'Web_App.git'", "invalid app name 'Web_App'"),
        ("git-receive-pack 'a/b.git'", "invalid repository"),
        ("git-receive-pack 'web.git' extra", "expected one repository"),
        ("git-receive-pack 'unclosed", "cannot parse"),
    ],
)
def test_everything_else_is_refused_in_one_line(command: str | None, says: str) -> None:
    with pytest.raises(InvalidSpec, match=says) as caught:
        commands.app_of_command(command)
    assert "\n" not in str(caught.value)


def test_who_may_push(platform: Platform, api: TestClient) -> None:
    identity = platform.identity
    make_teams(platform)
    deploy_apps(api, {"shop": "a", "blog": "b"})
    assert access.check_push(identity, "dan", "shop") == "a"  # a deployer of the app's team
    assert access.check_push(identity, "dan", "newapp") == "a"  # a new app goes to dan's only team
    with pytest.raises(Forbidden, match="needs the deployer role"):
        access.check_push(identity, "vic", "shop")  # a viewer
    with pytest.raises(Forbidden, match="no role there"):
        access.check_push(identity, "dan", "blog")  # another team's app
    with pytest.raises(Forbidden):
        access.check_push(identity, "vic", "newapp")
    admin = identity.principal_of(platform.admin_token).user
    assert access.check_push(identity, admin, "blog") == "b"


def test_the_push_token_is_the_pushers_for_the_app_only_and_revoked_after(
    platform: Platform, api: TestClient
) -> None:
    make_teams(platform)
    deploy_apps(api, {"shop": "a", "blog": "a"})
    identity = platform.identity
    grant = access.grant_push(identity, "ann", "shop")
    headers = {"Authorization": f"Bearer {grant.token}"}
    who = identity.principal_of(grant.token)
    assert who.user == "ann" and who.app == "shop" and who.roles == {"a": Role.DEPLOYER}
    assert api.get("/api/v1/apps/shop/git", headers=headers).status_code == 200
    assert api.get("/api/v1/apps/blog/git", headers=headers).status_code == 403
    identity.revoke_id(grant.token_id)
    assert api.get("/api/v1/apps/shop/git", headers=headers).status_code == 401
    left = access.grant_push(identity, "ann", "shop")  # a push a killed manager never finished
    clone = platform.settings.home / "tmp" / "git" / "shop-1234" / "tree"  # a watch's clone, likewise
    clone.mkdir(parents=True)
    platform.start()  # what the next manager does first
    try:
        assert (
            api.get("/api/v1/apps/shop/git", headers={"Authorization": f"Bearer {left.token}"}).status_code
            == 401
        )
        assert not (platform.settings.home / "tmp" / "git").exists()
        assert identity.revoke_push_tokens() == 0
    finally:
        platform.stop()


def test_the_deploy_branch(platform: Platform, api: TestClient) -> None:
    deploy_apps(api, {"shop": "default"})
    info = api.get("/api/v1/apps/shop/git").json()
    assert info["url"].startswith("ssh://git@localhost:2222/shop.git") and info["branches"] == [
        "main",
        "master",
    ]
    assert api.put("/api/v1/apps/shop/git", json={"branch": "release/v2"}).status_code == 200
    assert api.get("/api/v1/apps/shop/git").json()["branches"] == ["release/v2"]
    bad = api.put("/api/v1/apps/shop/git", json={"branch": "a..b"})
    assert bad.status_code == 400 and bad.json()["field"] == "branch"
    assert api.put("/api/v1/apps/nope/git", json={"branch": "main"}).status_code == 404
    for good in ("main", "feature/x-1", "v1.2"):
        assert branches.check_branch(good) == good
    for wrong in ("", "-x", "a b", "x.lock", "a//b", "x/", "@"):
        with pytest.raises(InvalidSpec):
            branches.check_branch(wrong)


# -- the hook ---------------------------------------------------------------------------------------

ZERO, OLD, NEW = "0" * 40, "1" * 40, "2" * 40


def test_the_hook_deploys_the_deploy_branch_and_previews_the_others() -> None:
    updates = [
        (OLD, NEW, "refs/heads/main"),
        (ZERO, NEW, "refs/heads/feature"),
        (OLD, ZERO, "refs/heads/old"),
    ]
    steps = githook.plan(updates, "web", ["main", "master"])
    assert [(s.kind, s.branch, s.sha) for s in steps] == [
        ("deploy", "main", NEW),
        ("preview", "feature", NEW),
        ("unpreview", "old", ""),
    ]
    assert githook.plan([(OLD, NEW, "refs/heads/master")], "web", ["main", "master"])[0].kind == "deploy"
    # a branch set: main is then a preview like any other
    assert githook.plan([(OLD, NEW, "refs/heads/main")], "web", ["prod"])[0].kind == "preview"


def test_the_hook_refuses_deleting_the_deploy_branch_and_tags() -> None:
    steps = githook.plan([(OLD, ZERO, "refs/heads/main"), (ZERO, NEW, "refs/tags/v1")], "web", ["main"])
    assert [s.kind for s in steps] == ["refuse", "refuse"]
    assert "main deploys web: deleting it is refused" in steps[0].reason
    assert "only branches deploy" in steps[1].reason


def test_the_hook_reads_gits_lines_and_builds_the_cli_commands() -> None:
    assert githook.read_updates([f"{OLD} {NEW} refs/heads/main\n", "\n", "junk\n"]) == [
        (OLD, NEW, "refs/heads/main")
    ]
    folder = Path("/tmp/tree")
    deploy = githook.cli_command(githook.Step("deploy", "main", NEW), "web", folder, "abc subject")
    assert deploy[-5:] == ["deploy", "web", "/tmp/tree", "--message", "abc subject"]
    preview = githook.cli_command(githook.Step("preview", "feat", NEW), "web", folder, "m")
    assert preview[-2:] == ["--preview", "feat"]
    gone = githook.cli_command(githook.Step("unpreview", "feat"), "web", folder, "")
    assert gone[-4:] == ["previews", "rm", "web", "feat"]


def test_the_hook_hides_the_repository_from_what_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", "/srv/x.git")
    monkeypatch.setenv("GIT_QUARANTINE_PATH", "/srv/x.git/objects/incoming")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    env = githook.outside_env()
    assert "GIT_DIR" not in env and "GIT_QUARANTINE_PATH" not in env and env["GIT_TERMINAL_PROMPT"] == "0"


def test_submodules_of_a_gitmodules_file() -> None:
    text = '[submodule "lib"]\n\tpath = vendor/lib\n\turl = https://example.com/lib.git\n'
    assert githook.submodules(text) == [("lib", "vendor/lib", "https://example.com/lib.git")]
    with pytest.raises(githook.HookError, match="needs a path and a url"):
        githook.submodules('[submodule "x"]\n\tpath = x\n')
    with pytest.raises(githook.HookError, match="cannot be read"):
        githook.submodules("not ini at all\n")


def test_the_bare_repository_and_the_push_limit(tmp_path: Path) -> None:
    """With the real git, offline: the repository is made once with its hook; a pack larger than the
    limit is refused by receive-pack itself, before the hook runs."""
    root = tmp_path / "git"
    path = repos.ensure_repo(root, "web")
    hook = path / "hooks" / "pre-receive"
    assert hook.read_text() == repos.HOOK and os.access(hook, os.X_OK)
    assert repos.ensure_repo(root, "web") == path
    work = tmp_path / "work"
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x"}
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@x")
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True, env=env)
    (work / "big.bin").write_bytes(os.urandom(200_000))
    subprocess.run(["git", "-C", str(work), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-q", "-m", "big"], check=True, env=env)
    receive = " ".join(repos.receive_command(path, 1000)[:-1])
    done = subprocess.run(
        ["git", "-C", str(work), "push", f"--receive-pack={receive}", str(path), "main"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode != 0 and "pack exceeds maximum allowed size" in done.stderr, done.stderr
    assert not (path / "refs" / "heads" / "main").exists()

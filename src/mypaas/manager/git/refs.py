"""What a user writes about a repository, checked before anything runs: ``URL[#REF]`` (an https, http or
ssh URL, or git's ``user@host:path``; never a local path or another transport), a branch name, a
sub-folder that stays inside the checkout, and whether a checked-out folder holds anything deployable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mypaas.errors import InvalidSpec

ALLOWED_SCHEMES = ("https", "http", "ssh")
_URL = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://(?P<rest>[^\s]+)\Z")
_SCP = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)[^\s]+\Z")  # git@github.com:team/app.git
# git check-ref-format's rules, enough of them: no '..', no control characters or ' ~^:?*[\', no '@{'
_REF = re.compile(r"^(?!-)(?!.*\.\.)(?!.*@\{)(?!.*//)[^\x00-\x20~^:?*\[\\\x7f]{1,255}(?<![./])\Z")
DEPLOYABLE = (
    "Dockerfile",
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
    "requirements.txt",
    "pyproject.toml",
    "package.json",
    "index.html",
)


@dataclass(frozen=True)
class Source:
    """A repository and what to check out of it ("" for ``ref``: the remote's default branch)."""

    url: str
    ref: str = ""


def parse_source(text: str, *, field: str = "url") -> Source:
    """``URL#REF`` -> Source; one clear InvalidSpec for anything else."""
    text = (text or "").strip()
    url, _, ref = text.partition("#")
    check_url(url, field=field)
    if "#" in text:
        check_ref(ref, field=field)
    return Source(url, ref)


def check_url(url: str, *, field: str = "url") -> None:
    if not url:
        raise InvalidSpec("give the repository's URL (https://…, ssh://… or git@host:path)", field=field)
    if any(c in url for c in "\x00\n\r"):
        raise InvalidSpec(f"invalid repository URL {url!r}", field=field)
    if re.search(r"(^|://|@)-", url):  # a host or user read as an ssh option (-oProxyCommand=…)
        raise InvalidSpec(f"invalid repository URL {url!r}: a host or user starts with '-'", field=field)
    match = _URL.fullmatch(url)
    if match is not None:
        if match["scheme"].lower() not in ALLOWED_SCHEMES:
            raise InvalidSpec(
                f"repository URL {url!r}: {match['scheme']}:// is not allowed (https, http or ssh)",
                field=field,
            )
        return
    if _SCP.fullmatch(url):
        return
    raise InvalidSpec(
        f"invalid repository URL {url!r}: expected https://HOST/PATH, ssh://[USER@]HOST[:PORT]/PATH or "
        "USER@HOST:PATH (a folder of this machine is not a repository URL)",
        field=field,
    )


def check_ref(ref: str, *, field: str = "ref") -> None:
    """A branch, tag or commit name git would accept (refs/heads/… too)."""
    if not _REF.fullmatch(ref or "") or ref.endswith(".lock"):
        raise InvalidSpec(f"invalid branch, tag or commit {ref!r} after '#'", field=field)


def check_branch(branch: str, *, field: str = "branch") -> None:
    if not _REF.fullmatch(branch or "") or branch.endswith(".lock"):
        raise InvalidSpec(f"invalid branch name {branch!r}", field=field)


def check_subpath(path: str, *, field: str = "path") -> str:
    """A sub-folder of the repository, as a clean relative path ("" for its root)."""
    raw = (path or "").strip()
    if not raw or raw in (".", "./"):
        return ""
    pure = PurePosixPath(raw)
    if pure.is_absolute() or ".." in pure.parts or "\x00" in raw:
        raise InvalidSpec(f"--path {raw!r} leaves the repository: give a folder inside it", field=field)
    return pure.as_posix()


def folder_in(root: Path, path: str, *, shown: str, field: str = "path") -> Path:
    """``root/path``, which must be a folder inside ``root`` once symbolic links are followed."""
    rel = check_subpath(path, field=field)
    top = root.resolve()
    folder = (top / rel).resolve()
    if folder != top and top not in folder.parents:
        raise InvalidSpec(f"--path {rel!r} leaves the repository (a link out of it)", field=field)
    if not folder.is_dir():
        raise InvalidSpec(f"--path {rel!r}: no such folder in {shown}", field=field)
    return folder


def check_deployable(folder: Path, *, shown: str) -> None:
    """Something `mypaas deploy APP DIR` can deploy: a Dockerfile, a compose file or a source app."""
    if any((folder / name).is_file() for name in DEPLOYABLE):
        return
    raise InvalidSpec(
        f"nothing to deploy in {shown}: no Dockerfile, compose file, requirements.txt or pyproject.toml "
        "(Python), package.json (Node) or index.html (a static site)",
        field="path",
    )


def shown_source(url: str, ref: str, path: str) -> str:
    """'URL#REF:path' as messages name it."""
    return url + (f"#{ref}" if ref else "") + (f" (path {path})" if path else "")

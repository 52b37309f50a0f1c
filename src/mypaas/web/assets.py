"""The dashboard's third-party browser code: a pinned list of npm packages, each tarball checked against
the registry's sha512 integrity and the few files the dashboard loads unpacked into static/vendor/
(git-ignored). `make up` runs ``python -m mypaas.web.assets``; nothing else of the dashboard comes from
the network, and the manager serves nothing from a CDN.

The registry is https://registry.npmjs.org unless MYPAAS_NPM_REGISTRY names a mirror; HTTP(S)_PROXY are
honoured. A manifest per package (vendor/<package>/manifest.json) records the version unpacked and each
file's sha256, so a second run with everything in place fetches nothing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mypaas.errors import MyPaasError

DEFAULT_REGISTRY = "https://registry.npmjs.org"
MANIFEST = "manifest.json"
MAX_TARBALL = 20 * 1024 * 1024  # the largest of ours is ~0.4 MB; a mirror answering more is wrong


@dataclass(frozen=True)
class Package:
    """One npm package at one version: its tarball's ``integrity`` ("sha512-<base64>", as the
    registry's metadata gives it) and the ``files`` kept: the path inside the tarball's package/ folder
    by the name it gets under vendor/<package>/ (the names the page's import map uses)."""

    name: str
    version: str
    integrity: str
    files: dict[str, str] = field(hash=False)

    @property
    def tarball(self) -> str:
        """The tarball's path under the registry's URL (the registry's own layout)."""
        return f"{self.name}/-/{self.name}-{self.version}.tgz"


PACKAGES: tuple[Package, ...] = (
    Package(
        "preact",
        "10.29.8",
        "sha512-ej2aVZ+vZ8WO7tvlQWRM9N63A0KzF9q4mWJfDUHgYaIofWY9hu74QdnQrjoPMmZi2/nZ5gN0bJCQF49xQqx09Q==",
        {
            "dist/preact.module.js": "preact.module.js",
            "hooks/dist/hooks.module.js": "hooks.module.js",
            "LICENSE": "LICENSE",
        },
    ),
    Package(
        "htm",
        "3.1.1",
        "sha512-983Vyg8NwUE7JkZ6NmOqpCZ+sh1bKv2iYTlUkzlWmA5JD2acKoxd4KVxbMmxX/85mtfdnDmTFoNKcg5DGAvxNQ==",
        {"dist/htm.module.js": "htm.module.js", "LICENSE": "LICENSE"},
    ),
    Package(
        "uplot",
        "1.6.32",
        "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==",
        {"dist/uPlot.esm.js": "uPlot.esm.js", "dist/uPlot.min.css": "uPlot.min.css", "LICENSE": "LICENSE"},
    ),
)


class AssetError(MyPaasError):
    """The registry could not be reached, answered something else, or a tarball's hash differs."""


def vendor_dir() -> Path:
    """Where the unpacked files live: static/vendor/<package>/<name>, served with the dashboard's files."""
    return Path(__file__).resolve().parent / "static" / "vendor"


def registry_url() -> str:
    return os.environ.get("MYPAAS_NPM_REGISTRY", "").strip().rstrip("/") or DEFAULT_REGISTRY


def missing(packages: Iterable[Package] | None = None, root: Path | None = None) -> list[str]:
    """The vendor files (``package/name``) absent, changed, or unpacked from another version than the
    pinned one; empty when the dashboard has everything. Reads no network."""
    root = vendor_dir() if root is None else root
    lost: list[str] = []
    for pkg in PACKAGES if packages is None else packages:
        entry = _read_manifest(root / pkg.name)
        hashes = entry.get("files", {}) if entry.get("integrity") == pkg.integrity else {}
        kept = pkg.files.values()
        lost += [f"{pkg.name}/{f}" for f in kept if not _intact(root / pkg.name / f, hashes.get(f))]
    return lost


def ensure(
    packages: Iterable[Package] | None = None,
    root: Path | None = None,
    *,
    registry: str | None = None,
    client: httpx.Client | None = None,
) -> list[Package]:
    """Fetch, check and unpack every package that :func:`missing` finds incomplete; return those
    fetched (none when all was in place). Raises :class:`AssetError` with one clear line."""
    root = vendor_dir() if root is None else root
    todo = [p for p in (PACKAGES if packages is None else packages) if missing([p], root)]
    if not todo:
        return []
    base = registry or registry_url()
    own = client is None
    http = client or httpx.Client(timeout=60, follow_redirects=True)  # trust_env: proxies honoured
    try:
        for pkg in todo:
            _install(pkg, _download(http, base, pkg), root)
    finally:
        if own:
            http.close()
    return todo


def _download(http: httpx.Client, base: str, pkg: Package) -> bytes:
    url = f"{base}/{pkg.tarball}"
    try:
        with http.stream("GET", url) as resp:
            if resp.status_code != 200:
                raise AssetError(f"{url}: the registry answered HTTP {resp.status_code}")
            data = bytearray()
            for chunk in resp.iter_bytes():
                data += chunk
                if len(data) > MAX_TARBALL:
                    raise AssetError(f"{url}: larger than {MAX_TARBALL} bytes")
    except httpx.HTTPError as exc:
        raise AssetError(f"cannot reach the npm registry at {base}: {exc or type(exc).__name__}") from exc
    got = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != pkg.integrity:
        raise AssetError(
            f"{url}: sha512 differs from the pinned one (got {got[:30]}…, want {pkg.integrity[:30]}…)"
        )
    return bytes(data)


def _install(pkg: Package, tarball: bytes, root: Path) -> None:
    """Unpack ``pkg.files`` from the (checked) tarball atomically, then record them in the manifest."""
    contents = _extract(pkg, tarball)
    for name, data in contents.items():
        _write_atomic(root / pkg.name / name, data)
    manifest = {
        "version": pkg.version,
        "integrity": pkg.integrity,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()},
    }
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    _write_atomic(root / pkg.name / MANIFEST, text.encode())


def _extract(pkg: Package, tarball: bytes) -> dict[str, bytes]:
    contents: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            names = set(tar.getnames())
            for name, dest in pkg.files.items():
                member = tar.extractfile(f"package/{name}") if f"package/{name}" in names else None
                if member is None:
                    raise AssetError(f"{pkg.name} {pkg.version}: the tarball has no package/{name}")
                contents[dest] = member.read()
    except (tarfile.TarError, OSError) as exc:
        raise AssetError(f"{pkg.name} {pkg.version}: not a readable tarball ({exc})") from exc
    return contents


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _intact(path: Path, sha256: str | None) -> bool:
    try:
        return sha256 is not None and hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    """``python -m mypaas.web.assets [--check]``: fetch what is missing (silent when nothing is), or with
    --check only say what is missing. Exit 1 with one ``error:`` line on failure."""
    args = sys.argv[1:] if argv is None else argv
    if args and args != ["--check"]:
        print("usage: python -m mypaas.web.assets [--check]", file=sys.stderr)
        return 2
    if args == ["--check"]:
        lost = missing()
        if lost:
            print(f"error: dashboard assets missing: {', '.join(lost)} (run make up)", file=sys.stderr)
        return 1 if lost else 0
    try:
        fetched = ensure()
    except AssetError as exc:
        print(f"error: dashboard assets: {exc.message}", file=sys.stderr)
        return 1
    if fetched:
        names = ", ".join(f"{p.name} {p.version}" for p in fetched)
        print(f"dashboard assets: fetched {names} into {vendor_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

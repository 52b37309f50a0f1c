"""The dashboard's vendored npm files: fetched, checked against the pinned sha512, unpacked once; a
local tarball served by a mock transport stands in for the registry (no network)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mypaas.web import assets
from mypaas.web.assets import AssetError, Package

FILES = {"dist/lib.module.js": b"export const x = 1;\n", "LICENSE": b"MIT\n"}


def tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


TGZ = tarball(FILES)
KEEP = {"dist/lib.module.js": "lib.module.js", "LICENSE": "LICENSE"}
PKG = Package("lib", "1.2.3", integrity(TGZ), KEEP)


def registry(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[httpx.Client, list[str]]:
    """A client whose every request goes to ``handler``; the list collects the URLs asked for."""
    asked: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return handler(request)

    return httpx.Client(transport=httpx.MockTransport(record)), asked


def serving(data: bytes, status: int = 200) -> httpx.Client:
    return registry(lambda _: httpx.Response(status, content=data))[0]


def test_fetches_checks_and_unpacks_then_does_nothing_the_second_time(tmp_path: Path) -> None:
    client, asked = registry(lambda _: httpx.Response(200, content=TGZ))
    assert assets.missing([PKG], tmp_path) == ["lib/lib.module.js", "lib/LICENSE"]
    fetched = assets.ensure([PKG], tmp_path, registry="http://mirror.test/npm", client=client)
    assert fetched == [PKG]
    assert asked == ["http://mirror.test/npm/lib/-/lib-1.2.3.tgz"]
    assert (tmp_path / "lib" / "lib.module.js").read_bytes() == FILES["dist/lib.module.js"]
    manifest = json.loads((tmp_path / "lib" / "manifest.json").read_text())
    assert manifest["version"] == "1.2.3" and manifest["integrity"] == PKG.integrity
    assert manifest["files"]["LICENSE"] == hashlib.sha256(b"MIT\n").hexdigest()
    assert assets.missing([PKG], tmp_path) == []
    assert assets.ensure([PKG], tmp_path, registry="http://mirror.test/npm", client=client) == []
    assert len(asked) == 1
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no temporary file left behind


def test_a_changed_file_or_a_new_pin_is_fetched_again(tmp_path: Path) -> None:
    assets.ensure([PKG], tmp_path, registry="http://r", client=serving(TGZ))
    (tmp_path / "lib" / "LICENSE").write_text("edited")
    assert assets.missing([PKG], tmp_path) == ["lib/LICENSE"]
    assert assets.ensure([PKG], tmp_path, registry="http://r", client=serving(TGZ)) == [PKG]
    assert (tmp_path / "lib" / "LICENSE").read_bytes() == b"MIT\n"
    newer = tarball({**FILES, "LICENSE": b"MIT, 2\n"})
    bumped = Package("lib", "1.2.4", integrity(newer), KEEP)
    assert assets.missing([bumped], tmp_path) == ["lib/lib.module.js", "lib/LICENSE"]
    assets.ensure([bumped], tmp_path, registry="http://r", client=serving(newer))
    assert (tmp_path / "lib" / "LICENSE").read_bytes() == b"MIT, 2\n"


def test_a_tarball_whose_hash_differs_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    tampered = tarball({**FILES, "dist/lib.module.js": b"steal();\n"})
    with pytest.raises(AssetError, match=r"lib/-/lib-1\.2\.3\.tgz: sha512 differs from the pinned one"):
        assets.ensure([PKG], tmp_path, registry="http://r", client=serving(tampered))
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_registry_or_an_error_status_is_one_clear_line(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with pytest.raises(AssetError, match=r"^cannot reach the npm registry at http://r: Connection refused$"):
        assets.ensure([PKG], tmp_path, registry="http://r", client=registry(refuse)[0])
    with pytest.raises(AssetError, match=r"the registry answered HTTP 404"):
        assets.ensure([PKG], tmp_path, registry="http://r", client=serving(b"not found", 404))


def test_a_tarball_without_a_listed_file_or_not_a_tarball_is_refused(tmp_path: Path) -> None:
    short = tarball({"LICENSE": b"MIT\n"})
    pkg = Package("lib", "1.2.3", integrity(short), KEEP)
    with pytest.raises(AssetError, match=r"lib 1\.2\.3: the tarball has no package/dist/lib\.module\.js"):
        assets.ensure([pkg], tmp_path, registry="http://r", client=serving(short))
    junk = b"this is not gzip"
    with pytest.raises(AssetError, match=r"not a readable tarball"):
        assets.ensure(
            [Package("lib", "1.2.3", integrity(junk), {"LICENSE": "LICENSE"})],
            tmp_path,
            registry="http://r",
            client=serving(junk),
        )
    assert not (tmp_path / "lib").exists()


def test_the_registry_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYPAAS_NPM_REGISTRY", raising=False)
    assert assets.registry_url() == "https://registry.npmjs.org"
    monkeypatch.setenv("MYPAAS_NPM_REGISTRY", "https://npm.example.org/repo/ ")
    assert assets.registry_url() == "https://npm.example.org/repo"


def test_the_pins_are_sha512_and_name_the_files_the_dashboard_imports() -> None:
    for pkg in assets.PACKAGES:
        assert pkg.integrity.startswith("sha512-")
        assert len(base64.b64decode(pkg.integrity.removeprefix("sha512-"))) == 64
        assert pkg.files["LICENSE"] == "LICENSE"
    kept = {f"{p.name}/{f}" for p in assets.PACKAGES for f in p.files.values()}
    assert {
        "preact/preact.module.js",
        "preact/hooks.module.js",
        "htm/htm.module.js",
        "uplot/uPlot.esm.js",
        "uplot/uPlot.min.css",
    } <= kept


def test_main_says_what_is_missing_and_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(assets, "vendor_dir", lambda: tmp_path)
    monkeypatch.setattr(assets, "PACKAGES", (PKG,))

    def unreachable() -> list[Package]:
        raise AssetError("cannot reach it")

    monkeypatch.setattr(assets, "ensure", unreachable)
    assert assets.main(["--check"]) == 1
    assert assets.main([]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[1] == "error: dashboard assets: cannot reach it"
    assert err[0].startswith("error: dashboard assets missing: ") and err[0].endswith("(run make up)")
    assert assets.main(["--bogus"]) == 2

"""Detecting what to build in a folder without a Dockerfile, and the Dockerfile MyPaas writes."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from mypaas.build import source
from mypaas.errors import InvalidSpec


def context(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_python_with_procfile() -> None:
    found = source.detect(
        context({"requirements.txt": "flask\n", "Procfile": "web: gunicorn app:app\n", "app.py": ""})
    )
    assert found.kind == "python" and found.web == ["/bin/sh", "-c", "gunicorn app:app"]
    text = source.dockerfile(found)
    assert text.index("requirements.txt") < text.index("COPY . .")  # dependencies cached apart
    assert text.startswith("FROM mypaas/builder-python:bookworm")
    assert 'CMD ["/bin/sh", "-c", "gunicorn app:app"]' in text


def test_pyproject_and_app_py_default() -> None:
    found = source.detect(context({"pyproject.toml": "[project]\nname='x'\n", "app.py": ""}))
    text = source.dockerfile(found)
    assert "pip install --no-cache-dir ." in text and 'CMD ["python3", "app.py"]' in text


def test_node() -> None:
    found = source.detect(
        context({"package.json": '{"scripts": {"start": "node server.js"}}', "package-lock.json": "{}"})
    )
    text = source.dockerfile(found)
    assert found.kind == "node" and "npm ci --omit=dev" in text and 'CMD ["npm", "start"]' in text


def test_static() -> None:
    found = source.detect(context({"index.html": "<h1>hi</h1>"}))
    assert found.kind == "static" and "httpd" in source.dockerfile(found)


@pytest.mark.parametrize(
    ("files", "field"),
    [
        ({"README.md": "x"}, "app"),
        ({"requirements.txt": ""}, "Procfile"),
        ({"package.json": "{}"}, "Procfile"),
        ({"package.json": "{nope"}, "package.json"),
        ({"package.json": '{"scripts": ["start"]}'}, "Procfile"),
    ],
)
def test_refusals_name_the_field(files: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidSpec) as exc:
        source.detect(context(files))
    assert exc.value.field == field


def test_not_a_tarball() -> None:
    with pytest.raises(InvalidSpec) as exc:
        source.detect(b"definitely not gzip")
    assert exc.value.field == "app"


def test_generated_dockerfile_is_added_to_the_context() -> None:
    ctx = source.with_dockerfile(context({"index.html": "x"}), "FROM scratch\n")
    with tarfile.open(fileobj=io.BytesIO(ctx), mode="r:gz") as tar:
        names = tar.getnames()
        handle = tar.extractfile(source.GENERATED)
        assert handle is not None and handle.read() == b"FROM scratch\n"
    assert "index.html" in names  # the checked entry, its path made relative (no "./")


def test_nothing_to_build_lists_compose_files_among_the_options() -> None:
    with pytest.raises(InvalidSpec) as exc:
        source.detect(context({"notes.txt": "no code here\n"}))

    assert exc.value.message.startswith("nothing to build: the folder has no Dockerfile, no compose file")
    for option in ("compose.yaml", "docker-compose.yml", "-f FILE", "requirements.txt", "package.json"):
        assert option in exc.value.message

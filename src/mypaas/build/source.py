"""Builds from source without a Dockerfile: detect Python, Node or a static site in the uploaded
folder, and build it FROM builder images MyPaas makes from its own Debian base (apt, pip and npm
run inside the build). A Procfile's ``web`` line is the command. Dependencies are installed in a
layer of their own, before the code is copied, so an unchanged app redeploys from the build cache."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mypaas.build.contexts import walk
from mypaas.composer.base import Backend
from mypaas.errors import InvalidSpec, NotFound
from mypaas.uploads import Blob, Upload, UploadWriter

DEBIAN_BASE = "mypaas/debian:bookworm"
BUSYBOX_BASE = "mypaas/busybox:latest"
GENERATED = "Dockerfile.mypaas"
DEFAULT_PORT = 8000
STATIC_PORT = 8080
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Builds trust what the host trusts: a site's own CA (a TLS-inspecting proxy, an internal registry)
# then works for apt, pip and npm inside builds, as it does on the host.
TRUST = (
    "COPY host-ca-certificates.crt /usr/local/share/ca-certificates/mypaas-host.crt\n"
    "RUN update-ca-certificates\n"
    "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt \\\n"
    "    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \\\n"
    "    NPM_CONFIG_CAFILE=/etc/ssl/certs/ca-certificates.crt\n"
)

BUILDERS = {
    "python": (
        "mypaas/builder-python:bookworm",
        "RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip "
        "ca-certificates && rm -rf /var/lib/apt/lists/*",
    ),
    "node": (
        "mypaas/builder-node:bookworm",
        "RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm ca-certificates "
        "&& rm -rf /var/lib/apt/lists/*",
    ),
}


@dataclass(frozen=True)
class Detected:
    kind: str  # python | node | static
    files: frozenset[str]  # top-level names in the folder
    web: list[str] | None  # the Procfile's web command, as argv


def read_members(context: Blob) -> tuple[frozenset[str], dict[str, bytes]]:
    """Top-level names of a gzipped tar context, and the small files detection reads (the context
    checked as it streams: limits on entries and sizes, safe paths; see contexts.py)."""
    names: set[str] = set()
    wanted = {"Procfile", "package.json"}
    small: dict[str, bytes] = {}
    for member, tar in walk(context, "the uploaded folder", "app"):
        name = member.name.removeprefix("./")
        if not name or name == ".":
            continue
        names.add(name.split("/", 1)[0])
        if name in wanted and member.isfile() and member.size < 65536:
            handle = tar.extractfile(member)
            small[name] = handle.read() if handle else b""
    return frozenset(names), small


def detect(context: Blob) -> Detected:
    files, small = read_members(context)
    web = _procfile_web(small.get("Procfile"))
    if "requirements.txt" in files or "pyproject.toml" in files:
        kind = "python"
    elif "package.json" in files:
        kind = "node"
    elif "index.html" in files:
        kind = "static"
    else:
        raise InvalidSpec(
            "nothing to build: the folder has no Dockerfile, no compose file (compose.yaml, compose.yml, "
            "docker-compose.yaml, docker-compose.yml; another name: deploy it with -f FILE), and no "
            "requirements.txt or pyproject.toml (Python), package.json (Node) or index.html (a static site)",
            field="app",
        )
    if kind == "python" and web is None and "app.py" not in files:
        raise InvalidSpec("a Python app needs a Procfile with a 'web:' line (or an app.py)", field="Procfile")
    if kind == "node" and web is None and not _has_start_script(small.get("package.json")):
        raise InvalidSpec(
            "a Node app needs a Procfile 'web:' line or a 'start' script in package.json", field="Procfile"
        )
    return Detected(kind=kind, files=files, web=web)


def _procfile_web(text: bytes | None) -> list[str] | None:
    if text is None:
        return None
    for line in text.decode("utf-8", "replace").splitlines():
        key, sep, command = line.partition(":")
        if sep and key.strip() == "web" and command.strip():
            return ["/bin/sh", "-c", command.strip()]
    return None


def _has_start_script(package_json: bytes | None) -> bool:
    try:
        data = json.loads(package_json or b"{}")
    except ValueError as exc:
        raise InvalidSpec(f"package.json is not valid JSON: {exc}", field="package.json") from exc
    scripts = data.get("scripts") if isinstance(data, dict) else None
    return isinstance(scripts, dict) and bool(scripts.get("start"))


def dockerfile(found: Detected) -> str:
    """The Dockerfile MyPaas writes for a detected app (dependencies first, for the build cache)."""
    if found.kind == "static":
        return "\n".join(
            [
                f"FROM {BUSYBOX_BASE}",
                "COPY . /www",
                f"EXPOSE {STATIC_PORT}",
                f'CMD ["httpd", "-f", "-p", "{STATIC_PORT}", "-h", "/www"]',
                "",
            ]
        )
    builder = BUILDERS[found.kind][0]
    lines = [f"FROM {builder}", "WORKDIR /app", f"ENV PORT={DEFAULT_PORT}"]
    if found.kind == "python":
        lines += ['ENV PATH="/venv/bin:$PATH" PYTHONUNBUFFERED=1', "RUN python3 -m venv /venv"]
        if "requirements.txt" in found.files:
            lines += ["COPY requirements.txt ./", "RUN pip install --no-cache-dir -r requirements.txt"]
        lines += ["COPY . ."]
        if "pyproject.toml" in found.files:
            lines += ["RUN pip install --no-cache-dir ."]
        default = ["python3", "app.py"]
    else:
        lock = " package-lock.json" if "package-lock.json" in found.files else ""
        install = "npm ci --omit=dev" if lock else "npm install --omit=dev"
        lines += [f"COPY package.json{lock} ./", f"RUN {install}", "COPY . ."]
        default = ["npm", "start"]
    lines += [f"EXPOSE {DEFAULT_PORT}", f"CMD {json.dumps(found.web or default)}", ""]
    return "\n".join(lines)


def with_dockerfile(context: Blob, text: str) -> Blob:
    """The same gzipped tar context (checked as it streams) plus the generated Dockerfile: bytes for
    bytes; for an upload, a new file next to it (``-dockerfile``; the caller removes it)."""
    if not isinstance(context, Upload):
        out = io.BytesIO()
        _copy_adding(context, text, out)
        return out.getvalue()
    writer = UploadWriter(context.path.with_name(context.path.name + "-dockerfile"))
    try:
        _copy_adding(context, text, writer)
    except BaseException:
        writer.abort()
        raise
    return writer.finish()


def _copy_adding(context: Blob, text: str, out: BinaryIO | UploadWriter) -> None:
    with (
        gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as dst,
    ):
        for member, src in walk(context, "the uploaded folder", "app"):
            if member.name.removeprefix("./") == GENERATED:
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
            dst.members.clear()  # type: ignore[attr-defined]  # written members are kept otherwise
        data = text.encode()
        info = tarfile.TarInfo(GENERATED)
        info.size, info.mode = len(data), 0o644
        dst.addfile(info, io.BytesIO(data))


def ensure_builder(
    backend: Backend, kind: str, emit: Callable[[str], None], make_base: Callable[[], None]
) -> None:
    """Make the builder image for ``kind`` (and the Debian base under it) unless the engine has it."""
    if kind == "static":
        return
    ref, install = BUILDERS[kind]
    try:
        backend.image(ref)
        return
    except NotFound:
        pass
    try:
        backend.image(DEBIAN_BASE)
    except NotFound:
        emit(f"--- making the base image {DEBIAN_BASE} (once; debootstrap takes a minute)")
        make_base()
    emit(f"--- making the builder image {ref} (once)")
    files = {}
    text = f"FROM {DEBIAN_BASE}\nENV DEBIAN_FRONTEND=noninteractive\n{install}\n"
    if HOST_CA_BUNDLE.is_file():
        files["host-ca-certificates.crt"] = HOST_CA_BUNDLE.read_bytes()
        text += TRUST
    files["Dockerfile"] = text.encode()
    backend.build_image(_context(files), tag=ref, on_line=emit)


def _context(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()

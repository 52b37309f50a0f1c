"""What a Dockerfile downloads itself: ``ADD <url>`` sources are checked before the build.

The engine's classic builder fetches an ``ADD http://…`` source in the host's own network namespace, so
``ADD http://127.0.0.1:2019/config/ /x`` would copy Caddy's admin API answer into the image. Every URL
source is checked with :class:`mypaas.egress.Egress` (loopback, link-local/metadata, private ranges and
the platform's ports refused) before the engine sees the Dockerfile; a URL built from a variable cannot
be checked and is refused too. ``RUN`` steps are kept off the host by the build network (see
composer/build_network.py).
"""

from __future__ import annotations

import gzip
import re
import tarfile
from collections.abc import Iterator

from mypaas.egress import Egress, Refused
from mypaas.errors import InvalidSpec
from mypaas.uploads import Blob, open_blob

MAX_DOCKERFILE_BYTES = 1 << 20  # a Dockerfile is text: past this, the build is refused
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def read_dockerfile(context: Blob, name: str) -> str | None:
    """The text of ``name`` in a gzipped tar context (None: not there, or past the size limit)."""
    wanted = name.removeprefix("./")
    try:
        with open_blob(context) as raw, tarfile.open(fileobj=raw, mode="r:gz") as tar:
            for member in tar:
                if member.name.removeprefix("./") != wanted or not member.isfile():
                    continue
                if member.size > MAX_DOCKERFILE_BYTES:
                    return None
                handle = tar.extractfile(member)
                return handle.read().decode("utf-8", "replace") if handle is not None else None
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile):
        return None
    return None


def instructions(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, instruction) of a Dockerfile, continuation lines joined, comments left out."""
    start, parts = 0, list[str]()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not parts and (not line or line.startswith("#")):
            continue
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        yield start, " ".join(p for p in parts if p and not p.startswith("#"))
        parts = []
    if parts:
        yield start, " ".join(parts)


def add_urls(text: str) -> Iterator[tuple[int, str]]:
    """(line, URL) of each URL source of an ``ADD`` (also after ``ONBUILD``)."""
    for number, instruction in instructions(text):
        words = instruction.split()
        if words and words[0].upper() == "ONBUILD":
            words = words[1:]
        if len(words) < 3 or words[0].upper() != "ADD":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if args and args[0].startswith("["):  # the JSON form: ADD ["src", ..., "dest"]
            args = [a.strip('[]",') for a in args]
        for source in args[:-1]:
            if _URL.match(source):
                yield number, source


def check_add_sources(context: Blob, dockerfile: str, egress: Egress, *, field: str) -> None:
    """Refuse the build when an ``ADD <url>`` of ``dockerfile`` points inside the platform (one line
    naming the Dockerfile's line)."""
    text = read_dockerfile(context, dockerfile)
    if text is None:
        return  # no such file: the engine says so
    for number, url in add_urls(text):
        where = f"{dockerfile} line {number}: ADD {url}"
        if "$" in url:
            raise InvalidSpec(
                f"{where}: a URL built from a variable cannot be checked; write it out", field=field
            )
        if not url.lower().startswith(("http://", "https://")):
            raise InvalidSpec(f"{where}: only http:// and https:// sources can be checked", field=field)
        try:
            egress.pin(url)
        except Refused as exc:
            raise InvalidSpec(f"{where} is refused: {exc}", field=field) from exc

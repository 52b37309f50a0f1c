"""The platform's own tiny base image, ``mypaas/busybox``, made from the host's static busybox.

No registry is needed: examples and quick starts build FROM it on a machine without Docker Hub.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from mypaas.composer.base import Backend, ImageInfo
from mypaas.errors import NotFound

BASE_REF = "mypaas/busybox:latest"
BUSYBOX = Path("/bin/busybox")
APPLETS = (
    "sh",
    "ash",
    "httpd",
    "sleep",
    "cat",
    "echo",
    "env",
    "ls",
    "hostname",
    "nc",
    "printf",
    "grep",
    "sed",
    "mkdir",
    "rm",
    "cp",
    "mv",
    "true",
    "false",
    "test",
    "[",
    "wc",
    "date",
    "id",
    "ps",
    "kill",
    "tail",
    "head",
)


def busybox_rootfs(busybox: Path = BUSYBOX) -> bytes:
    """A root filesystem tarball: busybox, its applets as symlinks, and the usual empty folders."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder in ("bin", "etc", "tmp", "www", "app"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return buf.getvalue()


def ensure_base_image(backend: Backend) -> ImageInfo | None:
    """Import ``mypaas/busybox`` if the engine lacks it; None when no static busybox is installed."""
    try:
        return backend.image(BASE_REF)
    except NotFound:
        pass
    if not BUSYBOX.exists():
        return None
    return backend.import_image(
        busybox_rootfs(),
        ref=BASE_REF,
        changes=[
            'ENV PATH="/bin"',
            'CMD ["/bin/sh"]',
            'LABEL org.opencontainers.image.title="mypaas busybox base"',
        ],
    )

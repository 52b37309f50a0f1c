"""Minimal Debian and Ubuntu base images (``mypaas/debian:bookworm``) made with debootstrap, so the
platform has real base images with no access to Docker Hub."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mypaas.build.archive import Limits
from mypaas.build.rootfs import import_rootfs
from mypaas.build.snapshot import Snapshot
from mypaas.composer.base import Backend, ImageInfo
from mypaas.errors import BackendError, InvalidSpec, NotSupported

SCRIPTS = Path("/usr/share/debootstrap/scripts")
TIMEOUT_S = 30 * 60
SUITES = {"debian": ("bullseye", "bookworm", "trixie"), "ubuntu": ("focal", "jammy", "noble")}
CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
)


@dataclass(frozen=True)
class BaseSpec:
    distro: str
    suite: str
    mirror: str

    @property
    def ref(self) -> str:
        return f"mypaas/{self.distro}:{self.suite}"


def known_suites(scripts: Path = SCRIPTS) -> dict[str, list[str]]:
    """The suites MyPaas builds that this host's debootstrap knows."""
    return {d: [s for s in suites if (scripts / s).exists()] for d, suites in SUITES.items()}


def parse_base(image: str, mirrors: Mapping[str, str], scripts: Path = SCRIPTS) -> BaseSpec:
    """``debian:bookworm`` -> what to build; an unknown distro or suite names the field ``image``."""
    distro, sep, suite = image.strip().lower().partition(":")
    known = known_suites(scripts)
    offer = "; ".join(f"{d}:{'|'.join(s)}" for d, s in known.items() if s) or "none (install debootstrap)"
    if not sep or distro not in SUITES:
        raise InvalidSpec(f"unknown base image {image!r}: give DISTRO:SUITE, one of {offer}", field="image")
    if suite not in SUITES[distro]:
        raise InvalidSpec(f"unknown {distro} suite {suite!r}: one of {offer}", field="image")
    if suite not in known[distro]:
        raise InvalidSpec(
            f"this host's debootstrap does not know {distro} {suite} (upgrade debootstrap); it knows {offer}",
            field="image",
        )
    return BaseSpec(distro=distro, suite=suite, mirror=mirrors[distro])


def check_host() -> None:
    """debootstrap must be installed, and it needs root."""
    if shutil.which("debootstrap") is None:
        raise NotSupported(
            "debootstrap is not installed on the manager's host (scripts/install.sh installs it)"
        )
    if os.geteuid() != 0:
        raise NotSupported("building a base image needs the manager to run as root (debootstrap does)")


def build_base(
    backend: Backend, spec: BaseSpec, workdir: Path, emit: Callable[[str], None], limits: Limits | None = None
) -> ImageInfo:
    """debootstrap ``--variant=minbase`` into ``workdir``, import the result as ``spec.ref``, clean up."""
    target = workdir / "rootfs"
    try:
        _debootstrap(spec, target, emit)
        emit(f"--- importing {spec.ref}")
        return import_rootfs(
            backend,
            Snapshot(target, one_file_system=True),
            ref=spec.ref,
            changes=CHANGES,
            limits=limits,
            warn=lambda line: emit(f"warning: {line}"),
        )
    finally:
        remove_tree(workdir)


def _debootstrap(spec: BaseSpec, target: Path, emit: Callable[[str], None]) -> None:
    cmd = ["debootstrap", "--variant=minbase", spec.suite, str(target), spec.mirror]
    emit("--- " + " ".join(cmd))
    last: list[str] = []
    with subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        watchdog = threading.Timer(TIMEOUT_S, proc.kill)  # a mirror that stops answering
        watchdog.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.rstrip()
                if line:
                    emit(line)
                    last = [*last[-9:], line]
        finally:
            watchdog.cancel()
    if proc.returncode == -signal.SIGKILL:
        raise BackendError(
            f"debootstrap did not finish in {TIMEOUT_S // 60} minutes: is {spec.mirror} reachable?"
        )
    if proc.returncode != 0:
        log = target / "debootstrap" / "debootstrap.log"
        tail = log.read_text(errors="replace").splitlines()[-10:] if log.exists() else last
        raise BackendError(f"debootstrap failed (exit {proc.returncode}):\n" + "\n".join(tail))
    for leftover in (target / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        leftover.unlink()


def _mounts() -> list[str]:
    """Mount points on this host (from /proc/self/mountinfo, octal escapes decoded)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            points.append(fields[4].encode().decode("unicode_escape"))
    return points


def remove_tree(path: Path) -> None:
    """Remove a build folder, unmounting first whatever a build left mounted inside it (never following
    a mount into the host's /proc, /sys or /dev)."""
    if not path.exists():
        return
    inside = [m for m in _mounts() if m == str(path) or m.startswith(f"{path}/")]
    for point in sorted(inside, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    if any(m == str(path) or m.startswith(f"{path}/") for m in _mounts()):
        raise BackendError(f"cannot remove {path}: something is still mounted inside it")
    shutil.rmtree(path, ignore_errors=True)

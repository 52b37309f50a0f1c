"""The libvirt driver's base disk: Debian made once with debootstrap (cloud kernel, systemd, sshd, the
Docker engine) into a qcow2 image plus its kernel and initrd for direct kernel boot.

``python -m mypaas.iaas.libvirt_image build [--dir DIR]`` writes ``debian-bookworm.qcow2``,
``debian-bookworm.vmlinuz`` and ``debian-bookworm.initrd`` into DIR (a libvirt dir pool's folder): the
driver's image ``debian-bookworm``. Machines made from it need no internet: at boot a small unit reads
the NoCloud seed (a disk labelled ``cidata``: ``meta-data`` and ``user-data``) for the hostname, root's
authorized keys and the SSH host key; systemd-networkd asks DHCP on every NIC; sshd and dockerd start.
``cached_base_disk()`` builds it once per recipe into /var/cache/mypaas/libvirt (what tests use).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mypaas.errors import BackendError, NotSupported

SUITE = "bookworm"
IMAGE_NAME = f"debian-{SUITE}"
MIRROR = "http://deb.debian.org/debian"
CACHE = Path("/var/cache/mypaas/libvirt")
DISK_SIZE = "6G"  # sparse: the image holds ~1.2 GB; machines' overlays grow into the rest
ROOT_LABEL = "mypaas-root"
KERNEL_ARGS = f"root=LABEL={ROOT_LABEL} rw console=ttyS0 net.ifnames=0 quiet"
PACKAGES = (
    "linux-image-cloud-amd64",
    "systemd",
    "systemd-sysv",
    "udev",
    "kmod",
    "openssh-server",
    "docker.io",
    # the cloud kernel turns AppArmor on: without apparmor_parser dockerd cannot load its profile and
    # every container fails to start (exit 128); minbase skips docker.io's recommendation of it
    "apparmor",
    "ca-certificates",
    "iproute2",
    "e2fsprogs",
)
TIMEOUT_S = 40 * 60

# Reads the NoCloud seed every boot, before sshd: hostname, root's keys, the SSH host key.
SEED_SCRIPT = r"""#!/bin/sh
# mypaas-seed: apply the NoCloud seed (a disk labelled cidata) before sshd starts
set -u
# blkid probes the disks the kernel lists (no udev needed); the seed disk is there from the start
for _ in 1 2 3 4 5 6 7 8 9 10; do
  dev=$(blkid -l -o device -t LABEL=cidata 2>/dev/null || true)
  [ -n "$dev" ] && break
  sleep 0.5
done
if [ -n "$dev" ]; then
  mkdir -p /run/mypaas-seed
  if mount -o ro "$dev" /run/mypaas-seed; then
    seed=/run/mypaas-seed
    name=$(sed -n 's/^local-hostname: *//p' "$seed/meta-data" | head -n 1)
    if [ -n "$name" ]; then
      echo "$name" > /etc/hostname
      hostname "$name"
      printf '127.0.1.1\t%s\n' "$name" >> /etc/hosts
    fi
    install -d -m 700 /root/.ssh
    awk '/^ssh_authorized_keys:/ {k=1; next} k && /^  - / {sub(/^  - /, ""); print; next} {k=0}' \
      "$seed/user-data" > /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
    key=$(awk '/^  ed25519_private: \|/ {k=1; next} k && /^    / {sub(/^    /, ""); print; next} {k=0}' \
      "$seed/user-data")
    if [ -n "$key" ]; then
      rm -f /etc/ssh/ssh_host_*
      printf '%s\n' "$key" > /etc/ssh/ssh_host_ed25519_key
      chmod 600 /etc/ssh/ssh_host_ed25519_key
      sed -n 's/^  ed25519_public: *//p' "$seed/user-data" > /etc/ssh/ssh_host_ed25519_key.pub
    fi
    umount /run/mypaas-seed
  fi
fi
ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1 || ssh-keygen -A
exit 0
"""

SEED_UNIT = """[Unit]
Description=MyPaas: hostname, root's SSH keys and host key from the NoCloud seed
DefaultDependencies=no
After=local-fs.target
Before=ssh.service network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/mypaas-seed
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""

NETWORK = """[Match]
Name=eth* en*

[Network]
DHCP=yes
"""

FILES = {
    "usr/local/sbin/mypaas-seed": (SEED_SCRIPT, 0o755),
    "etc/systemd/system/mypaas-seed.service": (SEED_UNIT, 0o644),
    "etc/systemd/network/80-dhcp.network": (NETWORK, 0o644),
    "etc/fstab": (f"LABEL={ROOT_LABEL} / ext4 defaults,noatime 0 1\n", 0o644),
    "etc/hostname": ("mypaas\n", 0o644),
    # the platform's bootstrap writes daemon.json later; nothing to pull at boot (no internet)
    "etc/ssh/sshd_config.d/mypaas.conf": ("PermitRootLogin prohibit-password\nUseDNS no\n", 0o644),
    # sshd answers once the engine does: under emulation dockerd takes a minute to start, and a manager
    # that logs in earlier sees `docker info` hang on the socket (the bootstrap's commands time out)
    "etc/systemd/system/ssh.service.d/after-docker.conf": ("[Unit]\nAfter=docker.service\n", 0o644),
}
UNITS = ("systemd-networkd.service", "mypaas-seed.service", "ssh.service", "docker.service")
# not needed on a machine that lives for its hosts' sake; each costs seconds at boot under emulation
MASKED = (
    "systemd-networkd-wait-online.service",
    "e2scrub_reap.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
)


@dataclass(frozen=True)
class BaseDisk:
    """The three files of an image: the disk, and the kernel and initrd it boots with."""

    disk: Path
    kernel: Path
    initrd: Path

    def exists(self) -> bool:
        return self.disk.is_file() and self.kernel.is_file() and self.initrd.is_file()


def recipe_hash() -> str:
    """Changes whenever what goes into the image changes (the test cache's key)."""
    text = repr((SUITE, PACKAGES, sorted(FILES.items()), UNITS, MASKED, DISK_SIZE, KERNEL_ARGS))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def image_files(folder: Path, name: str = IMAGE_NAME) -> BaseDisk:
    return BaseDisk(folder / f"{name}.qcow2", folder / f"{name}.vmlinuz", folder / f"{name}.initrd")


def check_host() -> None:
    """Building needs root, debootstrap, mkfs.ext4 (e2fsprogs) and qemu-img."""
    missing = [t for t in ("debootstrap", "mkfs.ext4", "qemu-img") if shutil.which(t) is None]
    if missing:
        raise NotSupported(f"building the base disk needs {', '.join(missing)} (scripts/install.sh --test)")
    if os.geteuid() != 0:
        raise NotSupported("building the base disk needs root (debootstrap does)")


def build(
    folder: Path, *, name: str = IMAGE_NAME, mirror: str = MIRROR, emit: Callable[[str], None] = print
) -> BaseDisk:
    """debootstrap, configure, then pack the folder into an ext4 qcow2 disk; files appear atomically."""
    check_host()
    folder.mkdir(parents=True, exist_ok=True)
    out = image_files(folder, name)
    tmp = tempfile.mkdtemp(prefix="mypaas-basedisk-", dir=folder)
    try:
        root = Path(tmp) / "root"
        _run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), mirror],
            emit,
        )
        _configure(root, emit)
        raw = Path(tmp) / "disk.raw"
        _run(["mkfs.ext4", "-q", "-L", ROOT_LABEL, "-d", str(root), str(raw), DISK_SIZE], emit)
        staged = image_files(Path(tmp), name)
        _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(staged.disk)], emit)
        shutil.copyfile(_boot_file(root, "vmlinuz"), staged.kernel)
        shutil.copyfile(_boot_file(root, "initrd.img"), staged.initrd)
        for path in (staged.disk, staged.kernel, staged.initrd):
            path.chmod(0o644)
        staged.kernel.replace(out.kernel)
        staged.initrd.replace(out.initrd)
        staged.disk.replace(out.disk)  # last: the disk's presence means the image is whole
    finally:
        _remove_tree(Path(tmp))
    emit(f"--- base disk ready: {out.disk}")
    return out


def cached_base_disk(cache: Path = CACHE, emit: Callable[[str], None] = print) -> BaseDisk:
    """The base disk for this recipe, built on first use into ``cache/base-<hash>/``."""
    folder = cache / f"base-{recipe_hash()}"
    disk = image_files(folder)
    if disk.exists():
        return disk
    made = build(folder, emit=emit)
    for stale in cache.glob("base-*"):  # older recipes' disks: gigabytes nobody boots any more
        if stale != folder:
            _remove_tree(stale)
    return made


def _configure(root: Path, emit: Callable[[str], None]) -> None:
    for rel, (text, mode) in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
    _run(["chroot", str(root), "systemctl", "enable", *UNITS], emit)
    _run(["chroot", str(root), "systemctl", "mask", *MASKED], emit)
    _run(["chroot", str(root), "passwd", "--lock", "root"], emit)
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()  # each machine gets its own (from the seed, or made at first boot)
    (root / "etc" / "machine-id").write_text("")  # made at first boot: each machine its own
    for leftover in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        leftover.unlink()


def _boot_file(root: Path, name: str) -> Path:
    path = root / name  # debootstrap leaves /vmlinuz and /initrd.img links to the newest kernel
    if not path.exists():
        found = sorted((root / "boot").glob(f"{name}-*"))
        if not found:
            raise BackendError(f"the base disk has no /boot/{name}-*: did the kernel package install?")
        path = found[-1]
    return path.resolve() if not path.is_symlink() else root / os.readlink(path).lstrip("/")


def _remove_tree(path: Path) -> None:
    """Remove a build folder, unmounting first what debootstrap left mounted in it (a failed run)."""
    for point in sorted((m for m in _mounts() if m.startswith(f"{path}/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    if any(m.startswith(f"{path}/") for m in _mounts()):
        raise BackendError(f"cannot remove {path}: something is still mounted inside it")
    shutil.rmtree(path, ignore_errors=True)


def _mounts() -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]


def _run(argv: list[str], emit: Callable[[str], None]) -> None:
    emit("--- " + " ".join(argv))
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BackendError(f"{argv[0]} did not finish in {TIMEOUT_S // 60} minutes") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise BackendError(f"{argv[0]} failed (exit {proc.returncode}):\n{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mypaas.iaas.libvirt_image",
        description="Build the libvirt driver's Debian base disk (needs root and the Debian mirror).",
        epilog="example: python -m mypaas.iaas.libvirt_image build --dir /var/lib/libvirt/images",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("build", help="debootstrap the base disk into DIR (a libvirt dir pool's folder)")
    make.add_argument("--dir", type=Path, default=Path("/var/lib/libvirt/images"), help="where to write it")
    make.add_argument("--name", default=IMAGE_NAME, help=f"the image's name (default {IMAGE_NAME})")
    make.add_argument("--mirror", default=MIRROR, help=f"the Debian mirror (default {MIRROR})")
    args = parser.parse_args(argv)
    try:
        build(args.dir, name=args.name, mirror=args.mirror)
    except (BackendError, NotSupported) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

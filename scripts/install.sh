#!/usr/bin/env bash
# Installs what MyPaas needs on a Debian/Ubuntu machine, skipping whatever is already there:
# the Docker engine (distribution packages), Caddy, Distribution (docker-registry), busybox-static
# (the tiny base image and test images), debootstrap
# (Debian/Ubuntu base images), a Python venv holding the package and the dashboard's browser code (npm
# tarballs checked against pinned hashes). With --test also the test tools: Chromium for the browser
# tests, Playwright in the venv, Go and govmomi (vcsim, the vSphere simulator). With --libvirt (implied
# by --test) what the libvirt iaas driver needs: libvirt-python (built against libvirt-dev), genisoimage
# (machines' seed disks), qemu-utils (the base disk); --test adds libvirtd and qemu to run machines
# here. With --bench also the benchmarks' own tools (wrk, and nginx and HAProxy to compare the router
# with: bench/router_overhead.py; gcc for its backend), which no test needs. Safe to run again.
# Usage: scripts/install.sh [--test] [--libvirt] [--bench]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv=${MYPAAS_VENV:-$here/.venv}
want_test=0
want_libvirt=0
want_bench=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1; want_libvirt=1 ;;
    --libvirt) want_libvirt=1 ;;
    --bench) want_bench=1 ;;
    *) echo "usage: scripts/install.sh [--test] [--libvirt] [--bench]" >&2; exit 2 ;;
  esac
done

log() { printf '==> %s\n' "$*"; }

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v caddy >/dev/null 2>&1 || need_pkgs+=(caddy)
# the router when the setting `router: haproxy` is chosen (Caddy then only terminates TLS)
[ -x /usr/sbin/haproxy ] || need_pkgs+=(haproxy)
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
# git clones the repositories apps deploy from (`mypaas deploy APP --git URL`, `mypaas git watch`)
command -v git >/dev/null 2>&1 || need_pkgs+=(git)
# debootstrap makes the Debian/Ubuntu base images (`mypaas image base debian:bookworm`)
dpkg -s debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
# ssh/ssh-keygen reach hosts (`ssh root@ADDR`); ip builds the multi-host test kit's network (tests/cluster.py)
command -v ssh >/dev/null 2>&1 || need_pkgs+=(openssh-client)
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
# git receives `git push` deploys (manager/git: git receive-pack, git archive) and clones submodules
command -v git >/dev/null 2>&1 || need_pkgs+=(git)
# iptables keeps builds' RUN steps off this machine's addresses (composer/build_network.py)
command -v iptables >/dev/null 2>&1 || need_pkgs+=(iptables)
# sshd runs inside each test host of tests/cluster.py: only for --test (it would open port 22 otherwise)
if [ $want_test -eq 1 ]; then
  { command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]; } || need_pkgs+=(openssh-server)
  # a static C compiler builds the UDP echo server of the compose-options tests (busybox has no UDP server)
  command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc)
  dpkg -s libc6-dev >/dev/null 2>&1 || need_pkgs+=(libc6-dev)
  # an ACME server and its DNS/challenge helper for the HTTPS tests (tests/integration/test_https.py)
  command -v pebble >/dev/null 2>&1 || need_pkgs+=(pebble)
  # the dashboard's browser tests drive Debian's Chromium through Playwright (it cannot download its own);
  # the fonts are a recommendation of chromium's that --no-install-recommends would skip: pages need text
  [ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
  dpkg -s fonts-liberation >/dev/null 2>&1 || need_pkgs+=(fonts-liberation)
  # systemd-analyze checks the manager's unit (tests/unit/test_units.py); it needs no systemd as PID 1
  command -v systemd-analyze >/dev/null 2>&1 || need_pkgs+=(systemd)
  # VMware's vSphere simulator (vcsim) for the vSphere driver's tests, built by tests/vcsim/build.sh
  command -v go >/dev/null 2>&1 || need_pkgs+=(golang-go)
  dpkg -s golang-github-vmware-govmomi-dev >/dev/null 2>&1 || need_pkgs+=(golang-github-vmware-govmomi-dev)
fi
# the benchmarks' tools: a load generator, and the proxies the router is compared with (never started
# as services: bench/router_overhead.py runs its own, on free ports)
if [ $want_bench -eq 1 ]; then
  command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
  [ -x /usr/sbin/nginx ] || need_pkgs+=(nginx)
  command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc)
  dpkg -s libc6-dev >/dev/null 2>&1 || need_pkgs+=(libc6-dev)
fi

# the libvirt driver: its Python binding builds against libvirt-dev; seed ISOs; qemu-img for the base disk
if [ $want_libvirt -eq 1 ]; then
  for pkg in libvirt-dev pkg-config gcc genisoimage qemu-utils; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
  done
fi
# libvirtd, qemu (software emulation works where KVM does not) and dnsmasq (the networks' DHCP) run the
# libvirt driver's test machines (tests/libvirt_kit.py starts the daemons: no systemd there)
if [ $want_test -eq 1 ]; then
  for pkg in libvirt-daemon-system qemu-system-x86 dnsmasq-base libvirt-clients; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
  done
fi

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing packages (${need_pkgs[*]}); run as root or install them first" >&2
    exit 1
  fi
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi

# MyPaas runs its own Caddy, HAProxy and Distribution (the router benchmark its own nginx): the
# services their packages start under systemd would hold ports 80, 2019 and 5000, so they are stopped
# and disabled.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  for unit in caddy docker-registry nginx haproxy; do
    if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit" 2>/dev/null; then
      log "disabling the packaged $unit service (MyPaas runs its own)"
      systemctl disable --now "$unit" || true
    fi
  done
fi

# Caddy opens a new listening socket for each route change (SO_REUSEPORT) and closes the old one; this
# kernel switch (Linux >= 5.14) hands the connections queued on the old socket over instead of resetting
# them. The router turns it on at start too; the file keeps it across reboots.
if [ "$(id -u)" -eq 0 ] && [ -e /proc/sys/net/ipv4/tcp_migrate_req ]; then
  if [ ! -f /etc/sysctl.d/60-mypaas.conf ] && [ -d /etc/sysctl.d ]; then
    log "keeping net.ipv4.tcp_migrate_req=1 (/etc/sysctl.d/60-mypaas.conf)"
    echo "net.ipv4.tcp_migrate_req = 1" >/etc/sysctl.d/60-mypaas.conf
  fi
  echo 1 >/proc/sys/net/ipv4/tcp_migrate_req 2>/dev/null || true
fi

# The Docker daemon: use systemd where it runs, else start dockerd in the background.
if ! docker info >/dev/null 2>&1; then
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    log "starting docker (systemd)"
    systemctl start docker
  else
    log "starting dockerd (log: /var/log/mypaas-dockerd.log)"
    nohup dockerd >/var/log/mypaas-dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "error: the Docker daemon did not start; see /var/log/mypaas-dockerd.log" >&2; exit 1; }
fi
# The engine comes back after a reboot where systemd runs (`mypaas up --boot` enables the manager's unit,
# which starts after docker.service); elsewhere `mypaas up --boot` says what to add to the init system.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  systemctl is-enabled --quiet docker 2>/dev/null || { log "enabling docker at boot (systemd)"; systemctl enable --quiet docker; }
fi

# The Python venv with the package (editable, so a git pull is picked up).
if [ ! -x "$venv/bin/python" ]; then
  log "creating the venv at $venv"
  python3 -m venv "$venv"
fi
stamp="$venv/.mypaas-installed"
extra=""
[ $want_libvirt -eq 1 ] && extra="[libvirt]"
[ $want_test -eq 1 ] && extra="[test]"
if [ ! -f "$stamp$extra" ] || [ "$here/pyproject.toml" -nt "$stamp$extra" ]; then
  log "installing the mypaas package$extra into the venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e "$here$extra"
  touch "$stamp$extra"
fi

# The dashboard's browser code (Preact, htm, uPlot) from the npm registry, each tarball checked against
# its pinned sha512 (src/mypaas/web/assets.py); silent when the files are already there.
"$venv/bin/python" -m mypaas.web.assets
# The package's bytecode, made here: an editable install has none, and where Python may not write it
# (PYTHONDONTWRITEBYTECODE set, a read-only checkout) every `mypaas` run compiled its modules again
# (~15 ms of each command). Python checks each file against its source: after a git pull a changed
# module is compiled at its next import, as without this step, until the next install.
"$venv/bin/python" -m compileall -q "$here/src/mypaas" >/dev/null
# vcsim, cached under /var/cache/mypaas/vcsim (a second run costs nothing)
if [ $want_test -eq 1 ]; then "$here/tests/vcsim/build.sh" >/dev/null; fi
log "ready: $venv/bin/mypaas"

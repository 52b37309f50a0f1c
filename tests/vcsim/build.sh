#!/bin/sh
# Builds vcsim (main.go, around govmomi's simulator) offline from Debian's golang-go and
# golang-github-vmware-govmomi-dev, once: the binary is cached under /var/cache/mypaas/vcsim, keyed by the
# hash of main.go, the Go version and the govmomi package version, so a second run costs nothing.
# Prints the binary's path. Usage: tests/vcsim/build.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${MYPAAS_VCSIM_CACHE:-/var/cache/mypaas/vcsim}
command -v go >/dev/null 2>&1 || { echo "error: go is not installed (scripts/install.sh --test)" >&2; exit 1; }
govmomi=$(dpkg-query -W -f '${Version}' golang-github-vmware-govmomi-dev 2>/dev/null) \
  || { echo "error: golang-github-vmware-govmomi-dev is not installed (scripts/install.sh --test)" >&2; exit 1; }
key=$({ cat "$here/main.go"; go version; echo "$govmomi"; } | sha256sum | cut -c1-16)
bin="$cache/$key/vcsim"
if [ ! -x "$bin" ]; then
  mkdir -p "$cache/$key"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/src/vcsim"
  cp "$here/main.go" "$work/src/vcsim/"
  (cd "$work/src/vcsim" && GOPATH="$work:/usr/share/gocode" GO111MODULE=off \
    GOCACHE="$cache/gocache" go build -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
fi
echo "$bin"

#!/usr/bin/env bash
# Provision a real Asterisk on a Debian host without a Docker engine.
#
# Debian 12 ships no asterisk package; Debian sid does, but sid's asterisk needs a newer libc.
# So we build a small sid root with mmdebstrap and run Asterisk inside it with chroot
# (see docs/asterisk.md, "Running Asterisk for development and tests"). The root is cached: a
# second run with the root already in place does nothing. The test harness
# (tests/labs/asterisk_lab.py) writes its own /etc/asterisk into the root at every start; the Debian
# samples stay in /etc/asterisk.dist.
#
# usage: docker/provision-asterisk.sh [ROOT]
#   ROOT defaults to $TWIML_ASTERISK_ROOT or ~/.cache/twiml-pbx-adapter/asterisk-root
#   $TWIML_DEBIAN_MIRROR overrides the Debian archive (default: the one apt already uses)
set -euo pipefail

root="${1:-${TWIML_ASTERISK_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/twiml-pbx-adapter/asterisk-root}}"

ready() { [ -x "$root/usr/sbin/asterisk" ] && [ -f "$root/.provisioned" ]; }

if ready; then
  echo "asterisk root ready: $root"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "provision-asterisk: must run as root (mmdebstrap root mode and chroot)" >&2
  exit 1
fi

mkdir -p "$(dirname "$root")"
# Two concurrent runs (e.g. two test sessions) must not build the same root twice.
exec 9>"$root.provision.lock"
flock 9
if ready; then
  echo "asterisk root ready: $root"
  exit 0
fi

if ! command -v mmdebstrap >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi

# Reuse the Debian archive this host already uses, for sid.
mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
fi
mirror="${TWIML_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}"

tmp="$root.tmp.$$"
trap 'rm -rf "$tmp" "$tmp.log"' EXIT
rm -rf "$tmp"
echo "building sid root with asterisk from $mirror into $root (about 115 MB download, 30 s)"
# The sid index may be a frozen snapshot whose Valid-Until has passed.
# Do not path-exclude /usr/share/asterisk/documentation: Asterisk needs it to boot.
mmdebstrap --variant=apt \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --include=asterisk,asterisk-core-sounds-en-wav \
  sid "$tmp" "$mirror" >"$tmp.log" 2>&1 || { tail -n 30 "$tmp.log" >&2; exit 1; }
# Keep the Debian sample configuration for reference; the harness writes its own.
if [ -d "$tmp/etc/asterisk" ] && [ ! -d "$tmp/etc/asterisk.dist" ]; then
  mv "$tmp/etc/asterisk" "$tmp/etc/asterisk.dist"
  mkdir -p "$tmp/etc/asterisk"
fi
# sid's asterisk cannot run on the host's older libc: check it inside the root.
chroot "$tmp" /usr/sbin/asterisk -V >"$tmp/.provisioned"
rm -rf "$root"
mv "$tmp" "$root"
echo "asterisk root ready: $root ($(cat "$root/.provisioned"))"

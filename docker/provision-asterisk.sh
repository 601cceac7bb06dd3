#!/usr/bin/env bash
# Provision a real Asterisk on a Debian host without a Docker engine.
#
# Debian 12 ships no asterisk package; Debian sid does, but sid's asterisk needs a newer libc.
# So we build a small sid root with mmdebstrap and run Asterisk inside it with chroot
# (see docs/asterisk.md, "Running Asterisk without Docker"). The root is cached: a second run
# with the root already in place does nothing.
#
# usage: docker/provision-asterisk.sh [ROOT]
#   ROOT defaults to $TWIML_ASTERISK_ROOT or ~/.cache/twiml-pbx-adapter/asterisk-root
set -euo pipefail

root="${1:-${TWIML_ASTERISK_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/twiml-pbx-adapter/asterisk-root}}"

if [ -x "$root/usr/sbin/asterisk" ] && [ -f "$root/.provisioned" ]; then
  echo "asterisk root ready: $root"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "provision-asterisk: must run as root (mmdebstrap root mode and chroot)" >&2
  exit 1
fi

if ! command -v mmdebstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
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
rm -rf "$tmp"
mkdir -p "$(dirname "$root")"
echo "building sid root with asterisk from $mirror into $root (about 115 MB download)"
# The sid index may be a frozen snapshot whose Valid-Until has passed.
mmdebstrap --variant=apt \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --include=asterisk,asterisk-core-sounds-en-wav \
  sid "$tmp" "$mirror" >"$tmp.log" 2>&1 || { tail -n 30 "$tmp.log" >&2; exit 1; }
rm -f "$tmp.log"
# Keep the Debian sample configuration for reference; the adapter's harness writes its own.
if [ -d "$tmp/etc/asterisk" ] && [ ! -d "$tmp/etc/asterisk.dist" ]; then
  mv "$tmp/etc/asterisk" "$tmp/etc/asterisk.dist"
  mkdir -p "$tmp/etc/asterisk"
fi
"$tmp/usr/sbin/asterisk" -V >/dev/null 2>&1 || chroot "$tmp" /usr/sbin/asterisk -V
chroot "$tmp" /usr/sbin/asterisk -V >"$tmp/.provisioned"
rm -rf "$root"
mv "$tmp" "$root"
echo "asterisk root ready: $root ($(cat "$root/.provisioned"))"

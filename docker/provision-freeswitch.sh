#!/usr/bin/env bash
# Build a real FreeSWITCH 1.10.12 for the tests, CI and the demo, on a Debian host without a
# Docker engine.
#
# No package registry we reach ships FreeSWITCH, so it is built from the upstream source
# tarballs (FreeSWITCH 1.10.12, sofia-sip 1.13.17, spandsp), which are a test dependency kept
# outside this repository. The build goes into a cache folder whose name carries a key made of
# the tarballs' SHA256SUMS and this recipe's version, so a second run reuses it and a change of
# either builds anew. The result carries RUNPATH to its own lib/, so it runs without
# LD_LIBRARY_PATH or ldconfig. The tests (tests/labs/freeswitch_local.py) start it with a
# configuration of their own (docker/freeswitch/conf), never the vanilla one installed here.
#
# usage: docker/provision-freeswitch.sh [--print-root]
#   TWIML_FREESWITCH_SOURCES  folder with the three tarballs and SHA256SUMS
#                             (default: ../shared/pbx-sources beside this checkout)
#   TWIML_FREESWITCH_CACHE    where builds are kept (default ~/.cache/twiml-pbx-adapter)
# The build lands in $TWIML_FREESWITCH_CACHE/freeswitch-<key>; the symlink
# $TWIML_FREESWITCH_CACHE/freeswitch points at the current one (that is what the tests use).
# --print-root prints that folder and exits (0 if it is built, 1 if not).
set -euo pipefail

# Bump when the recipe below changes what gets built (modules, configure flags).
recipe=1
# The modules an adapter and its tests need; all build with the Debian packages below.
modules="
applications/mod_commands
applications/mod_db
applications/mod_dptools
applications/mod_expr
applications/mod_hash
applications/mod_spandsp
dialplans/mod_dialplan_xml
endpoints/mod_loopback
endpoints/mod_sofia
event_handlers/mod_event_socket
formats/mod_local_stream
formats/mod_native_file
formats/mod_sndfile
formats/mod_tone_stream
loggers/mod_console
loggers/mod_logfile
say/mod_say_en
"
# libpng and FreeType: configure takes them when it finds them (libfreeswitch then links both),
# so they are always installed, for the same build on every machine.
build_packages="build-essential autoconf automake libtool libtool-bin pkg-config yasm nasm
libssl-dev libcurl4-openssl-dev libpcre3-dev libspeexdsp-dev libspeex-dev libsqlite3-dev
libedit-dev libtiff-dev libsndfile1-dev uuid-dev libldns-dev libjpeg-dev zlib1g-dev libopus-dev
libpng-dev libfreetype-dev xz-utils"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sources="${TWIML_FREESWITCH_SOURCES:-$here/../../shared/pbx-sources}"
cache="${TWIML_FREESWITCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/twiml-pbx-adapter}"

say() { echo "provision-freeswitch: $*"; }
die() { echo "provision-freeswitch: $*" >&2; exit 1; }

[ -f "$sources/SHA256SUMS" ] || die "no SHA256SUMS in $sources (set TWIML_FREESWITCH_SOURCES)"
key=$( { cat "$sources/SHA256SUMS"; echo "recipe=$recipe"; echo "$modules"; } | sha256sum | cut -c1-16)
prefix="$cache/freeswitch-$key"
ready() { [ -x "$prefix/bin/freeswitch" ] && [ -f "$prefix/.provisioned" ]; }

if [ "${1:-}" = --print-root ]; then
  echo "$prefix"
  ready
  exit
fi

link_current() { ln -sfn "freeswitch-$key" "$cache/freeswitch"; }

if ready; then
  link_current
  say "ready: $prefix ($(cat "$prefix/.provisioned"))"
  exit 0
fi

mkdir -p "$cache"
# Two concurrent runs must not build the same tree twice.
exec 9>"$prefix.lock"
flock 9
if ready; then
  link_current
  say "ready: $prefix"
  exit 0
fi

(cd "$sources" && sha256sum --quiet -c SHA256SUMS) || die "the tarballs in $sources do not match SHA256SUMS"
tarball() { # tarball NAME-: the one tarball of that name in $sources
  local f
  for f in "$sources/$1"*.tar.xz; do
    [ -f "$f" ] && { echo "$f"; return; }
  done
  die "no $1*.tar.xz in $sources"
}
fs_tar=$(tarball freeswitch-)
sofia_tar=$(tarball sofia-sip-)
spandsp_tar=$(tarball spandsp-)

missing=""
for pkg in $build_packages; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages:$missing (run as root, or install them)"
  say "installing build packages:$missing"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # shellcheck disable=SC2086 # a list of package names
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends $missing >/dev/null
fi

work="$cache/build-$key"
log="$cache/freeswitch-$key.build.log"
rm -rf "$work" "$prefix"
mkdir -p "$work"
: >"$log"
on_exit() {
  local status=$?
  if [ "$status" != 0 ]; then
    tail -n 40 "$log" >&2
    say "build failed; full log: $log"
    rm -rf "$prefix"
  fi
  rm -rf "$work"
}
trap on_exit EXIT
jobs=$(nproc 2>/dev/null || echo 2)
started=$SECONDS

step() { # step NAME DIR COMMAND...: run in DIR, output to the log, print one line with the time
  local name=$1 dir=$2 t0=$SECONDS
  shift 2
  (cd "$dir" && "$@") >>"$log" 2>&1
  say "$name ($((SECONDS - t0)) s)"
}
unpack() { # unpack TARBALL: prints the folder it made (the tarball's first entry)
  tar -C "$work" -xJf "$1"
  echo "$work/$(tar -tJf "$1" | head -n 1 | cut -d/ -f1)"
}
bootstrap() { if [ -x ./bootstrap.sh ]; then ./bootstrap.sh; else ./autogen.sh; fi; }

say "building FreeSWITCH from $sources into $prefix (about 10 minutes on 2 cores; log: $log)"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
flags=(--prefix="$prefix" LDFLAGS="-Wl,-rpath,$prefix/lib -L$prefix/lib" CPPFLAGS="-I$prefix/include")

dir=$(unpack "$spandsp_tar")
step "spandsp: bootstrap" "$dir" bootstrap
step "spandsp: configure" "$dir" ./configure "${flags[@]}"
step "spandsp: make" "$dir" make -j"$jobs"
step "spandsp: install" "$dir" make install

dir=$(unpack "$sofia_tar")
step "sofia-sip: bootstrap" "$dir" bootstrap
step "sofia-sip: configure" "$dir" ./configure "${flags[@]}"
step "sofia-sip: make" "$dir" make -j"$jobs"
step "sofia-sip: install" "$dir" make install

dir=$(unpack "$fs_tar")
# modules.conf must exist before bootstrap.sh, or the default list (mod_verto and mod_signalwire
# need libks, which we do not build) is copied in.
echo "$modules" | sed '/^$/d' >"$dir/modules.conf"
step "freeswitch: bootstrap" "$dir" ./bootstrap.sh -j
step "freeswitch: configure" "$dir" ./configure "${flags[@]}" --disable-dependency-tracking
step "freeswitch: make" "$dir" make -j"$jobs"
step "freeswitch: install" "$dir" make install

"$prefix/bin/freeswitch" -version | tr -d '\r' | head -n 1 >"$prefix/.provisioned"
link_current
say "ready: $prefix ($(cat "$prefix/.provisioned"), $((SECONDS - started)) s)"

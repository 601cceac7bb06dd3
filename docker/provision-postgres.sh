#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and local experiments (Debian's `postgresql` package).
#
# usage: docker/provision-postgres.sh start DIR [PORT]
#        docker/provision-postgres.sh stop DIR
#
# start: initialises a cluster in DIR/data with initdb (as the `postgres` user when run as
#        root: PostgreSQL refuses to run as root), starts it on 127.0.0.1:PORT (a free port when
#        PORT is not given) with its socket in DIR, and prints the SQLAlchemy URL on stdout:
#            postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres
#        Trust authentication, on loopback only; durability settings are off (fsync, full page
#        writes): the cluster lives as long as one test session and is never a real database.
#        When run as root, DIR is handed to the postgres user, so its parent must be traversable
#        by that user (e.g. `mktemp -d` under /tmp).
# stop:  stops it at once (`pg_ctl stop -m immediate`); DIR is left for the caller to remove.
set -euo pipefail

usage() { echo "usage: $0 start DIR [PORT] | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
command="$1"
dir="$(realpath -m "$2")"

bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "provision-postgres: PostgreSQL server binaries not found; apt-get install postgresql" >&2
  exit 1
fi

# Run as the postgres user when we are root, else as ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$command" in
  start)
    port="${3:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown postgres: "$dir"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bindir/initdb" --pgdata="$dir/data" --username=postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bindir/pg_ctl" --pgdata="$dir/data" --log="$dir/postgres.log" --wait \
      --timeout=60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off \
          -c full_page_writes=off -c synchronous_commit=off -c max_connections=200" \
      start >/dev/null \
      || { cat "$dir/postgres.log" >&2; exit 1; }
    echo "postgresql+asyncpg://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bindir/pg_ctl" --pgdata="$dir/data" --mode=immediate --wait stop >/dev/null
    fi
    ;;
  *)
    usage
    ;;
esac

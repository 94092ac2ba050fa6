#!/usr/bin/env bash
# A private PostgreSQL cluster on loopback for development and tests (and for the local CKAN).
#   scripts/pg-local.sh up [DBNAME ...]   start it (initdb on first run), create the databases
#   scripts/pg-local.sh down              stop it (data kept under .stack/pg)
#   scripts/pg-local.sh url DBNAME        print the SQLAlchemy URL of a database
# Port: ASHYQ_PG_PORT, else ASHYQ_STACK_PORT_BASE+3 when that is set (the port
# scripts/ckan-local.sh gives this same cluster: CKAN N, Redis N+1, Solr N+2, PostgreSQL N+3),
# else 55432. A second checkout (its own ASHYQ_STACK_DIR, default <checkout>/.stack) with its own
# ASHYQ_STACK_PORT_BASE therefore runs its own cluster, and two test runs never share one.
# Installs Debian's postgresql when missing. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${ASHYQ_STACK_DIR:-$ROOT/.stack}"
PGDIR="$STACK/pg"
BASE="${ASHYQ_STACK_PORT_BASE:-}"
if [[ -n "$BASE" ]]; then
  [[ "$BASE" =~ ^[0-9]+$ ]] && (( BASE >= 1024 && BASE <= 65532 )) \
    || { echo "pg-local: ERROR: ASHYQ_STACK_PORT_BASE must be a port number 1024-65532" >&2; exit 2; }
  PORT="${ASHYQ_PG_PORT:-$((BASE + 3))}"
else
  PORT="${ASHYQ_PG_PORT:-55432}"
fi

pgbin() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  echo "$d"
}

ensure_installed() {
  if [[ -z "$(pgbin)" ]]; then
    echo "pg-local: installing Debian postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
  fi
}

as_pg() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd_up() {
  ensure_installed
  local bin; bin="$(pgbin)"
  mkdir -p "$PGDIR"
  [[ "$(id -u)" == 0 ]] && chown postgres:postgres "$PGDIR"
  if [[ ! -f "$PGDIR/data/PG_VERSION" ]]; then
    as_pg "$bin/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if ! as_pg "$bin/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/pg.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PGDIR" start >/dev/null \
      || { echo "pg-local: ERROR: PostgreSQL did not start on port $PORT (in use by another" \
                "cluster? set ASHYQ_STACK_PORT_BASE or ASHYQ_PG_PORT; log: $PGDIR/pg.log)" >&2; exit 1; }
  else
    # Already running: on the port asked for? (line 4 of postmaster.pid is its port)
    local running; running="$(sed -n 4p "$PGDIR/data/postmaster.pid" 2>/dev/null || true)"
    if [[ -n "$running" && "$running" != "$PORT" ]]; then
      echo "pg-local: ERROR: the cluster in $PGDIR already runs on port $running, not $PORT" \
           "(stop it with the same ASHYQ_STACK_PORT_BASE/ASHYQ_PG_PORT it was started with)" >&2
      exit 1
    fi
  fi
  for db in "$@"; do
    if ! psql -h 127.0.0.1 -p "$PORT" -U postgres -tAc "select 1 from pg_database where datname='$db'" | grep -q 1; then
      psql -h 127.0.0.1 -p "$PORT" -U postgres -qc "create database \"$db\" encoding 'utf-8'" >/dev/null
    fi
  done
}

cmd_down() {
  local bin; bin="$(pgbin)"
  if [[ -n "$bin" && -f "$PGDIR/data/PG_VERSION" ]]; then
    as_pg "$bin/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
  fi
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  url) echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/${2:?database name}" ;;
  *) echo "usage: $0 up [DB ...] | down | url DB" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A local CKAN 2.12 for development and tests (never for production).
#
#   eval "$(scripts/ckan-local.sh up)"   bring everything up; prints `export CKAN_URL=...` and
#                                        `export CKAN_API_TOKEN=...` (progress goes to stderr)
#   scripts/ckan-local.sh down           stop only what `up` started (data kept under .stack/ckan)
#   scripts/ckan-local.sh stop-web       stop only the CKAN web process (fault injection in tests)
#   scripts/ckan-local.sh stop-solr      stop only the Solr stand-in (fault injection: CKAN answers 5xx)
#   scripts/ckan-local.sh status         print what is running
#
# What `up` brings up, each step checked before acting (a second run while up takes seconds):
#   - Debian packages when missing: postgresql (via scripts/pg-local.sh), redis-server, libpq-dev,
#     gcc, libmagic1, curl;
#   - PostgreSQL: the project's cluster (scripts/pg-local.sh up ckan_default, port 55432) with a
#     role/database `ckan_default` for CKAN;
#   - Redis on 127.0.0.1:$CKAN_REDIS_PORT;
#   - the Solr stand-in (scripts/solr_standin.py: TEST INFRASTRUCTURE; production uses real Solr)
#     on 127.0.0.1:$CKAN_SOLR_PORT;
#   - CKAN 2.12.0 + ckanext-scheming 3.1.0 + ckanext-dcat 2.4.4 + the project's ckanext-ashyq in its
#     own venv (.stack/ckan-venv), the project's schema (config/ckan/ashyq_dataset.yaml), under
#     gunicorn on 127.0.0.1:$CKAN_PORT;
#   - a sysadmin `ashyqadmin` and an API token (kept in .stack/ckan/token.txt);
#   - the DataStore (database datastore_default on the same PostgreSQL) with ckanext-xloader
#     2.6.0 and CKAN's background worker (`ckan jobs worker`, log: .stack/ckan/log/worker.log):
#     CSV resources of public datasets are loaded and previewed with datatables_view.
# Ports (env): CKAN_PORT 55000, CKAN_REDIS_PORT 56379, CKAN_SOLR_PORT 58983, ASHYQ_PG_PORT 55432.
# ASHYQ_STACK_PORT_BASE=N (e.g. 61000) gives a checkout its own four ports instead: CKAN N,
# Redis N+1, Solr N+2, PostgreSQL N+3 (a port set explicitly still wins), so two checkouts'
# stacks (each with its own ASHYQ_STACK_DIR, default <checkout>/.stack) run side by side.
# A second `up` while the stack runs answers in seconds: daemons never inherit the lock's file
# descriptor 9, and a lock file held only by such a daemon (left by an older version of this
# script) is replaced instead of waited for.
# CKAN_MAX_RESOURCE_MB (10) sets ckan.max_resource_size.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${ASHYQ_STACK_DIR:-$ROOT/.stack}"
CK="$STACK/ckan"
VENV="$STACK/ckan-venv"
LOG="$CK/log"
BASE="${ASHYQ_STACK_PORT_BASE:-}"
if [[ -n "$BASE" ]]; then
  [[ "$BASE" =~ ^[0-9]+$ ]] && (( BASE >= 1024 && BASE <= 65532 )) \
    || { echo "ckan-local: ERROR: ASHYQ_STACK_PORT_BASE must be a port number 1024-65532" >&2; exit 2; }
  CKAN_PORT="${CKAN_PORT:-$BASE}"
  REDIS_PORT="${CKAN_REDIS_PORT:-$((BASE + 1))}"
  SOLR_PORT="${CKAN_SOLR_PORT:-$((BASE + 2))}"
  PG_PORT="${ASHYQ_PG_PORT:-$((BASE + 3))}"
else
  CKAN_PORT="${CKAN_PORT:-55000}"
  REDIS_PORT="${CKAN_REDIS_PORT:-56379}"
  SOLR_PORT="${CKAN_SOLR_PORT:-58983}"
  PG_PORT="${ASHYQ_PG_PORT:-55432}"
fi
MAX_MB="${CKAN_MAX_RESOURCE_MB:-10}"
URL="http://127.0.0.1:$CKAN_PORT"
INI="$CK/ckan.ini"
ADMIN=ashyqadmin
PY="${CKAN_PYTHON:-python3.11}"
PINS=("ckan[requirements]==2.12.0" "ckanext-scheming==3.1.0" "ckanext-dcat==2.4.4" "gunicorn==27.0.1")
# ckanext-xloader (CSV resources into the DataStore: the table preview) is installed without its
# declared dependencies, whose lower bounds (certifi, urllib3, idna) are newer than CKAN 2.12's
# pins; what it imports besides CKAN's own packages is pinned here.
XLOADER_PINS=("ckanext-xloader==2.6.0" "tabulator==1.53.5" "Unidecode==1.4.0" "chardet==7.6.0")

say() { echo "ckan-local: $*" >&2; }
die() { echo "ckan-local: ERROR: $*" >&2; exit 1; }

# A pid is alive if /proc says so and it is not a zombie (kill -0 is true for zombies).
alive() {
  local pid="$1" state
  [[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}
pid_of() { [[ -f "$1" ]] && cat "$1" || true; }
# Our daemon: the pid in our pidfile is alive and its command line has the expected word.
ours() {
  local pid; pid="$(pid_of "$1")"
  alive "$pid" && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}
# Start a daemon in its own session, record its real pid (bash execs into the command).
spawn() {
  local pidfile="$1" logfile="$2"; shift 2
  # 9>&-: the daemon must not inherit the lock file descriptor (see lock below)
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 < /dev/null 9>&- &
  local i
  for i in $(seq 1 50); do [[ -s "$pidfile" ]] && return 0; sleep 0.1; done
  die "could not start $1"
}
# Stop a pid from our pidfile only if its command line still contains the expected word.
stop_pid() {
  local pidfile="$1" expect="$2" pid i
  pid="$(pid_of "$pidfile")"
  if alive "$pid" && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$expect"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    say "stopped $expect (pid $pid)"
  fi
  rm -f "$pidfile"
}

ensure_debian() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v pg_config >/dev/null || missing+=(libpq-dev)
  command -v gcc >/dev/null || missing+=(gcc)
  command -v curl >/dev/null || missing+=(curl)
  ldconfig -p 2>/dev/null | grep -q libmagic.so.1 || missing+=(libmagic1)
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >"$LOG/apt.log" 2>&1 \
      || { apt-get update -qq >>"$LOG/apt.log" 2>&1 && apt-get install -y -qq "${missing[@]}" >>"$LOG/apt.log" 2>&1; } \
      || die "apt-get install ${missing[*]} failed (see $LOG/apt.log)"
  fi
}

ext_hash() { (cd "$ROOT/ckanext-ashyq" && find . -type f ! -path '*/__pycache__/*' ! -path '*.egg-info*' ! -path './build/*' -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16; }

ensure_venv() {
  command -v "$PY" >/dev/null || PY=python3
  local want have
  want="$( (printf '%s\n' "${PINS[@]}" "${XLOADER_PINS[@]}"; "$PY" --version) | sha256sum | cut -c1-16)"
  have="$(cat "$VENV/.ashyq-stamp" 2>/dev/null || true)"
  if [[ "$want" != "$have" || ! -x "$VENV/bin/ckan" ]]; then
    say "installing CKAN 2.12.0 + extensions into $VENV (about a minute; log: $LOG/pip.log)"
    [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q -U pip >"$LOG/pip.log" 2>&1 || die "pip upgrade failed (see $LOG/pip.log)"
    "$VENV/bin/python" -m pip install "${PINS[@]}" >>"$LOG/pip.log" 2>&1 || die "pip install failed (see $LOG/pip.log)"
    "$VENV/bin/python" -m pip install --no-deps "${XLOADER_PINS[0]}" >>"$LOG/pip.log" 2>&1 \
      && "$VENV/bin/python" -m pip install "${XLOADER_PINS[@]:1}" >>"$LOG/pip.log" 2>&1 \
      || die "installing ckanext-xloader failed (see $LOG/pip.log)"
    echo "$want" > "$VENV/.ashyq-stamp"
  fi
  want="$(ext_hash)"
  have="$(cat "$VENV/.ashyq-ext-stamp" 2>/dev/null || true)"
  if [[ "$want" != "$have" ]]; then
    say "installing ckanext-ashyq into the CKAN venv"
    rm -rf "$ROOT/ckanext-ashyq/build"
    "$VENV/bin/python" -m pip install -q --no-deps --force-reinstall "$ROOT/ckanext-ashyq" >>"$LOG/pip.log" 2>&1 \
      || die "installing ckanext-ashyq failed (see $LOG/pip.log)"
    rm -rf "$ROOT/ckanext-ashyq/build" "$ROOT"/ckanext-ashyq/*.egg-info
    echo "$want" > "$VENV/.ashyq-ext-stamp"
  fi
}

psql_pg() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

ensure_pg() {
  if ! psql_pg -d postgres -c 'select 1' >/dev/null 2>&1; then
    touch "$CK/pg.started-by-ckan-local"
  fi
  # 9>&-: PostgreSQL (started by pg-local.sh) must not inherit the lock file descriptor
  ASHYQ_PG_PORT="$PG_PORT" ASHYQ_STACK_DIR="$STACK" "$ROOT/scripts/pg-local.sh" up ckan_default 9>&- \
    || die "PostgreSQL did not come up on port $PG_PORT (in use by another cluster? see $STACK/pg/pg.log)"
  if [[ "$(psql_pg -d postgres -c "select 1 from pg_roles where rolname='ckan_default'")" != 1 ]]; then
    psql_pg -d postgres -c "create role ckan_default login password 'ckan_default'"
  fi
  if [[ "$(psql_pg -d postgres -c "select pg_get_userbyid(datdba) from pg_database where datname='ckan_default'")" != ckan_default ]]; then
    psql_pg -d postgres -c "alter database ckan_default owner to ckan_default"
    psql_pg -d ckan_default -c "alter schema public owner to ckan_default"
  fi
}

ensure_redis() {
  if [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" != PONG ]]; then
    say "starting Redis on 127.0.0.1:$REDIS_PORT"
    mkdir -p "$CK/redis"
    spawn "$CK/redis.pid" "$LOG/redis.log" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
      --dir "$CK/redis" --save "" --appendonly no --daemonize no
    local i
    for i in $(seq 1 50); do
      [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" == PONG ]] && return 0
      alive "$(pid_of "$CK/redis.pid")" || die "Redis died (see $LOG/redis.log)"
      sleep 0.1
    done
    die "Redis did not answer on port $REDIS_PORT"
  fi
}

solr_up() { curl -fsS -m 2 "http://127.0.0.1:$SOLR_PORT/solr/ckan/admin/ping" >/dev/null 2>&1; }
ensure_solr() {
  if solr_up && ! ours "$CK/solr.pid" solr_standin; then
    die "port $SOLR_PORT answers, but not with the Solr stand-in of $STACK (another checkout's stack?): stop it or set CKAN_SOLR_PORT"
  fi
  if ! solr_up; then
    say "starting the Solr stand-in (test infrastructure) on 127.0.0.1:$SOLR_PORT"
    spawn "$CK/solr.pid" "$LOG/solr.log" "$VENV/bin/python" "$ROOT/scripts/solr_standin.py" \
      --host 127.0.0.1 --port "$SOLR_PORT" --data "$CK/solr-index.json"
    local i
    for i in $(seq 1 50); do
      solr_up && return 0
      alive "$(pid_of "$CK/solr.pid")" || die "Solr stand-in died (see $LOG/solr.log)"
      sleep 0.1
    done
    die "Solr stand-in did not answer on port $SOLR_PORT"
  fi
}

settings() {
  cat <<EOF
sqlalchemy.url=postgresql://ckan_default:ckan_default@127.0.0.1:$PG_PORT/ckan_default
ckan.redis.url=redis://127.0.0.1:$REDIS_PORT/0
ckan.site_url=$URL
ckan.site_id=default
solr_url=http://127.0.0.1:$SOLR_PORT/solr/ckan
ckan.storage_path=$CK/storage
ckan.max_resource_size=$MAX_MB
ckan.plugins=activity scheming_datasets dcat ashyq datastore xloader datatables_view
scheming.dataset_schemas=file://$ROOT/config/ckan/ashyq_dataset.yaml
scheming.presets=ckanext.scheming:presets.json ckanext.ashyq:presets.json
ckan.locale_default=en
ckan.locales_offered=en ru kk
ckan.auth.create_unowned_dataset=false
ckan.datastore.write_url=postgresql://ckan_default:ckan_default@127.0.0.1:$PG_PORT/datastore_default
ckan.datastore.read_url=postgresql://datastore_default:datastore_default@127.0.0.1:$PG_PORT/datastore_default
ckanext.xloader.jobs_db.uri=sqlite:///$CK/xloader_jobs.db
ckanext.xloader.formats=csv
ckan.views.default_views=datatables_view
EOF
}

ensure_config() {
  mkdir -p "$CK/storage"
  if [[ ! -f "$INI" ]]; then
    say "generating $INI"
    "$VENV/bin/ckan" generate config "$INI" >>"$LOG/ckan-cli.log" 2>&1 || die "ckan generate config failed"
  fi
  local want have
  want="$( (settings; cat "$VENV/.ashyq-stamp" "$VENV/.ashyq-ext-stamp") | sha256sum | cut -c1-16)"
  have="$(cat "$CK/config.stamp" 2>/dev/null || true)"
  if [[ "$want" != "$have" ]]; then
    say "configuring CKAN and migrating its database"
    local args=()
    while IFS= read -r line; do args+=("$line"); done < <(settings)
    "$VENV/bin/ckan" config-tool "$INI" "${args[@]}" >>"$LOG/ckan-cli.log" 2>&1 || die "ckan config-tool failed (see $LOG/ckan-cli.log)"
    "$VENV/bin/ckan" -c "$INI" db upgrade >>"$LOG/ckan-cli.log" 2>&1 || die "ckan db upgrade failed (see $LOG/ckan-cli.log)"
    echo "$want" > "$CK/config.stamp"
    NEED_REINDEX=1  # plugins or schema may index differently now
  fi
}

NEED_REINDEX=0
ensure_index() {
  # The stand-in's index is a file: when it is gone (or the configuration changed) but CKAN has
  # datasets, rebuild it.
  if [[ ! -f "$CK/solr-index.json" || "$NEED_REINDEX" == 1 ]]; then
    local n
    n="$(psql_pg -d ckan_default -c "select count(*) from package where state='active'" 2>/dev/null || echo 0)"
    if [[ "$n" != 0 ]]; then
      say "rebuilding the search index ($n datasets)"
      "$VENV/bin/ckan" -c "$INI" search-index rebuild >>"$LOG/ckan-cli.log" 2>&1 || die "search-index rebuild failed"
    fi
  fi
}

ensure_sysadmin() {
  if [[ "$(psql_pg -d ckan_default -c "select 1 from \"user\" where name='$ADMIN' and sysadmin and state='active'")" != 1 ]]; then
    say "creating sysadmin $ADMIN"
    if [[ "$(psql_pg -d ckan_default -c "select 1 from \"user\" where name='$ADMIN'")" != 1 ]]; then
      "$VENV/bin/ckan" -c "$INI" user add "$ADMIN" email=admin@ashyq.invalid \
        password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')Aa1!" >>"$LOG/ckan-cli.log" 2>&1 \
        || die "ckan user add failed (see $LOG/ckan-cli.log)"
    fi
    "$VENV/bin/ckan" -c "$INI" sysadmin add "$ADMIN" >>"$LOG/ckan-cli.log" 2>&1 || die "ckan sysadmin add failed"
  fi
}

ckan_healthy() { curl -fsS -m 5 "$URL/api/3/action/status_show" 2>/dev/null | grep -q '"success": true'; }

ensure_web() {
  cat > "$CK/wsgi.py" <<'EOF'
"""WSGI entry point of the local (development/test) CKAN; CKAN_INI names its config."""
import os
from logging.config import fileConfig

from ckan.cli import CKANConfigLoader
from ckan.config.middleware import make_app

fileConfig(os.environ["CKAN_INI"])
application = make_app(CKANConfigLoader(os.environ["CKAN_INI"]).get_config())
EOF
  local stamp pid
  stamp="$(cat "$CK/config.stamp" "$ROOT/config/ckan/ashyq_dataset.yaml" | sha256sum | cut -c1-16)"
  pid="$(pid_of "$CK/gunicorn.pid")"
  if alive "$pid" && [[ "$(cat "$CK/gunicorn.stamp" 2>/dev/null || true)" != "$stamp" ]]; then
    say "configuration or schema changed: restarting CKAN"
    stop_pid "$CK/gunicorn.pid" gunicorn
  fi
  if ckan_healthy && ! ours "$CK/gunicorn.pid" gunicorn; then
    die "$URL answers, but not with the CKAN of $STACK (another checkout's stack?): stop it or set CKAN_PORT"
  fi
  if ckan_healthy; then return 0; fi
  if alive "$(pid_of "$CK/gunicorn.pid")"; then stop_pid "$CK/gunicorn.pid" gunicorn; fi
  # xloader creates its job tables lazily in each gunicorn worker: on a fresh database two
  # workers race ("table logs already exists", HTTP 500). Create them once, before the workers.
  "$VENV/bin/python" -c 'import sys; from ckanext.xloader import db; db.init({"ckanext.xloader.jobs_db.uri": sys.argv[1]})' \
    "sqlite:///$CK/xloader_jobs.db" >>"$LOG/ckan-cli.log" 2>&1 || die "could not create the xloader job tables"
  say "starting CKAN (gunicorn) on $URL"
  spawn "$CK/gunicorn.pid" "$LOG/gunicorn.log" env "CKAN_INI=$INI" "$VENV/bin/gunicorn" \
    --chdir "$CK" -b "127.0.0.1:$CKAN_PORT" -w 2 --threads 4 --timeout 120 wsgi:application
  echo "$stamp" > "$CK/gunicorn.stamp"
  local i
  for i in $(seq 1 300); do
    ckan_healthy && { say "CKAN is up"; return 0; }
    alive "$(pid_of "$CK/gunicorn.pid")" || die "CKAN exited while starting (see $LOG/gunicorn.log)"
    sleep 0.2
  done
  die "CKAN did not become healthy in 60 s (see $LOG/gunicorn.log)"
}

token_ok() {
  local tok="$1"
  [[ -n "$tok" ]] || return 1
  curl -fsS -m 10 -H "Authorization: $tok" -H 'Content-Type: application/json' \
    -d "{\"user_id\": \"$ADMIN\"}" "$URL/api/3/action/api_token_list" 2>/dev/null | grep -q '"success": true'
}

ensure_token() {
  local tok
  tok="$(cat "$CK/token.txt" 2>/dev/null || true)"
  if ! token_ok "$tok"; then
    say "creating an API token for $ADMIN"
    tok="$("$VENV/bin/ckan" -c "$INI" user token add "$ADMIN" ashyq-local -q 2>>"$LOG/ckan-cli.log" | tail -n 1 | tr -d '[:space:]')"
    token_ok "$tok" || die "the new API token does not authenticate (see $LOG/ckan-cli.log)"
    (umask 077 && printf '%s\n' "$tok" > "$CK/token.txt")
  fi
}

# --- DataStore + ckanext-xloader (CSV resources get a table preview through datatables_view) ---
# A database datastore_default owned by ckan_default (xloader writes), read by the role
# datastore_default (before CKAN's db upgrade, which connects to it); `ckan datastore
# set-permissions` run once by the superuser (after the configuration names both URLs).
ensure_datastore_db() {
  if [[ "$(psql_pg -d postgres -c "select 1 from pg_roles where rolname='datastore_default'")" != 1 ]]; then
    psql_pg -d postgres -c "create role datastore_default login password 'datastore_default'"
  fi
  if [[ "$(psql_pg -d postgres -c "select 1 from pg_database where datname='datastore_default'")" != 1 ]]; then
    psql_pg -d postgres -c "create database datastore_default owner ckan_default encoding 'UTF8' template template0"
    rm -f "$CK/datastore.stamp"
  fi
}
ensure_datastore_permissions() {
  if [[ ! -f "$CK/datastore.stamp" ]]; then
    say "setting the DataStore permissions"
    "$VENV/bin/ckan" -c "$INI" datastore set-permissions 2>>"$LOG/ckan-cli.log" \
      | psql_pg -d datastore_default >>"$LOG/ckan-cli.log" 2>&1 \
      || die "ckan datastore set-permissions failed (see $LOG/ckan-cli.log)"
    touch "$CK/datastore.stamp"
  fi
}

# The value of a key in ckan.ini ("key=value" or "key = value").
ini_value() {
  awk -v k="$1" '{i = index($0, "="); key = substr($0, 1, i - 1); gsub(/[ \t]/, "", key)}
    i && key == k {v = substr($0, i + 1); sub(/^[ \t]+/, "", v)} END {print v}' "$INI"
}

# xloader submits jobs with an API token from the config (ckanext.xloader.api_token: the
# sysadmin's, created after CKAN first starts, so CKAN restarts once to read it) and runs them
# in CKAN's background worker (`ckan jobs worker`, RQ on the stack's Redis).
ensure_xloader() {
  local tok stamp
  tok="$(cat "$CK/token.txt")"
  if [[ "$(ini_value ckanext.xloader.api_token)" != "$tok" ]]; then
    say "giving xloader its API token; restarting CKAN"
    "$VENV/bin/ckan" config-tool "$INI" "ckanext.xloader.api_token=$tok" >>"$LOG/ckan-cli.log" 2>&1 \
      || die "ckan config-tool failed (see $LOG/ckan-cli.log)"
    stop_pid "$CK/gunicorn.pid" gunicorn
    ensure_web
  fi
  stamp="$( (cat "$CK/gunicorn.stamp"; printf '%s' "$tok") | sha256sum | cut -c1-16)"
  if ours "$CK/worker.pid" "jobs worker" && [[ "$(cat "$CK/worker.stamp" 2>/dev/null || true)" != "$stamp" ]]; then
    stop_pid "$CK/worker.pid" "jobs worker"
  fi
  if ! ours "$CK/worker.pid" "jobs worker"; then
    say "starting CKAN's background worker (xloader jobs)"
    spawn "$CK/worker.pid" "$LOG/worker.log" env "CKAN_INI=$INI" "$VENV/bin/ckan" -c "$INI" jobs worker
    echo "$stamp" > "$CK/worker.stamp"
  fi
}
# --- end DataStore + ckanext-xloader ---

cmd_up() {
  mkdir -p "$CK" "$LOG"
  ensure_debian
  ensure_venv
  ensure_pg
  ensure_redis
  ensure_solr
  ensure_datastore_db
  ensure_config
  ensure_datastore_permissions
  ensure_index
  ensure_sysadmin
  ensure_web
  ensure_token
  ensure_xloader
  echo "export CKAN_URL=$URL"
  echo "export CKAN_API_TOKEN=$(cat "$CK/token.txt")"
}

cmd_down() {
  stop_pid "$CK/worker.pid" "jobs worker"
  stop_pid "$CK/gunicorn.pid" gunicorn
  stop_pid "$CK/solr.pid" solr_standin
  stop_pid "$CK/redis.pid" redis-server
  if [[ -f "$CK/pg.started-by-ckan-local" ]]; then
    ASHYQ_PG_PORT="$PG_PORT" ASHYQ_STACK_DIR="$STACK" "$ROOT/scripts/pg-local.sh" down 9>&-
    rm -f "$CK/pg.started-by-ckan-local"
    say "stopped PostgreSQL (it was started by ckan-local.sh up)"
  fi
}

cmd_status() {
  local name file
  for name in gunicorn worker solr redis; do
    file="$CK/$name.pid"
    if alive "$(pid_of "$file")"; then echo "$name: running (pid $(pid_of "$file"))"; else echo "$name: stopped"; fi
  done
  if ckan_healthy; then echo "ckan: healthy at $URL"; else echo "ckan: not answering at $URL"; fi
}

# Does a ckan-local.sh process (other than this one and its subshells) hold the lock file open?
lock_held_by_script() {
  local target pid fd ppid
  target="$(readlink -f "$CK/.lock")"
  for pid in $(pgrep -f "ckan-local.sh" || true); do
    [[ "$pid" == "$$" ]] && continue
    ppid="$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
    [[ "$ppid" == "$$" ]] && continue
    for fd in /proc/"$pid"/fd/*; do
      [[ "$(readlink "$fd" 2>/dev/null || true)" == "$target" ]] && return 0
    done
  done
  return 1
}

# One `up`/`down` at a time (the test hook and the test fixture may both call `up`). A lock held
# only by a daemon that inherited it (PostgreSQL started by an older version of this script)
# would never be released: that lock file is replaced rather than waited for.
lock() {
  mkdir -p "$CK"
  command -v flock >/dev/null || return 0
  exec 9>>"$CK/.lock"
  flock -n 9 && return 0
  if ! lock_held_by_script; then
    say "the lock is held by a daemon, not by another ckan-local.sh: replacing $CK/.lock"
    exec 9>&-
    rm -f "$CK/.lock"
    exec 9>>"$CK/.lock"
  fi
  flock -w 900 9 || die "another ckan-local.sh up/down has held $CK/.lock for 15 minutes"
}

case "${1:-}" in
  up) lock; cmd_up ;;
  down) lock; cmd_down ;;
  stop-web) stop_pid "$CK/gunicorn.pid" gunicorn ;;
  stop-solr) stop_pid "$CK/solr.pid" solr_standin ;;
  status) cmd_status ;;
  *) echo "usage: $0 up | down | stop-web | stop-solr | status" >&2; exit 2 ;;
esac

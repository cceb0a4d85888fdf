#!/usr/bin/env bash
# Local PostgreSQL + MariaDB servers, and an S3-compatible server (MinIO, scripts/s3-server.sh),
# for vecron's tests (and for .ci/run). Also installs openssh-server when missing: the sftp tests
# start their own sshd on a loopback port (test/helpers/sshd.ts).
#
#   eval "$(scripts/services.sh start)"   # install if missing, start all three, export the settings
#   scripts/services.sh stop              # stop all three (also cleans up stale pid files)
#   scripts/services.sh status            # show what is running
#   scripts/services.sh env               # print the export lines only
#   . scripts/services.sh start           # same as the eval form, from a sourced shell
#
# `start` prints only export lines on stdout, everything else goes to stderr:
#   export TEST_DATABASE_URL='postgres://vecron:vecron@127.0.0.1:55432/postgres'
#   export TEST_MYSQL_URL='mysql://vecron:vecron@127.0.0.1:53306/'
#   export TEST_S3_ENDPOINT='http://127.0.0.1:59000'   (and TEST_S3_BUCKET, TEST_S3_REGION,
#   TEST_S3_ACCESS_KEY, TEST_S3_SECRET_KEY: see scripts/s3-server.sh, which has its own settings
#   and, the first time on a machine, builds MinIO with `go install`: ~3 minutes)
#
# Both servers listen on 127.0.0.1 only, with throw-away data dirs (re-created on
# every fresh start, durability turned off for speed) under
# ${VECRON_SERVICES_DIR:-/tmp/vecron-services}. When run as root, PostgreSQL runs as
# the `postgres` user and MariaDB as `mysql` (both refuse, or should not, run as root).
# If a server from an earlier `start` is still running and answering, it is reused.
#
# Settings (environment): VECRON_SERVICES_DIR, VECRON_PG_PORT (55432),
# VECRON_MYSQL_PORT (53306), VECRON_DB_USER (vecron), VECRON_DB_PASSWORD (vecron),
# VECRON_SERVICES_WAIT (seconds to wait for each server, 60).

# --- sourced: run ourselves as a child process, export the URLs into the caller ---------
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  __vecron_services_self="${BASH_SOURCE[0]}"
  case "${1:-}" in
    start | env)
      __vecron_services_out="$(bash "$__vecron_services_self" "$1")" && eval "$__vecron_services_out"
      ;;
    "") : ;;
    *) bash "$__vecron_services_self" "$@" ;;
  esac
  unset __vecron_services_out __vecron_services_self
  return 0 2>/dev/null || true
fi

set -euo pipefail

STATE="${VECRON_SERVICES_DIR:-/tmp/vecron-services}"
PG_PORT="${VECRON_PG_PORT:-55432}"
MY_PORT="${VECRON_MYSQL_PORT:-53306}"
DB_USER="${VECRON_DB_USER:-vecron}"
DB_PASS="${VECRON_DB_PASSWORD:-vecron}"
WAIT="${VECRON_SERVICES_WAIT:-60}"
HOST=127.0.0.1
MODE="${1:-}"
S3_SCRIPT="$(dirname "${BASH_SOURCE[0]}")/s3-server.sh"

PG_DIR="$STATE/postgres"
MY_DIR="$STATE/mariadb"
MY_SOCK="$MY_DIR/run/mysqld.sock"
MY_PID="$MY_DIR/run/mysqld.pid"

PG_URL="postgres://$DB_USER:$DB_PASS@$HOST:$PG_PORT/postgres"
MY_URL="mysql://$DB_USER:$DB_PASS@$HOST:$MY_PORT/"

log() { printf '[services] %s\n' "$*" >&2; }
die() {
  printf '[services] ERROR: %s\n' "$*" >&2
  # For `eval "$(scripts/services.sh start)"`: make the eval itself fail too.
  [[ "$MODE" != start ]] || echo false
  exit 1
}
now_ms() { date +%s%3N; }
since() { echo "$(( ($(now_ms) - $1) ))ms"; }

IS_ROOT=0
[[ "$(id -u)" == 0 ]] && IS_ROOT=1

# Run a command as the service user when we are root; as ourselves otherwise.
as_user() {
  local user="$1"
  shift
  if ((IS_ROOT)); then
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

ensure_user() {
  ((IS_ROOT)) || return 0
  id -u "$1" >/dev/null 2>&1 && return 0
  log "creating system user $1"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$1"
}

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# True when $1 is a live (not zombie) process whose command line matches $2 (if given);
# guards against stale pid files whose pid now belongs to some other process.
pid_alive() {
  local pid="${1:-}" stat
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/stat" ]]; then
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]] || return 1
    [[ -z "${2:-}" ]] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
  fi
  return 0
}

# --- installation -------------------------------------------------------------------------
pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [[ -n "$d" && -x "$d/postgres" && -x "$d/initdb" && -x "$d/pg_ctl" ]] && echo "$d"
}

have_mariadb() {
  command -v mariadb >/dev/null && command -v mariadb-install-db >/dev/null &&
    { command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]]; }
}

install_missing() {
  local pkgs=()
  { [[ -n "$(pg_bindir)" ]] && command -v psql >/dev/null; } || pkgs+=(postgresql postgresql-client)
  have_mariadb || pkgs+=(mariadb-server mariadb-client)
  # The sftp step's tests start their own sshd (test/helpers/sshd.ts); it only has to be installed.
  { [[ -x /usr/sbin/sshd ]] && command -v ssh-keygen >/dev/null; } || pkgs+=(openssh-server openssh-client)
  ((${#pkgs[@]})) || return 0
  ((IS_ROOT)) || die "missing packages (${pkgs[*]}); install them with: sudo apt-get install ${pkgs[*]}"

  local t0 policy_created=0
  t0="$(now_ms)"
  # Keep the packages' maintainer scripts from starting servers on the default ports.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    policy_created=1
  fi
  log "installing ${pkgs[*]} (apt-get)"
  local rc=0
  {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq &&
      apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${pkgs[@]}"
  } >"$STATE/apt.log" 2>&1 || rc=$?
  ((policy_created)) && rm -f /usr/sbin/policy-rc.d
  if ((rc)); then
    tail -n 30 "$STATE/apt.log" >&2
    die "apt-get install ${pkgs[*]} failed (full log: $STATE/apt.log)"
  fi
  log "installed ${pkgs[*]} in $(since "$t0")"
  [[ -n "$(pg_bindir)" ]] || die "PostgreSQL binaries still missing after install"
  have_mariadb || die "MariaDB binaries still missing after install"
  [[ -x /usr/sbin/sshd ]] || die "sshd still missing after install"
}

# --- PostgreSQL ---------------------------------------------------------------------------
pg_pid() { [[ -f "$PG_DIR/data/postmaster.pid" ]] && head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true; }

pg_ready() { PGCONNECT_TIMEOUT=3 psql "$PG_URL" -X -q -At -c 'select 1' >/dev/null 2>&1; }

pg_start() {
  local bin t0 pid
  bin="$(pg_bindir)"
  t0="$(now_ms)"
  pid="$(pg_pid)"
  if pid_alive "$pid" postgres && pg_ready; then
    log "PostgreSQL already running (pid $pid) on $HOST:$PG_PORT, reusing it"
    return 0
  fi
  pg_stop quiet
  port_in_use "$PG_PORT" && die "port $HOST:$PG_PORT is already in use by another process (not ours: $PG_DIR); stop it or set VECRON_PG_PORT"

  local pg_user=postgres
  ((IS_ROOT)) || pg_user="$(id -un)"
  ensure_user "$pg_user"
  rm -rf "$PG_DIR"
  mkdir -p "$PG_DIR/data" "$PG_DIR/run"
  chmod 700 "$PG_DIR/data"
  printf '%s\n' "$DB_PASS" >"$PG_DIR/pwfile"
  ((IS_ROOT)) && chown -R "$pg_user:" "$PG_DIR"
  as_user "$pg_user" test -w "$PG_DIR/data" ||
    die "user $pg_user cannot write $PG_DIR/data (is a parent of $STATE closed to it?)"

  as_user "$pg_user" "$bin/initdb" -D "$PG_DIR/data" -U "$DB_USER" --pwfile="$PG_DIR/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync \
    >"$PG_DIR/initdb.log" 2>&1 || {
    cat "$PG_DIR/initdb.log" >&2
    die "initdb failed"
  }
  rm -f "$PG_DIR/pwfile"
  cat >>"$PG_DIR/data/postgresql.conf" <<EOF
# --- vecron test server ---
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_DIR/run'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
EOF
  as_user "$pg_user" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t "$WAIT" -s start >&2 || {
    tail -n 30 "$PG_DIR/postgres.log" >&2 || true
    die "PostgreSQL did not start (log: $PG_DIR/postgres.log)"
  }
  local i
  for ((i = 0; i < WAIT * 4; i++)); do
    pg_ready && break
    sleep 0.25
  done
  pg_ready || {
    tail -n 30 "$PG_DIR/postgres.log" >&2 || true
    die "PostgreSQL is not reachable at $PG_URL after ${WAIT}s (psql over TCP)"
  }
  log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') up on $HOST:$PG_PORT (pid $(pg_pid), user $pg_user) in $(since "$t0")"
}

pg_stop() {
  local quiet="${1:-}" pid bin
  pid="$(pg_pid)"
  if ! pid_alive "$pid" postgres; then
    [[ -n "$quiet" ]] || log "PostgreSQL not running"
    rm -f "$PG_DIR/data/postmaster.pid" 2>/dev/null || true
    return 0
  fi
  bin="$(pg_bindir)"
  local owner
  owner="$(stat -c %U "$PG_DIR/data")"
  if [[ -n "$bin" ]]; then
    as_user "$owner" "$bin/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 -s stop >&2 || true
  fi
  stop_pid "$pid" PostgreSQL
  log "PostgreSQL stopped"
}

# --- MariaDB ------------------------------------------------------------------------------
my_pid() { [[ -f "$MY_PID" ]] && cat "$MY_PID" 2>/dev/null || true; }

my_ready() {
  mariadb --no-defaults --connect-timeout=3 -h "$HOST" -P "$MY_PORT" --protocol=TCP \
    -u "$DB_USER" -p"$DB_PASS" -N -B -e 'select 1' >/dev/null 2>&1
}

my_root() { mariadb --no-defaults --connect-timeout=3 --protocol=SOCKET -S "$MY_SOCK" -u root "$@"; }

my_start() {
  local t0 pid mariadbd
  t0="$(now_ms)"
  pid="$(my_pid)"
  if pid_alive "$pid" mariadbd && my_ready; then
    log "MariaDB already running (pid $pid) on $HOST:$MY_PORT, reusing it"
    return 0
  fi
  my_stop quiet
  port_in_use "$MY_PORT" && die "port $HOST:$MY_PORT is already in use by another process (not ours: $MY_DIR); stop it or set VECRON_MYSQL_PORT"

  mariadbd="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
  local my_user=mysql user_opt=()
  if ((IS_ROOT)); then
    ensure_user mysql
    user_opt=(--user=mysql)
  else
    my_user="$(id -un)"
  fi
  rm -rf "$MY_DIR"
  mkdir -p "$MY_DIR/data" "$MY_DIR/run" "$MY_DIR/tmp"
  ((IS_ROOT)) && chown -R mysql: "$MY_DIR"

  mariadb-install-db --no-defaults --datadir="$MY_DIR/data" "${user_opt[@]}" \
    --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
    >"$MY_DIR/install-db.log" 2>&1 || {
    tail -n 30 "$MY_DIR/install-db.log" >&2
    die "mariadb-install-db failed (log: $MY_DIR/install-db.log)"
  }

  # setsid: own session, so the server outlives this script and ignores its signals.
  setsid "$mariadbd" --no-defaults "${user_opt[@]}" \
    --datadir="$MY_DIR/data" --tmpdir="$MY_DIR/tmp" \
    --port="$MY_PORT" --bind-address="$HOST" --socket="$MY_SOCK" --pid-file="$MY_PID" \
    --log-error="$MY_DIR/mariadb.log" --skip-name-resolve --max-connections=500 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=256M --innodb-log-file-size=64M \
    --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --sync-binlog=0 \
    </dev/null >>"$MY_DIR/mariadb.log" 2>&1 &
  local spid=$! i
  for ((i = 0; i < WAIT * 4; i++)); do
    [[ -S "$MY_SOCK" ]] && my_root -e 'select 1' >/dev/null 2>&1 && break
    if ! pid_alive "$spid" && ! pid_alive "$(my_pid)"; then break; fi
    sleep 0.25
  done
  my_root -e 'select 1' >/dev/null 2>&1 || {
    tail -n 30 "$MY_DIR/mariadb.log" >&2 || true
    die "MariaDB did not start within ${WAIT}s (log: $MY_DIR/mariadb.log)"
  }
  my_root <<SQL || die "could not create MariaDB user $DB_USER"
CREATE USER '$DB_USER'@'%' IDENTIFIED BY '$DB_PASS';
CREATE USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'localhost' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
  for ((i = 0; i < WAIT * 4; i++)); do
    my_ready && break
    sleep 0.25
  done
  my_ready || {
    tail -n 30 "$MY_DIR/mariadb.log" >&2 || true
    die "MariaDB is not reachable at $MY_URL after ${WAIT}s (mariadb client over TCP)"
  }
  log "MariaDB $(my_root -N -B -e 'select version()') up on $HOST:$MY_PORT (pid $(my_pid), user $my_user) in $(since "$t0")"
}

my_stop() {
  local quiet="${1:-}" pid
  pid="$(my_pid)"
  if ! pid_alive "$pid" mariadbd; then
    [[ -n "$quiet" ]] || log "MariaDB not running"
    rm -f "$MY_PID" "$MY_SOCK" 2>/dev/null || true
    return 0
  fi
  mariadb-admin --no-defaults --connect-timeout=3 -S "$MY_SOCK" -u root shutdown >/dev/null 2>&1 || true
  stop_pid "$pid" MariaDB
  rm -f "$MY_PID" "$MY_SOCK" 2>/dev/null || true
  log "MariaDB stopped"
}

# Wait for a pid to exit: up to 30s, then SIGTERM, then SIGKILL.
stop_pid() {
  local pid="$1" name="$2" i
  for ((i = 0; i < 120; i++)); do
    pid_alive "$pid" || return 0
    ((i == 40)) && kill -TERM "$pid" 2>/dev/null
    sleep 0.25
  done
  log "$name (pid $pid) did not stop, killing it"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
}

print_env() {
  printf "export TEST_DATABASE_URL='%s'\n" "$PG_URL"
  printf "export TEST_MYSQL_URL='%s'\n" "$MY_URL"
  bash "$S3_SCRIPT" env
}

s3_start() {
  local out
  out="$(bash "$S3_SCRIPT" start)" && [[ "$out" == *TEST_S3_ENDPOINT=* ]] ||
    die "the S3 server (MinIO) did not start (see the [s3] messages above)"
}

status() {
  local pid
  pid="$(pg_pid)"
  if pid_alive "$pid" postgres && pg_ready; then echo "postgres: running (pid $pid) $PG_URL"; else echo "postgres: not running"; fi
  pid="$(my_pid)"
  if pid_alive "$pid" mariadbd && my_ready; then echo "mariadb:  running (pid $pid) $MY_URL"; else echo "mariadb:  not running"; fi
  bash "$S3_SCRIPT" status
}

case "${1:-}" in
  start)
    mkdir -p "$STATE"
    chmod 755 "$STATE"
    install_missing
    pg_start
    my_start
    s3_start
    print_env
    ;;
  stop)
    [[ -d "$STATE" ]] || {
      log "nothing to stop ($STATE does not exist)"
      exit 0
    }
    pg_stop
    my_stop
    bash "$S3_SCRIPT" stop
    ;;
  restart)
    "$0" stop
    exec "$0" start
    ;;
  status) status ;;
  env) print_env ;;
  *)
    echo "usage: $0 start|stop|restart|status|env   (eval \"\$($0 start)\")" >&2
    exit 2
    ;;
esac

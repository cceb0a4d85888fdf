#!/usr/bin/env bash
# A local S3-compatible server (MinIO) for vecron's tests (and for .ci/run, through services.sh).
#
#   eval "$(scripts/s3-server.sh start)"   # build MinIO if missing, start it, create the bucket, export the settings
#   scripts/s3-server.sh stop              # stop it (also cleans up a stale pid file)
#   scripts/s3-server.sh status            # show whether it is running
#   scripts/s3-server.sh env               # print the export lines only
#   scripts/s3-server.sh install           # only build MinIO (if missing); prints the binary's path
#   scripts/s3-server.sh bin               # print the binary's path if it is built (exit 1 if not)
#
# `start` prints exactly these lines on stdout, everything else goes to stderr:
#   export TEST_S3_ENDPOINT='http://127.0.0.1:59000'
#   export TEST_S3_BUCKET='vecron-test'
#   export TEST_S3_REGION='us-east-1'
#   export TEST_S3_ACCESS_KEY='vecron'
#   export TEST_S3_SECRET_KEY='vecron-secret'
# (the tests make a fresh bucket per suite with these keys; TEST_S3_BUCKET is there for hand use:
# VECRON_S3_BUCKET=$TEST_S3_BUCKET VECRON_S3_ENDPOINT=$TEST_S3_ENDPOINT ... npx vecron start).
#
# MinIO is built from source with `go install` from the Go module proxy (no download site is needed)
# at the version pinned below, once per machine, into ${VECRON_CACHE_DIR:-~/.cache/vecron}/minio/<version>/;
# later runs reuse that binary. The first build takes a few minutes and ~2 GB of Go module cache.
# The server listens on 127.0.0.1 only, single drive, with a throw-away data dir (wiped on every fresh
# start and on stop): /dev/shm/vecron-minio-<port> when /dev/shm is writable, else VECRON_MINIO_DATA or
# ${VECRON_SERVICES_DIR:-/tmp/vecron-services}/minio/data; its log and pid file are in .../minio. A server from an earlier `start`
# that is still running and answering is reused.
#
# Settings (environment): VECRON_SERVICES_DIR, VECRON_CACHE_DIR, VECRON_MINIO_PORT (59000),
# VECRON_MINIO_CONSOLE_PORT (59001), VECRON_MINIO_DATA, VECRON_MINIO_USER (vecron), VECRON_MINIO_PASSWORD
# (vecron-secret, 8+ characters), VECRON_MINIO_BUCKET (vecron-test), VECRON_SERVICES_WAIT (60).

# --- sourced: run ourselves as a child process, export the settings into the caller ---------
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  __vecron_s3_self="${BASH_SOURCE[0]}"
  case "${1:-}" in
    start | env)
      __vecron_s3_out="$(bash "$__vecron_s3_self" "$1")" && eval "$__vecron_s3_out"
      ;;
    "") : ;;
    *) bash "$__vecron_s3_self" "$@" ;;
  esac
  unset __vecron_s3_out __vecron_s3_self
  return 0 2>/dev/null || true
fi

set -euo pipefail

# github.com/minio/minio has no tagged Go module versions; this is the newest commit the Go module
# proxy serves (2026-02-12, `go list -m github.com/minio/minio@latest`).
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

STATE="${VECRON_SERVICES_DIR:-/tmp/vecron-services}"
CACHE="${VECRON_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vecron}"
PORT="${VECRON_MINIO_PORT:-59000}"
CONSOLE_PORT="${VECRON_MINIO_CONSOLE_PORT:-59001}"
S3_USER="${VECRON_MINIO_USER:-vecron}"
S3_PASS="${VECRON_MINIO_PASSWORD:-vecron-secret}"
BUCKET="${VECRON_MINIO_BUCKET:-vecron-test}"
REGION=us-east-1
WAIT="${VECRON_SERVICES_WAIT:-60}"
HOST=127.0.0.1
MODE="${1:-}"

BIN_DIR="$CACHE/minio/$MINIO_VERSION"
BIN="$BIN_DIR/minio"
DIR="$STATE/minio"
PID_FILE="$DIR/minio.pid"
# Objects go to tmpfs when there is one: MinIO syncs every write, which costs ~20 ms a PUT on disk here
# and ~5 ms on /dev/shm.
if [[ -z "${VECRON_MINIO_DATA:-}" && -d /dev/shm && -w /dev/shm ]]; then
  DATA="/dev/shm/vecron-minio-$PORT"
else
  DATA="${VECRON_MINIO_DATA:-$DIR/data}"
fi
ENDPOINT="http://$HOST:$PORT"

log() { printf '[s3] %s\n' "$*" >&2; }
die() {
  printf '[s3] ERROR: %s\n' "$*" >&2
  # For `eval "$(scripts/s3-server.sh start)"`: make the eval itself fail too.
  [[ "$MODE" != start ]] || echo false
  exit 1
}
now_ms() { date +%s%3N; }
since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1fs", (b - a) / 1000 }'; }

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

pid_alive() {
  local pid="${1:-}" stat
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/stat" ]]; then
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "minio server" || return 1
  fi
  return 0
}

# --- installation -------------------------------------------------------------------------
install_minio() {
  [[ -x "$BIN" ]] && return 0
  command -v go >/dev/null || die "go is not installed: MinIO is built with 'go install' (Go >= 1.24)"
  mkdir -p "$BIN_DIR"
  local t0 tmp rc=0
  t0="$(now_ms)"
  tmp="$(mktemp -d "$BIN_DIR/build.XXXXXX")"
  log "building MinIO $MINIO_VERSION with go install (once per machine; a few minutes), log: $BIN_DIR/build.log"
  # -trimpath -s -w: a smaller binary; CGO off: no C toolchain needed.
  GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod \
    go install -trimpath -ldflags '-s -w' "$MINIO_MODULE@$MINIO_VERSION" >"$BIN_DIR/build.log" 2>&1 || rc=$?
  if ((rc)) || [[ ! -x "$tmp/minio" ]]; then
    rm -rf "$tmp"
    tail -n 30 "$BIN_DIR/build.log" >&2
    die "go install $MINIO_MODULE@$MINIO_VERSION failed (log: $BIN_DIR/build.log)"
  fi
  mv -f "$tmp/minio" "$BIN" # atomic: a concurrent reader never sees half a binary
  rm -rf "$tmp"
  log "built MinIO in $(since "$t0"): $BIN ($(du -h "$BIN" | cut -f1))"
}

# --- server -------------------------------------------------------------------------------
server_pid() { [[ -f "$PID_FILE" ]] && cat "$PID_FILE" 2>/dev/null || true; }

ready() { curl -fsS -o /dev/null --max-time 3 "$ENDPOINT/minio/health/ready" 2>/dev/null; }

# A signed S3 request (curl's own AWS SigV4): s3 METHOD PATH [curl options...]
s3() {
  local method="$1" path="$2"
  shift 2
  curl -sS --max-time 10 --aws-sigv4 "aws:amz:$REGION:s3" --user "$S3_USER:$S3_PASS" -X "$method" "$@" "$ENDPOINT$path"
}

start_server() {
  local t0 pid
  t0="$(now_ms)"
  pid="$(server_pid)"
  if pid_alive "$pid" && ready; then
    log "MinIO already running (pid $pid) on $HOST:$PORT, reusing it"
    ensure_bucket
    return 0
  fi
  stop_server quiet
  port_in_use "$PORT" && die "port $HOST:$PORT is already in use by another process (not ours: $DIR); stop it or set VECRON_MINIO_PORT"
  port_in_use "$CONSOLE_PORT" && die "port $HOST:$CONSOLE_PORT is already in use; set VECRON_MINIO_CONSOLE_PORT"
  ((${#S3_PASS} >= 8)) || die "VECRON_MINIO_PASSWORD must have 8 characters or more (MinIO refuses shorter ones)"

  rm -rf "$DIR" "$DATA"
  mkdir -p "$DIR" "$DATA"
  # setsid: own session, so the server outlives this script and ignores its signals.
  MINIO_ROOT_USER="$S3_USER" MINIO_ROOT_PASSWORD="$S3_PASS" MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=1 \
    setsid "$BIN" server --quiet --address "$HOST:$PORT" --console-address "$HOST:$CONSOLE_PORT" "$DATA" \
    </dev/null >>"$DIR/minio.log" 2>&1 &
  local spid=$! i
  echo "$spid" >"$PID_FILE"
  for ((i = 0; i < WAIT * 4; i++)); do
    ready && break
    pid_alive "$spid" || break
    sleep 0.25
  done
  ready || {
    tail -n 30 "$DIR/minio.log" >&2 || true
    die "MinIO is not reachable at $ENDPOINT after ${WAIT}s (log: $DIR/minio.log)"
  }
  ensure_bucket
  log "MinIO $MINIO_VERSION up on $HOST:$PORT (pid $spid) in $(since "$t0")"
}

ensure_bucket() {
  local code
  code="$(s3 HEAD "/$BUCKET" -o /dev/null -w '%{http_code}' || true)"
  [[ "$code" == 200 ]] && return 0
  code="$(s3 PUT "/$BUCKET" -o "$DIR/create-bucket.out" -w '%{http_code}' || true)"
  [[ "$code" == 200 ]] || {
    cat "$DIR/create-bucket.out" >&2 2>/dev/null || true
    die "could not create bucket $BUCKET (HTTP $code)"
  }
  # Prove the keys work end to end: put, get, delete one object.
  # (curl 7.88 signs no payload hash of its own for a body: give it one)
  s3 PUT "/$BUCKET/.vecron-probe" --data-binary ok -o /dev/null -f \
    -H "x-amz-content-sha256: $(printf ok | sha256sum | cut -d' ' -f1)" ||
    die "could not write to bucket $BUCKET"
  [[ "$(s3 GET "/$BUCKET/.vecron-probe" -f)" == ok ]] || die "could not read back from bucket $BUCKET"
  s3 DELETE "/$BUCKET/.vecron-probe" -o /dev/null -f || die "could not delete from bucket $BUCKET"
}

stop_server() {
  local quiet="${1:-}" pid i
  pid="$(server_pid)"
  if ! pid_alive "$pid"; then
    [[ -n "$quiet" ]] || log "MinIO not running"
    rm -f "$PID_FILE" 2>/dev/null || true
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 80; i++)); do
    pid_alive "$pid" || break
    sleep 0.25
  done
  if pid_alive "$pid"; then
    log "MinIO (pid $pid) did not stop, killing it"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$PID_FILE"
  rm -rf "$DATA"
  log "MinIO stopped"
}

print_env() {
  printf "export TEST_S3_ENDPOINT='%s'\n" "$ENDPOINT"
  printf "export TEST_S3_BUCKET='%s'\n" "$BUCKET"
  printf "export TEST_S3_REGION='%s'\n" "$REGION"
  printf "export TEST_S3_ACCESS_KEY='%s'\n" "$S3_USER"
  printf "export TEST_S3_SECRET_KEY='%s'\n" "$S3_PASS"
}

case "${1:-}" in
  start)
    command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
    mkdir -p "$STATE"
    install_minio
    start_server
    print_env
    ;;
  stop)
    [[ -d "$DIR" ]] || {
      log "nothing to stop ($DIR does not exist)"
      exit 0
    }
    stop_server
    ;;
  restart)
    "$0" stop
    exec "$0" start
    ;;
  install)
    install_minio
    echo "$BIN"
    ;;
  bin)
    [[ -x "$BIN" ]] || exit 1
    echo "$BIN"
    ;;
  status)
    pid="$(server_pid)"
    if pid_alive "$pid" && ready; then echo "minio:    running (pid $pid) $ENDPOINT bucket $BUCKET"; else echo "minio:    not running"; fi
    ;;
  env) print_env ;;
  *)
    echo "usage: $0 start|stop|restart|status|env|install|bin   (eval \"\$($0 start)\")" >&2
    exit 2
    ;;
esac

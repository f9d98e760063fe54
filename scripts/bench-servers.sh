#!/usr/bin/env bash
# Throughput and CPU per request of one single-worker replica of each server, next to a
# bare actix-web handler doing the same auth work (bench-baseline), all on loopback.
#
#   scripts/bench-servers.sh [DURATION] [CONNECTIONS] [ROUNDS]    (defaults: 5s 32 3)
#
# Each target runs ROUNDS times, the targets interleaved, and the median round is reported:
# a shared machine's noise then hits every target alike instead of whichever ran last.
#
# Needs: redis-server, wrk, curl (Debian: apt-get install -y redis-server wrk curl).
# The server under test is pinned to CPU 0 and wrk to CPU 1 (when there are two), so the
# load generator does not steal the server's core. Prints a table; changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-5s}
CONNECTIONS=${2:-32}
ROUNDS=${3:-3}
for tool in redis-server wrk curl; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (Debian: apt-get install -y $tool)" >&2; exit 1; }
done

cargo build --release -q -p session-server -p token-server -p bench-baseline
BIN=target/release
TICK=$(getconf CLK_TCK)
SERVER_CPU=0
LOAD_CPU=$(( $(nproc) > 1 ? 1 : 0 ))
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  local p
  while :; do
    p=$(( 20000 + RANDOM % 20000 ))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
  done
}

wait_http() { # url
  for _ in $(seq 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "no answer from $1" >&2; exit 1
}

cpu_ticks() { # pid -> utime+stime
  awk '{print $14 + $15}' "/proc/$1/stat"
}

REDIS_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$work" >/dev/null &
REDIS_PID=$!; pids+=("$REDIS_PID")
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

start() { # name port cmd...
  local name=$1 port=$2; shift 2
  env LISTEN_ADDR="127.0.0.1:$port" REDIS_URL="$REDIS_URL" WORKERS=1 RUST_LOG=warn \
    COOKIE_SECURE=false SESSION_KEY="$(head -c 48 /dev/urandom | base64 -w0)xxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
    JWT_SECRET="$(head -c 32 /dev/urandom | base64 -w0)" \
    taskset -c "$SERVER_CPU" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  eval "${name}_PID=$!"
  wait_http "http://127.0.0.1:$port/${3:-healthz}"
}

TOKEN_PORT=$(free_port); start token "$TOKEN_PORT" "$BIN/token-server"
SESSION_PORT=$(free_port); start session "$SESSION_PORT" "$BIN/session-server"
JWT_PORT=$(free_port)
LISTEN_ADDR="127.0.0.1:$JWT_PORT" WORKERS=1 taskset -c "$SERVER_CPU" "$BIN/bench-baseline" jwt >"$work/jwt.log" 2>&1 &
JWT_PID=$!; pids+=("$JWT_PID")
BSESS_PORT=$(free_port)
LISTEN_ADDR="127.0.0.1:$BSESS_PORT" REDIS_URL="$REDIS_URL" WORKERS=1 taskset -c "$SERVER_CPU" "$BIN/bench-baseline" session >"$work/bsess.log" 2>&1 &
BSESS_PID=$!; pids+=("$BSESS_PID")
for p in "$JWT_PORT" "$BSESS_PORT"; do
  for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$p/me" && break; sleep 0.05; done
done

creds='{"username":"bench","password":"bench-password"}'
curl -fsS -o /dev/null -H 'Content-Type: application/json' -d "$creds" "http://127.0.0.1:$TOKEN_PORT/auth/signup"
ACCESS=$(curl -fsS -H 'Content-Type: application/json' -d "$creds" "http://127.0.0.1:$TOKEN_PORT/auth/login" \
  | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
COOKIE=$(curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' -d "$creds" \
  "http://127.0.0.1:$SESSION_PORT/auth/login" | tr -d '\r' | sed -nE 's/^[Ss]et-[Cc]ookie: (sid=[^;]+).*/\1/p')
BASE_ACCESS=$(curl -fsS -X POST "http://127.0.0.1:$JWT_PORT/login" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
BASE_COOKIE=$(curl -fsS -D - -o /dev/null -X POST "http://127.0.0.1:$BSESS_PORT/login" | tr -d '\r' \
  | sed -nE 's/^[Ss]et-[Cc]ookie: (id=[^;]+).*/\1/p')
[[ -n $ACCESS && -n $COOKIE && -n $BASE_ACCESS && -n $BASE_COOKIE ]] || { echo "could not log in" >&2; exit 1; }

declare -A RPS CPU RCPU
measure() { # label pid url [header]: one round, appended to the label's lists
  local label=$1 pid=$2 url=$3 header=${4:-X-None: 1}
  local s0 r0 s1 r1 out reqs
  s0=$(cpu_ticks "$pid"); r0=$(cpu_ticks "$REDIS_PID")
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "$header" "$url")
  s1=$(cpu_ticks "$pid"); r1=$(cpu_ticks "$REDIS_PID")
  if grep -q 'Non-2xx' <<<"$out"; then echo "$label: non-2xx answers:" >&2; echo "$out" >&2; exit 1; fi
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  RPS[$label]+="$(awk '/Requests\/sec/ {print $2}' <<<"$out") "
  CPU[$label]+="$(awk -v s=$((s1 - s0)) -v n="$reqs" -v t="$TICK" 'BEGIN {print s * 1e6 / t / n}') "
  RCPU[$label]+="$(awk -v s=$((r1 - r0)) -v n="$reqs" -v t="$TICK" 'BEGIN {print s * 1e6 / t / n}') "
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

labels=("token-server /api/public" "token-server /api/me" "bare actix + jsonwebtoken decode"
        "session-server /api/public" "session-server /api/me" "bare actix + actix-session redis")
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS ..." >&2
  measure "${labels[0]}" "$token_PID" "http://127.0.0.1:$TOKEN_PORT/api/public"
  measure "${labels[1]}" "$token_PID" "http://127.0.0.1:$TOKEN_PORT/api/me" "Authorization: Bearer $ACCESS"
  measure "${labels[2]}" "$JWT_PID" "http://127.0.0.1:$JWT_PORT/me" "Authorization: Bearer $BASE_ACCESS"
  measure "${labels[3]}" "$session_PID" "http://127.0.0.1:$SESSION_PORT/api/public"
  measure "${labels[4]}" "$session_PID" "http://127.0.0.1:$SESSION_PORT/api/me" "Cookie: $COOKIE"
  measure "${labels[5]}" "$BSESS_PID" "http://127.0.0.1:$BSESS_PORT/me" "Cookie: $BASE_COOKIE"
done

printf '%-34s %10s %13s %12s\n' "median of $ROUNDS x $DURATION, $CONNECTIONS conns" "req/s" "server us/req" "redis us/req"
declare -A MED
for l in "${labels[@]}"; do
  MED[$l]=$(median <<<"${RPS[$l]}")
  printf '%-34s %10.0f %13.1f %12.1f\n' "$l" "${MED[$l]}" "$(median <<<"${CPU[$l]}")" "$(median <<<"${RCPU[$l]}")"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
echo
echo "token /api/me vs bare jsonwebtoken handler:   $(ratio "${MED[${labels[1]}]}" "${MED[${labels[2]}]}")  (goal >= 90%)"
echo "session /api/me vs bare actix-session handler: $(ratio "${MED[${labels[4]}]}" "${MED[${labels[5]}]}")  (goal >= 90%)"
echo "token /api/me vs token /api/public:           $(ratio "${MED[${labels[1]}]}" "${MED[${labels[0]}]}")  (goal >= 80%)"
echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), kernel $(uname -r)"

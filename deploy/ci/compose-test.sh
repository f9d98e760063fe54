#!/usr/bin/env bash
# The compose test: docker-compose.yml run for real on this machine's Docker Engine.
#
# Substituted (no registry can be reached): the base images, built from Debian's packages
# by stand-in-images.sh, and the application image, built by Dockerfile.prebuilt from
# binaries compiled on the host (both by app-image.sh; PROFILE=debug reuses the test build;
# default release).
# Unchanged: docker-compose.yml, deploy/nginx/nginx.conf, the service wiring, the health
# checks and the application binaries.
#
# Steps: up with 2 replicas per server, wait for health, `loadtest run --quick` through the
# balancers (the compose file's own loadtest service), check the report, its closing line and
# that both replicas of each server answered; `loadtest compare --via compose` over 1 and 2
# replicas from the host; the whole lesson from inside the stack (`docker compose run --rm
# compare ... --quick`: calibration, sweep, experiments, probes, the browser, 18 verdicts); stop one
# token-server replica and check requests still succeed; `down -v`, check that nothing is left.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILE=${PROFILE:-release}
started=$(date +%s)
step() { echo "compose test [$(($(date +%s) - started)) s]: $*"; }

if ! docker info >/dev/null 2>&1; then
  echo "compose test: SKIPPED: no Docker Engine answers (docker info failed)"
  exit 0
fi
if docker compose version >/dev/null 2>&1; then compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then compose=(docker-compose)
else echo "compose test: FAILED: Docker Engine answers but there is no docker compose / docker-compose"; exit 1
fi

work=$(mktemp -d)
export COMPOSE_PROJECT_NAME=svt-ci-$$
# Set before anything is made: a failure at any step leaves nothing behind.
cleanup() {
  "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  # Earlier application images that this build's tag replaced.
  docker image prune -f --filter label=svt.stand-in >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step "stand-in base images, application image ($PROFILE)"
PROFILE=$PROFILE bash deploy/ci/app-image.sh

# The settings a user would put in .env.
export REPLICAS=2 REPLICA_CPUS=0.5 LOADTEST_ARGS=--quick
export LOADTEST_UID=$(id -u) LOADTEST_GID=$(id -g)
# Published ports that nothing else on this machine uses.
. deploy/ci/free-ports.sh
read -r SESSION_PORT TOKEN_PORT REDIS_PORT < <(free_ports 3)
export SESSION_PORT TOKEN_PORT REDIS_PORT
mkdir -p reports

healthy() {
  local ids; ids=$("${compose[@]}" ps -q "$@")
  [ -n "$ids" ] || return 1
  ! docker inspect -f '{{.State.Health.Status}}' $ids | grep -qv '^healthy$'
}
wait_healthy() {
  for _ in $(seq 240); do healthy "$@" && return 0; sleep 0.5; done
  "${compose[@]}" ps; "${compose[@]}" logs --tail 30
  echo "compose test: FAILED: not healthy after 120 s: $*"; return 1
}

step "up --exit-code-from loadtest: everything, 2 replicas each, loadtest --quick once all is healthy"
# What a user runs (less --build): the health checks and depends_on order the start.
"${compose[@]}" up --no-build --no-color --exit-code-from loadtest 2>&1 | tee "$work/up.log"
said=$(grep -E '^[^ ]*loadtest[-_]1 +\| ' "$work/up.log" | sed 's/^[^|]*| //')
report=$(printf '%s\n' "$said" | sed -n 's/^report: //p' | tail -n 1)
[ -n "$report" ] || { echo "compose test: FAILED: loadtest printed no 'report: ...' line"; exit 1; }
# Its closing line names the command that gives the whole report.
last=$(printf '%s\n' "$said" | tail -n 1)
case "$last" in *"docker compose run --rm compare"*) ;;
  *) echo "compose test: FAILED: loadtest's closing line does not name the whole-report command: $last"; exit 1 ;;
esac
[ -s "$report" ] || { echo "compose test: FAILED: $report is not on the host"; exit 1; }
results=$(dirname "$report")/results.json
python3 - "$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
runs = r["runs"]
seen = {(x["server"], x["scenario"]) for x in runs}
want = {("session", s) for s in ("read", "login", "refresh")} | {("token", s) for s in ("read", "login", "refresh")} | {("public", "public")}
assert seen == want, f"runs: {sorted(seen)}"
for x in runs:
    per = x["requests_per_replica"]
    assert len(per) == 2 and all(n > 0 for n in per), f"{x['server']} {x['scenario']}: requests per replica {per}"
    assert x["requests"] > 0 and x["errors"] == 0, f"{x['server']} {x['scenario']}: {x['requests']} requests, {x['errors']} failed"
    print(f"compose test:   {x['server']:>7} {x['scenario']:<8} {x['requests']:>6} requests, per replica {per}, 0 failed")
PY

step "up -d again (up --exit-code-from stopped everything), wait for health"
"${compose[@]}" up -d --no-build redis session-server token-server balancer
wait_healthy redis session-server token-server balancer
[ "$("${compose[@]}" ps -q session-server | wc -l)" = 2 ] && [ "$("${compose[@]}" ps -q token-server | wc -l)" = 2 ] \
  || { echo "compose test: FAILED: not 2 replicas each"; "${compose[@]}" ps; exit 1; }

step "loadtest compare --via compose from the host, 1 then 2 replicas, the compose limit"
# No budget of its own (`none`): each replica keeps the compose file's limit, REPLICA_CPUS.
"target/$PROFILE/loadtest" compare --via compose --quick --replicas 1,2 --servers session,token \
  --scenarios read --no-experiments --cpus-per-replica none --out "$work/sweep" >"$work/sweep.log" 2>&1 \
  || { cat "$work/sweep.log"; exit 1; }
python3 - "$work/sweep/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
got = sorted((x["server"], x["replicas"], len(x["requests_per_replica"]), min(x["requests_per_replica"])) for x in r["runs"])
assert [(s, n, k) for s, n, k, _ in got] == [("session", 1, 1), ("session", 2, 2), ("token", 1, 1), ("token", 2, 2)], got
assert all(m > 0 for *_, m in got), got
assert all(x["errors"] == 0 and x["cpu_cores_used"]["replicas"] > 0 for x in r["runs"]), "errors, or no replica CPU seen"
# REPLICA_CPUS=0.5 reached each container as its CPU limit, and the results say so.
assert all(x["cpus_per_replica"] == 0.5 for x in r["runs"]), [x["cpus_per_replica"] for x in r["runs"]]
print("compose test:   sweep runs (server, replicas, replicas answering, fewest requests):", got)
PY
[ -s "$work/sweep/report.html" ] || { echo "compose test: FAILED: the sweep wrote no report"; exit 1; }

step "docker compose run --rm compare --quick: the whole lesson from inside the stack, through the Engine's socket"
# What a student with Docker alone runs (less the defaults' replica counts): the calibrated
# sweep, every default experiment that runs in containers, the probes and the report.
"${compose[@]}" run --rm compare loadtest compare --via compose --quick --replicas 1,2 \
  --out reports/ci-inside >"$work/inside.log" 2>&1 || { cat "$work/inside.log"; exit 1; }
python3 - reports/ci-inside "$(id -u)" <<'PY'
import json, os, re, sys
out = sys.argv[1]
r = json.load(open(os.path.join(out, "results.json")))
env = r["environment"]
assert env["mode"] == "compose", env["mode"]
assert "from inside project" in env["config"]["via"], env["config"]["via"]
assert env["config"]["engine"].startswith("Docker Engine "), env["config"]["engine"]
budget = r["calibration"]["cpus_per_replica"]
print(f"compose test:   inside: calibrated {budget} CPU per replica; {env['config']['engine']}")
sweep = [x for x in r["runs"] if not x.get("experiment")]
got = sorted({(x["server"], x["replicas"]) for x in sweep})
assert got == [("public", 1), ("public", 2), ("session", 1), ("session", 2), ("token", 1), ("token", 2)], got
for x in sweep:
    cores = x["cpu_cores_used"]
    # Seen from inside a container: every component's CPU, from the Engine's counters.
    assert all((cores[k] or 0) > 0 for k in ("replicas", "redis", "lb", "loadgen")), (x["server"], cores)
    assert x["errors"] == 0 and min(x["requests_per_replica"]) > 0, x["requests_per_replica"]
    # The calibrated budget reached the containers: with room for a --quick window's edges
    # (2 s of 100 ms quota periods; 1.21x seen once on 2 CPUs) and the health checks' curl.
    assert x["cpus_per_replica"] == budget and cores["replicas"] <= budget * x["replicas"] * 1.5, (budget, cores)
print(f"compose test:   inside: {len(sweep)} sweep runs, CPU of replicas, Redis, nginx and load generator seen in each")
def runs(experiment):
    found = [x for x in r["runs"] if x.get("experiment") == experiment]
    assert found, f"no run of experiment {experiment}: {env.get('notes')}"
    return found
# The faults happened, at the times recorded when they were injected.
for experiment, kind in (("redis-outage", "freeze-redis"), ("replica-loss", "kill-replica")):
    for x in runs(experiment):
        f = x.get("fault")
        assert f and f["kind"] == kind and f["at_s"] > 0, (experiment, x["server"], f)
        assert kind != "freeze-redis" or f["lasts_s"] > 0, f
    print(f"compose test:   inside: {experiment}: {kind} at {[round(x['fault']['at_s'], 2) for x in runs(experiment)]} s")
for experiment in ("shared-store", "store-bound", "revocation", "signing", "access-token-lifetime", "latency-curve"):
    runs(experiment)
for probe in ("token_anatomy", "revocation", "authority", "server_memory"):
    assert r.get(probe), f"probe {probe} measured nothing: {env.get('notes')}"
# Every claim answered, the browser's too: the compare service's image has Chromium.
md = open(os.path.join(out, "report.md")).read()
rows = re.findall(r"^\| ([STJ]\d+) \| .*? \| \*\*(.+?)\*\* \| (.*?) \|", md, re.M)
assert len(rows) == 18, rows
unanswered = [(c, why) for c, label, why in rows if label == "not measurable here"]
assert not unanswered, f"claims without a verdict: {unanswered}; notes: {env.get('notes')}"
study = r.get("browser")
assert study and study["cases"], f"no browser study: {env.get('notes')}"
print(f"compose test:   inside: 18 of 18 claims answered; the browser experiment ran {len(study['cases'])} cases in {study['browser']}")
# Root inside the container; what it wrote belongs to the owner of ./reports.
assert os.stat(out).st_uid == os.stat("reports").st_uid
PY
[ "$("${compose[@]}" ps -q session-server | wc -l)" = 2 ] && [ "$("${compose[@]}" ps -q token-server | wc -l)" = 2 ] \
  || { echo "compose test: FAILED: compare did not leave 2 replicas each as found"; "${compose[@]}" ps; exit 1; }
probes=$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" --filter "label=com.docker.compose.service=token-server-probe")
probes+=$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" --filter "label=com.docker.compose.service=session-server-probe")
[ -z "$probes" ] || { echo "compose test: FAILED: probe containers left: $probes"; exit 1; }
rm -rf reports/ci-inside

step "stop one token-server replica; requests must keep succeeding"
victim=$("${compose[@]}" ps -q token-server | head -n 1)
docker stop "$victim" >/dev/null
"${compose[@]}" run --rm loadtest loadtest run --quick --scenarios read,login,refresh \
  --target token=http://balancer:8082 --out reports/ci-after-stop >"$work/after.log" 2>&1 \
  || { cat "$work/after.log"; exit 1; }
python3 - reports/ci-after-stop/results.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
# A missing run says why in the notes.
assert len(r["runs"]) == 3, ([x["scenario"] for x in r["runs"]], r["environment"]["notes"])
for x in r["runs"]:
    assert x["requests"] > 0 and x["errors"] == 0, f"{x['scenario']}: {x['requests']} requests, {x['errors']} failed"
    print(f"compose test:   after the stop: token {x['scenario']:<8} {x['requests']:>6} requests, 0 failed")
PY
rm -rf reports/ci-after-stop

step "down -v"
"${compose[@]}" down -v --remove-orphans
left=$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
left+=$(docker network ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
left+=$(docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
[ -z "$left" ] || { echo "compose test: FAILED: left behind: $left"; exit 1; }
step "passed"

#!/usr/bin/env bash
# The Swarm test: docker-compose.yml deployed with `docker stack deploy` on a single-node
# swarm made for the test, and measured by two load generators at once, merged.
#
# Like the compose test, the base images are stand-ins built from Debian's packages and the
# application image holds binaries compiled on the host (no registry can be reached). The
# stack file is docker-compose.yml rendered by deploy/swarm/stack.py, which changes only
# what Swarm does differently (README, "Docker Swarm").
#
# Steps: `docker swarm init` (only if this engine is in no swarm: one that is already in
# one is left alone and the test says SKIPPED), deploy with 2 replicas per server and the
# load test held back, wait until every replica is healthy, reload nginx (it resolves the
# replicas when it reads its configuration), start 2 load generators (`--instance 1/2`,
# `2/2`), wait for both, `loadtest merge` their folders and check the merged counts, kill
# one token-server replica and check Swarm replaced it, `docker stack rm`, `docker swarm
# leave --force`, and check that nothing is left.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILE=${PROFILE:-release}
started=$(date +%s)
step() { echo "swarm test [$(($(date +%s) - started)) s]: $*"; }

if ! docker info >/dev/null 2>&1; then
  echo "swarm test: SKIPPED: no Docker Engine answers (docker info failed)"
  exit 0
fi
state=$(docker info -f '{{.Swarm.LocalNodeState}}')
if [ "$state" != inactive ]; then
  echo "swarm test: SKIPPED: this engine is already in a swarm ($state); the test makes its own and leaves it"
  exit 0
fi
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 \
  || { echo "swarm test: FAILED: stack.py reads the compose file through docker-compose or docker compose"; exit 1; }
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyyaml

step "stand-in base images, application image ($PROFILE)"
PROFILE=$PROFILE bash deploy/ci/app-image.sh
work=$(mktemp -d)
stack=svt-swarm-$$
had_gwbridge=true   # until known: never remove a bridge that may not be ours
reports=reports/swarm-$$
cleanup() {
  docker stack rm "$stack" >/dev/null 2>&1 || true
  for _ in $(seq 120); do
    [ -z "$(docker network ls -q --filter "label=com.docker.stack.namespace=$stack")" ] \
      && [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")" ] && break
    sleep 0.5
  done
  # Task containers that exited on their own (the load generators) are ours to remove.
  docker ps -aq --filter "label=com.docker.stack.namespace=$stack" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker swarm leave --force >/dev/null 2>&1 || true
  # `swarm init` makes this bridge; `swarm leave` keeps it.
  $had_gwbridge || docker network rm docker_gwbridge >/dev/null 2>&1 || true
  rm -rf "$work" "$reports"
}
trap cleanup EXIT

had_gwbridge=false
docker network inspect docker_gwbridge >/dev/null 2>&1 && had_gwbridge=true
step "docker swarm init (a single-node swarm for this test)"
docker swarm init --advertise-addr 127.0.0.1 >/dev/null

# The settings a user would put in .env; published ports nothing else uses.
export REPLICAS=2 REPLICA_CPUS=0.5 LOADTEST_ARGS="--quick --scenarios read --out /work/$reports"
export LOADTEST_UID=$(id -u) LOADTEST_GID=$(id -g)
. deploy/ci/free-ports.sh
read -r SESSION_PORT TOKEN_PORT < <(free_ports 2)
export SESSION_PORT TOKEN_PORT
mkdir -p "$reports"

step "docker stack deploy: 2 replicas per server, the load test held back"
# Swarm's virtual IPs and routing mesh need the kernel's IPVS; a kernel without it (this
# machine's) gets DNS round robin and ports published on the balancer's node.
ipvs=(); [ -e /proc/net/ip_vs ] || { ipvs=(--no-ipvs); step "no IPVS in this kernel: --no-ipvs"; }
python3 deploy/swarm/stack.py --generators 2 --loadtest-replicas 0 "${ipvs[@]}" >"$work/stack.json"
docker stack deploy --resolve-image never -c "$work/stack.json" "$stack" >/dev/null

# Every task of the service running, and its container healthy where it has a check.
healthy() {
  local svc=$1 want=$2 ids n=0
  ids=$(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_$svc" --filter status=running)
  for id in $ids; do
    case $(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id") in
      healthy|none) n=$((n + 1)) ;;
    esac
  done
  [ "$n" -ge "$want" ]
}
wait_healthy() {
  for _ in $(seq 360); do
    if healthy redis 1 && healthy session-server 2 && healthy token-server 2 && healthy balancer 1; then return 0; fi
    sleep 0.5
  done
  docker stack ps --no-trunc "$stack" | head -30
  echo "swarm test: FAILED: not healthy after 180 s"; return 1
}
wait_healthy
step "every replica healthy; nginx reloads to resolve all of them"
balancer=$(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_balancer" | head -n 1)
docker exec "$balancer" nginx -s reload
curl -fsS -o /dev/null "http://127.0.0.1:$TOKEN_PORT/healthz" \
  || { echo "swarm test: FAILED: the published port $TOKEN_PORT does not reach the balancer"; exit 1; }

step "2 load generators at once (docker service scale loadtest=2)"
docker service scale -d "${stack}_loadtest=2" >/dev/null
for _ in $(seq 600); do
  states=$(docker service ps --format '{{.CurrentState}}' "${stack}_loadtest")
  [ "$(grep -c '^Complete' <<<"$states")" = 2 ] && break
  if grep -qE '^(Failed|Rejected)' <<<"$states"; then
    docker service logs --tail 30 "${stack}_loadtest"; echo "swarm test: FAILED: a load generator failed"; exit 1
  fi
  sleep 0.5
done
[ "$(grep -c '^Complete' <<<"$states")" = 2 ] || { docker service ps "${stack}_loadtest"; echo "swarm test: FAILED: the generators did not finish in 300 s"; exit 1; }

step "loadtest merge of the two generators' folders"
dirs=$(find "$reports" -mindepth 1 -maxdepth 1 -type d -name 'generator-*-of-2' | sort)
[ "$(wc -l <<<"$dirs")" = 2 ] || { echo "swarm test: FAILED: expected 2 generator folders in $reports: $dirs"; exit 1; }
"target/$PROFILE/loadtest" merge $dirs --out "$work/merged" >"$work/merge.log" 2>&1 || { cat "$work/merge.log"; exit 1; }
python3 - "$work/merged/results.json" $dirs <<'PY'
import json, sys
merged = json.load(open(sys.argv[1]))
parts = [json.load(open(f"{d}/results.json")) for d in sys.argv[2:]]
assert sorted(p["environment"]["instance"]["index"] for p in parts) == [1, 2]
for m in merged["runs"]:
    same = [r for p in parts for r in p["runs"] if (r["server"], r["scenario"]) == (m["server"], m["scenario"])]
    assert len(same) == 2, (m["server"], m["scenario"])
    assert m["requests"] == sum(r["requests"] for r in same) and m["requests"] > 0
    assert m["errors"] == 0, f"{m['server']} {m['scenario']}: {m['errors']} failed"
    per = m["requests_per_replica"]
    assert len(per) == 2 and all(n > 0 for n in per), f"{m['server']}: requests per replica {per}"
    print(f"swarm test:   {m['server']:>7} {m['scenario']:<6} {m['requests']:>6} requests from 2 generators "
          f"({' + '.join(str(r['requests']) for r in same)}), p99 {m['latency_ms']['p99']} ms, per replica {per}")
assert {(m["server"], m["scenario"]) for m in merged["runs"]} == {("session", "read"), ("token", "read")}, merged["runs"]
PY
[ -s "$work/merged/report.html" ] || { echo "swarm test: FAILED: the merge wrote no report"; exit 1; }

step "kill a token-server replica's container: Swarm starts another"
victim=$(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_token-server" | head -n 1)
docker kill "$victim" >/dev/null
for _ in $(seq 240); do
  healthy token-server 2 && ! docker ps -q | grep -q "^${victim:0:12}" && break
  sleep 0.5
done
healthy token-server 2 || { docker service ps "${stack}_token-server"; echo "swarm test: FAILED: no replacement replica"; exit 1; }

step "docker stack rm, docker swarm leave --force"
trap - EXIT
cleanup
left=$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")
left+=$(docker network ls -q --filter "label=com.docker.stack.namespace=$stack")
left+=$(docker config ls -q --filter "label=com.docker.stack.namespace=$stack" 2>/dev/null || true)
[ -z "$left" ] || { echo "swarm test: FAILED: left behind: $left"; exit 1; }
[ "$(docker info -f '{{.Swarm.LocalNodeState}}')" = inactive ] || { echo "swarm test: FAILED: the engine is still in a swarm"; exit 1; }
$had_gwbridge || ! docker network inspect docker_gwbridge >/dev/null 2>&1 \
  || { echo "swarm test: FAILED: docker_gwbridge was left behind"; exit 1; }
step "passed"

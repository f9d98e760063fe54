#!/usr/bin/env python3
"""docker-compose.yml as a Docker Swarm stack file, on standard output.

    python3 deploy/swarm/stack.py [--generators N] [--loadtest-replicas K] | \\
        docker stack deploy --resolve-image never -c - svt

The services, images, commands, environment, health checks, replica counts and CPU limits
are docker-compose.yml's own (read through `docker-compose config`, so .env and the
environment apply as for `docker compose up`; or `docker compose config`). What Swarm does differently is changed, and
only that:

- depends_on is dropped: Swarm starts every service at once (and refuses the form with
  health conditions). nginx retries until the replicas resolve; loadtest waits for the
  balancer's /healthz.
- the server services get `endpoint_mode: dnsrr`: their name resolves to every replica, as
  under compose, instead of one virtual IP (nginx balances, and `--replicas-of` sees each).
- nginx's configuration files become Swarm configs (a bind mount would need the file on
  every node).
- ports are published through the routing mesh, on every node and every interface (Swarm
  has no host address for a published port); Redis's port is not published at all.
- `build`, `restart` and `container_name` are dropped (Swarm ignores them or refuses them);
  restarts follow `deploy.restart_policy`, and the load test runs once (`condition: none`).
- with --generators N, the loadtest service runs N tasks at once, each told which it is
  (`--instance {{.Task.Slot}}/N`): `loadtest merge` combines their folders.
- with --no-ipvs, for kernels without IPVS (Swarm's virtual IPs and its routing mesh need
  it): every service is reached by DNS round robin, and the balancer's ports are published in
  host mode, on the node that runs it.
"""
import argparse
import json
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:  # PyYAML: `pip install pyyaml`
    sys.exit("stack.py needs PyYAML (pip install pyyaml)")

SERVERS = ("session-server", "token-server")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compose-file", default="docker-compose.yml")
    ap.add_argument("--generators", type=int, default=1, help="load generators run at once")
    ap.add_argument(
        "--no-ipvs",
        action="store_true",
        help="no virtual IPs, no routing mesh: DNS round robin, ports published on the balancer's node",
    )
    ap.add_argument(
        "--loadtest-replicas",
        type=int,
        default=None,
        help="tasks of the loadtest service at deploy time (default: --generators; 0 to start it later)",
    )
    a = ap.parse_args()
    if a.generators < 1:
        sys.exit("--generators must be at least 1")
    # Compose v1 (`docker-compose`) or v2 (`docker compose`), whichever is installed.
    compose_cmd = ["docker-compose"] if shutil.which("docker-compose") else ["docker", "compose"]
    done = subprocess.run(compose_cmd + ["-f", a.compose_file, "config"], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(compose_cmd)} config failed: {done.stderr.strip()}")
    cfg = done.stdout
    compose = yaml.safe_load(cfg)
    out = {"version": "3.8", "services": {}, "configs": {}}
    for name, svc in compose["services"].items():
        # A service started only when named (`compare`, which drives the Engine of one
        # machine through its socket) has no place in a stack.
        if svc.get("profiles"):
            continue
        for key in ("build", "restart", "container_name", "depends_on"):
            svc.pop(key, None)
        deploy = svc.setdefault("deploy", {})
        for kind in ("limits", "reservations"):
            res = deploy.get("resources", {}).get(kind, {})
            if "cpus" in res:  # compose prints a number; the stack schema wants a string
                res["cpus"] = str(res["cpus"])
        if name in SERVERS or a.no_ipvs:
            deploy["endpoint_mode"] = "dnsrr"
        if name == "redis":
            svc.pop("ports", None)
        if "ports" in svc:
            svc["ports"] = [long_port(p, "host" if a.no_ipvs else "ingress") for p in svc["ports"]]
        if name == "balancer":
            mounts = svc.pop("volumes", [])
            svc["configs"] = []
            for m in mounts:
                src, target = m.split(":")[:2]
                key = target.rsplit("/", 1)[-1].replace(".", "_")
                out["configs"][key] = {"file": src}
                svc["configs"].append({"source": key, "target": target})
        if name == "loadtest":
            # Its closing line names `docker compose run --rm compare`, which a stack has not.
            env = svc.get("environment")
            if isinstance(env, dict):
                env.pop("LOADTEST_CLOSING_LINE", None)
            elif isinstance(env, list):
                svc["environment"] = [e for e in env if not e.startswith("LOADTEST_CLOSING_LINE=")]
            deploy["restart_policy"] = {"condition": "none"}
            deploy["replicas"] = a.generators if a.loadtest_replicas is None else a.loadtest_replicas
            if a.generators > 1:
                svc.setdefault("environment", {})["LOADTEST_INSTANCE"] = "{{.Task.Slot}}/%d" % a.generators
        else:
            deploy.setdefault("restart_policy", {"condition": "any", "delay": "1s"})
        out["services"][name] = svc
    if not out["configs"]:
        del out["configs"]
    # Numbers and strings exactly as compose gave them (JSON is YAML).
    json.dump(out, sys.stdout, indent=1)
    print()


def long_port(p, mode):
    """`127.0.0.1:8081:8081/tcp` -> published 8081, target 8081 (no host address in Swarm)."""
    if isinstance(p, dict):
        p.pop("host_ip", None)
        p["mode"] = mode
        return p
    spec, _, proto = str(p).partition("/")
    parts = spec.split(":")
    published, target = parts[-2], parts[-1]
    return {"target": int(target), "published": int(published), "protocol": proto or "tcp", "mode": mode}


if __name__ == "__main__":
    main()

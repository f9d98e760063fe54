#!/usr/bin/env bash
# free_ports N: N distinct TCP ports that nothing listens on now, picked below the kernel's
# ephemeral range so that no outgoing connection (of the tests that ran before, or of
# anything else on this machine) can take one between the pick and the publish.
# Deriving a port from the PID collided on CI: 127.0.0.1:42138 was one end of a connection.
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
want = int(sys.argv[1])
with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
    ephemeral_low = int(f.read().split()[0])
candidates = list(range(10000, min(ephemeral_low, 32768)))
random.shuffle(candidates)
chosen = []
for port in candidates:
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
    except OSError:
        continue
    chosen.append(port)
    if len(chosen) == want:
        print(" ".join(map(str, chosen)))
        sys.exit(0)
sys.exit(f"free-ports: fewer than {want} free ports below {ephemeral_low}")
PY
}

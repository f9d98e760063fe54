#!/usr/bin/env python3
"""Memory a server keeps for unfinished request heads (README, "The defences").

2,000 connections to 127.0.0.1:PORT each send a 120 KB request head, 8 KiB at a time every
0.2 s, then wait 10 s (the head timeout) and close; prints the resident memory of PID before,
at the peak and after. Start the server (a release build) yourself:

    scripts/slow-heads.py PORT PID
"""
import socket, sys, time, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (16384, 16384))
port, pid = int(sys.argv[1]), int(sys.argv[2])
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1]) // 1024
base = rss()
socks = []
for i in range(2000):
    s = socket.create_connection(("127.0.0.1", port)); s.setblocking(False)
    try: s.send(b"GET /api/public HTTP/1.1\r\nHost: x\r\nX-Pad: ")
    except OSError: pass
    socks.append(s)
peak = base; answered = 0; closed = 0
chunk = b"x" * 8192
for step in range(15):  # 15 x 8 KiB = 120 KiB per connection
    for s in socks:
        try: s.send(chunk)
        except OSError: pass
    peak = max(peak, rss()); time.sleep(0.2)
for s in socks:
    try:
        d = s.recv(200)
        if d.startswith(b"HTTP/1.1 431"): answered += 1
        elif d == b"": closed += 1
    except BlockingIOError: pass
    except OSError: closed += 1
for _ in range(20): peak = max(peak, rss()); time.sleep(0.5)
for s in socks: s.close()
time.sleep(2)
print(f"RSS MB: before {base}, peak {peak}, after {rss()}; 431 answers read: {answered}, closed: {closed}")

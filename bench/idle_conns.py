#!/usr/bin/env python3
"""Opens N keep-alive connections to HOST:PORT, makes one request on each,
keeps them idle, and prints the PID's resident memory while they are open.

usage: idle_conns.py PORT N PID [SETTLE_SECONDS]

RSS is read SETTLE_SECONDS (default 6) after the last connection opened: the
span batch goes out every 5 s (OTEL_BSP_SCHEDULE_DELAY's default), so by then
the figure is what the idle connections hold, not the N requests' spans and
log records still waiting in the export queue.
"""
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    port, count, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    settle = float(sys.argv[4]) if len(sys.argv) > 4 else 6.0
    before = rss_kib(pid)
    conns = []
    request = b"POST /api/generate HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        conns.append(s)
    time.sleep(settle)
    during = rss_kib(pid)
    print(f'{{"connections":{len(conns)},"rss_before_kib":{before},"rss_idle_kib":{during}}}')
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()

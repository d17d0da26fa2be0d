#!/usr/bin/env python3
"""scripts/bench relay: end-to-end relaying, in one run and on loopback only:

  smtp-source -> postern (durable spool) -> smtp transport -> smtp-sink
  smtp-source -> Postfix (its queue)     -> smtp client    -> smtp-sink

For each size, the clock runs from the first message sent until the sender has every message
confirmed by the sink (postern: no recipient left pending in its spool; Postfix: its queue is
empty): messages per second end to end, and the ratio. Every run is a bounded number of
messages; both relays are started for the run and stopped at the end.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_smtp import ROOT, note_recent_cleanup, remove_work, Postfix, Postern, Sink, free_port  # noqa: E402


def source(port, messages, sessions, size):
    proc = subprocess.run(["smtp-source", "-d", "-s", str(sessions), "-m", str(messages), "-l", str(size),
                           "-f", "bench@source.example", "-t", "sink@bench.example", f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"smtp-source failed on port {port}: {proc.stderr.strip()}")


def postern_pending(http_port):
    # Read from postern's own /metrics: polling `postern queue list` started a process (which
    # loads every plugin) twenty times a second, and took CPU from the relay being measured.
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(r"^postern_queue_messages (\d+)$", text, re.M)
    if not m:
        raise RuntimeError("postern's /metrics has no postern_queue_messages")
    return int(m.group(1)) > 0


def wait_for(pending, timeout=900):
    deadline = time.monotonic() + timeout
    while pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    if time.monotonic() >= deadline:
        raise RuntimeError("the relay did not finish in time")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(ROOT / "build/bin/postern"))
    parser.add_argument("--sizes", default="1024,102400")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=5000, help="at 1 KiB; fewer for larger sizes")
    args = parser.parse_args()

    note_recent_cleanup()
    work = Path(tempfile.mkdtemp(prefix="postern-bench-relay-"))
    work.chmod(0o755)
    started = []
    try:
        sink = Sink()
        started.append(sink)
        postfix = Postfix(work, sink.port)
        started.append(postfix)
        http_port = free_port()
        postern = Postern(work, args.binary, transports=("smtp",), extra=f"""
[http]
listen = ["127.0.0.1:{http_port}"]
[transports.smtp]
relays = ["127.0.0.1:{sink.port}"]
tls = "none"
max_connections = 20
""")
        started.append(postern)
        print(f"End-to-end relay into smtp-sink, smtp-source with {args.sessions} sessions, work directory {work}",
              flush=True)
        print(f"{'size':>7} {'messages':>8} {'postern':>10} {'postfix':>10} {'pn/pf':>7}", flush=True)
        for size in [int(s) for s in args.sizes.split(",")]:
            messages = max(200, int(args.messages * (1024 / size) ** 0.5))
            start = time.monotonic()
            source(postern.port, messages, args.sessions, size)
            wait_for(lambda: postern_pending(http_port))
            pn = messages / (time.monotonic() - start)
            start = time.monotonic()
            source(postfix.port, messages, args.sessions, size)
            postfix.drain()
            pf = messages / (time.monotonic() - start)
            print(f"{size:>7} {messages:>8} {pn:>8.0f}/s {pf:>8.0f}/s {pn / pf:>6.1f}x", flush=True)
    finally:
        for peer in reversed(started):
            peer.stop()
        remove_work(work)


if __name__ == "__main__":
    sys.exit(main())

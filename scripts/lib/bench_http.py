#!/usr/bin/env python3
"""scripts/bench http: durable messages accepted per second over the REST API, measured with
wrk (keep-alive connections POSTing 1 KiB JSON messages to /v1/messages), beside the SMTP ingest
of the same postern in the same run (smtp-source, 1 KiB, the same number of connections).

Both go to one postern with the bench set-up of scripts/bench smtp: durable spool (an answer
only after the fsync), file sink on the same disk. wrk runs for a fixed time; every loop stops
by itself and nothing leaves 127.0.0.1. After the run, postern's own counter of accepted API
messages is checked against wrk's count of 2xx answers.
"""

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_smtp import ROOT, note_recent_cleanup, remove_work, Postern, free_port, smtp_source  # noqa: E402

KEY = "pk_bench_0123456789abcdef0123456789abcdef"

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.body = %(body)s
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("LATENCY %%d %%d\\n", latency:percentile(50), latency:percentile(99)))
end
"""


def message_json(size):
    text = ("La de da de da " * (size // 15 + 1))[:size]
    return json.dumps({"from": "bench@source.example", "to": ["sink@bench.example"], "subject": "bench",
                       "text": text})


def metric(port, pattern):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search("^" + pattern + r" (\S+)$", text, re.M)
    return int(float(m.group(1))) if m else 0


def accepted_counter(port):
    return metric(port, r'postern_http_messages_accepted_total\{tenant="bench"\}')


def spool_batching(port):
    """Spool operations per group commit (per WAL fsync) so far."""
    commits = metric(port, "postern_spool_commits_total")
    return metric(port, "postern_spool_operations_total") / commits if commits else 0


def run_wrk(port, connections, threads, seconds, size, work):
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT % {"key": KEY, "body": json.dumps(message_json(size))})
    proc = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s", str(script),
                           f"http://127.0.0.1:{port}/v1/messages"], capture_output=True, text=True,
                          timeout=seconds + 60)
    result = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+)", proc.stdout)
    latency = re.search(r"LATENCY (\d+) (\d+)", proc.stdout)
    if proc.returncode != 0 or not result:
        raise RuntimeError(f"wrk failed: {proc.stdout}\n{proc.stderr}")
    requests, duration_us, bad_status, socket_errors = map(int, result.groups())
    ok = requests - bad_status
    return ok, ok / (duration_us / 1e6), bad_status, socket_errors, [int(x) / 1000 for x in latency.groups()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(ROOT / "build/bin/postern"))
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the machine has 2 cores)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--smtp-messages", type=int, default=20000)
    parser.add_argument("--held", action="store_true",
                        help="hold delivery back (1 message/s) so that only acceptance is measured, "
                             "as in a burst that the queue absorbs")
    args = parser.parse_args()

    note_recent_cleanup()
    work = Path(tempfile.mkdtemp(prefix="postern-bench-http-"))
    http_port = free_port()
    extra = f"""
[http]
listen = ["127.0.0.1:{http_port}"]
"""
    if args.held:
        extra += """
[[delivery.limits]]
transport = "file"
rate = 1
"""
    postern = None
    try:
        key_hash = hashlib.sha256(KEY.encode()).hexdigest()
        postern = Postern(work, args.binary, extra=extra,
                          tenant_extra=f'api_keys = [{{ name = "bench", sha256 = "{key_hash}" }}]')
        print(f"REST ingest with wrk ({args.threads} thread(s), {args.connections} keep-alive connections, "
              f"{args.seconds} s, {args.size}-byte text), beside SMTP ingest with smtp-source "
              f"({args.connections} sessions, {args.size}-byte messages), one postern, work directory {work}",
              flush=True)
        ok, rate, bad, errors, (p50, p99) = run_wrk(http_port, args.connections, args.threads, args.seconds,
                                                    args.size, work)
        counted = accepted_counter(http_port)
        batching = spool_batching(http_port)
        if not args.held:
            postern.drain(counted)
        smtp = smtp_source(postern.port, args.smtp_messages, args.connections, args.size)
        print(f"  REST  /v1/messages  {rate:>8.0f} msg/s   ({ok} accepted, {bad} non-2xx, {errors} socket errors; "
              f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms; {batching:.1f} spool operations per commit)")
        print(f"  SMTP  smtp-source   {smtp:>8.0f} msg/s")
        print(f"  ratio REST/SMTP     {rate / smtp:>8.2f}x")
        # wrk stops at its deadline without counting answers still on their way: postern may count
        # up to one more per connection, never fewer.
        consistent = 0 <= counted - ok <= args.connections
        print(f"  check: postern counted {counted} accepted API messages, wrk saw {ok} 2xx answers "
              f"({'consistent' if consistent else 'MISMATCH'})")
    finally:
        if postern:
            postern.stop()
        remove_work(work)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""scripts/bench smtp: SMTP ingest of postern beside Postfix and smtp-sink, in one run, on
loopback, with Postfix's smtp-source as the client for all three.

  postern   durable spool (fsync before 250), file sink on the same disk
  postfix   a private Postfix instance (own config and queue, loopback only), relaying
            into smtp-sink; started for the run and stopped at the end
  smtp-sink the ceiling: accepts and discards, no queue

Prints msg/s per size and session count, and the ratios postern/Postfix and
postern/smtp-sink; for postern also how much of the cell was already in the file sink when its
last message was accepted ("pn in sink": whether delivery kept pace), and the rate from the
first message sent to the last one in the sink ("pn to sink"). Every run is a bounded number
of messages; nothing leaves 127.0.0.1.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLEANUP_MARK = ROOT / "var" / "bench-cleanup"  # touched whenever a benchmark deletes its work directory


def note_recent_cleanup():
    """On ext4 without a journal (this project's VM), every new file skips the inodes deleted in
    the last minutes, one by one: for about five minutes after a benchmark deleted its files,
    the file sink (and Postfix's queue) run slower. Says so when the last deletion was recent."""
    try:
        age = time.time() - CLEANUP_MARK.stat().st_mtime
    except OSError:
        return
    if age < 300:
        print(f"note: a benchmark deleted its work files {age:.0f} s ago; on ext4 without a journal new files "
              "are slower for about 5 minutes after that (docs/performance.md)", flush=True)


def remove_work(work):
    shutil.rmtree(work, ignore_errors=True)
    CLEANUP_MARK.parent.mkdir(parents=True, exist_ok=True)
    CLEANUP_MARK.touch()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.recv(100)
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}")


def smtp_source(port, messages, sessions, size):
    """Sends `messages` messages of `size` bytes over `sessions` parallel sessions; msg/s."""
    start = time.monotonic()
    # -d: each session sends its messages over one connection, as pooled app clients do.
    proc = subprocess.run(["smtp-source", "-d", "-s", str(sessions), "-m", str(messages), "-l", str(size),
                           "-f", "bench@source.example", "-t", "sink@bench.example", f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"smtp-source failed on port {port}: {proc.stderr.strip()}")
    return messages / elapsed


class Postern:
    def __init__(self, work, binary, extra="", tenant_extra="", transports=("file",)):
        self.dir = work / "postern"
        self.dir.mkdir()
        self.port = free_port()
        (self.dir / "postern.toml").write_text(f"""
[server]
data_dir = "data"
log_level = "warn"
plugin_dirs = ["{ROOT / 'build/lib/postern/plugins'}"]
[smtp]
listen = ["127.0.0.1:{self.port}"]
trusted_networks = ["127.0.0.1/32"]
trusted_tenant = "bench"
max_connections = 20000
max_connections_per_client = 20000
[tenants.bench]
{tenant_extra}
[delivery]
transports = {json.dumps(list(transports))}
max_parallel = 64
[transports.file]
directory = "outbox"
layout = "eml"
""" + extra)
        self.log = open(self.dir / "serve.log", "wb")
        self.proc = subprocess.Popen([str(binary), "-c", str(self.dir / "postern.toml"), "serve"],
                                     stdout=self.log, stderr=self.log, preexec_fn=raise_fd_limit)
        wait_port(self.port)

    def delivered(self):
        out = self.dir / "data" / "outbox"
        return sum(1 for _ in out.glob("*.eml")) if out.is_dir() else 0

    def drain(self, expected, timeout=600):
        """Waits until `expected` messages sit in the file sink: the next measurement starts
        with postern idle, not delivering a backlog (which would slow the next peer)."""
        deadline = time.monotonic() + timeout
        while self.delivered() < expected and time.monotonic() < deadline:
            time.sleep(0.2)

    def rss_kib(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Sink:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["smtp-sink", "-u", "postfix", "-c", f"127.0.0.1:{self.port}", "1024"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Postfix:
    """A private Postfix: own config directory and queue under the work directory."""

    def __init__(self, work, relay_port):
        self.dir = work / "postfix"
        etc = self.dir / "etc"
        etc.mkdir(parents=True)
        self.port = free_port()
        (etc / "main.cf").write_text(f"""
compatibility_level = 3.6
queue_directory = {self.dir}/queue
data_directory = {self.dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.localdomain
mydomain = localdomain
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost = [127.0.0.1]:{relay_port}
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 250
default_destination_concurrency_limit = 20
maillog_file = /dev/stdout
""")
        master = []
        for line in Path("/etc/postfix/master.cf").read_text().splitlines():
            fields = line.split()
            if not line or line[0] in "# \t" or len(fields) < 8:
                master.append(line)
                continue
            if fields[0] == "smtp" and fields[1] == "inet":
                fields[0] = f"127.0.0.1:{self.port}"
            fields[4] = "n"  # no chroot: the private queue has no chroot set-up
            master.append(" ".join(fields[:8]) + (" " + " ".join(fields[8:]) if len(fields) > 8 else ""))
        (etc / "master.cf").write_text("\n".join(master) + "\n")
        (self.dir / "queue").mkdir()
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", "postfix")
        env = dict(os.environ, MAIL_CONFIG=str(etc))
        subprocess.run(["postfix", "-c", str(etc), "check"], env=env, capture_output=True)
        # In the foreground, logging to stdout (our log file): no syslog needed.
        self.log = open(self.dir / "postfix.log", "wb")
        self.proc = subprocess.Popen(["postfix", "-c", str(etc), "start-fg"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.env = env
        self.etc = etc
        wait_port(self.port)

    def drain(self, timeout=600):
        """Waits until Postfix's queue is empty (everything relayed to smtp-sink)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            q = subprocess.run(["postqueue", "-c", str(self.etc), "-j"], env=self.env, capture_output=True, text=True)
            if q.returncode == 0 and not q.stdout.strip():
                return
            time.sleep(0.05)

    def stop(self):
        subprocess.run(["postfix", "-c", str(self.etc), "stop"], env=self.env, capture_output=True)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def raise_fd_limit():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


def idle_connections(postern, count):
    """Opens `count` idle SMTP connections to postern; returns the RSS growth in MiB."""
    raise_fd_limit()
    # postern gives the memory its allocator keeps after a burst (large messages) back every
    # 10 s: measure from there, so that the figure is what the connections cost.
    time.sleep(12)
    before = postern.rss_kib()
    sockets = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", postern.port), timeout=30)
            sockets.append(s)
        for s in sockets:  # every one greeted: the server holds them all
            if not s.recv(100).startswith(b"220"):
                raise RuntimeError("a connection was not greeted with 220")
        time.sleep(1)
        after = postern.rss_kib()
    finally:
        for s in sockets:
            s.close()
    return before / 1024, after / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(ROOT / "build/bin/postern"))
    parser.add_argument("--sizes", default="1024,10240,102400")
    parser.add_argument("--sessions", default="1,20,100")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply message counts")
    parser.add_argument("--idle", type=int, default=10000, help="idle connections for the memory check")
    args = parser.parse_args()

    note_recent_cleanup()
    work = Path(tempfile.mkdtemp(prefix="postern-bench-"))  # postern and Postfix on the same disk
    work.chmod(0o755)  # Postfix's daemons run as the postfix user and must reach their queue
    started = []  # stopped in reverse order whatever happens, even if a later one fails to start
    rows = []
    sent_to_postern = 0
    try:
        sink = Sink()
        started.append(sink)
        postfix = Postfix(work, sink.port)
        started.append(postfix)
        postern = Postern(work, args.binary)
        started.append(postern)
        print(f"SMTP ingest, smtp-source on 127.0.0.1, work directory {work}", flush=True)
        print(f"{'size':>7} {'sessions':>8} {'messages':>8} {'postern':>10} {'postfix':>10} {'smtp-sink':>10}"
              f" {'pn/pf':>7} {'pn/sink':>8} {'pn in sink':>10} {'pn to sink':>10}", flush=True)
        for size in [int(s) for s in args.sizes.split(",")]:
            for sessions in [int(s) for s in args.sessions.split(",")]:
                base = 500 if sessions == 1 else 4000
                messages = max(100, int(base * args.scale * (1024 / size) ** 0.5))
                sent_to_postern += messages
                began = time.monotonic()
                pn = smtp_source(postern.port, messages, sessions, size)
                # How far delivery kept pace with ingest: what sat in the sink when the last
                # message was accepted, and the rate from the first message to the last in the sink.
                in_sink = postern.delivered() - (sent_to_postern - messages)
                postern.drain(sent_to_postern)
                through = messages / (time.monotonic() - began)
                pf = smtp_source(postfix.port, messages, sessions, size)
                postfix.drain()
                sk = smtp_source(sink.port, messages, sessions, size)
                rows.append((size, sessions, pn, pf, sk))
                print(f"{size:>7} {sessions:>8} {messages:>8} {pn:>8.0f}/s {pf:>8.0f}/s {sk:>8.0f}/s"
                      f" {pn / pf:>6.1f}x {pn / sk:>7.0%} {in_sink / messages:>10.0%} {through:>8.0f}/s", flush=True)
        if args.idle:
            before, after = idle_connections(postern, args.idle)
            print(f"\nidle connections: {args.idle} held open, postern RSS {before:.0f} MiB -> {after:.0f} MiB "
                  f"(+{after - before:.0f} MiB, {(after - before) * 1024 * 1024 / args.idle:.0f} bytes each)")
    finally:
        for peer in reversed(started):
            peer.stop()
        remove_work(work)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""scripts/bench campaign: audience selection and campaign queueing at shop scale.

Generates one tenant's contacts and orders locally (1,000,000 contacts and 5,000,000 orders over
2,000 products with a long-tailed popularity, plus cart adds), written straight into the
contacts database that postern created (the API would take far longer to load them, and loading
is not what is measured). Then, against the running server on 127.0.0.1:
  - the time of POST /v1/audiences/preview for five rules (count in SQL, 10-contact sample);
  - the time of a campaign dry run (every selected contact walks the policy chain);
  - then, with postern restarted for a shop that sends at once (pacing lifted, the activity
    window lifted on the default route, so every contact is a recipient), the time until a
    campaign to every contact is recorded (the 202) and until every recipient is a message
    durable in the spool, with postern's peak memory (VmHWM) before and after.
The whole policy chain runs, as a shop would configure it. Delivery is held back (a
[[delivery.limits]] rate of one message a second for the file transport), so that the benchmark
does not go on to deliver a million messages; the campaign is cancelled at the end.
Targets (issue 7): selection <= 2 s, queueing 1M <= 60 s.
"""

import argparse
import hashlib
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_smtp import ROOT, note_recent_cleanup, remove_work, Postern, free_port, raise_fd_limit, wait_port  # noqa: E402

KEY = "pk_bench_0123456789abcdef0123456789abcdef"
DAY_MS = 86400 * 1000

RULES = [
    ("bought p1 and p2, not p3", {"bought_all": ["p1", "p2"], "bought_none": ["p3"]}),
    ("bought p5 or p6", {"bought_any": ["p5", "p6"]}),
    ("prospects (cart items never ordered)", {"prospects": True}),
    ("any purchase, active within 365 days", {"any_purchase": True, "active_within_days": 365}),
    ("bought none of p1", {"bought_none": ["p1"]}),
]


def product(rng, products):
    # Long-tailed: p1 is the most popular, p2000 rarely bought.
    return "p" + str(min(products, int(products ** rng.random())))


def generate(db_path, contacts, orders, carts, products, seed):
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    # Indexes are built once after the load (postern creates the missing ones when it starts).
    for index in ("contacts_recent", "activity_product", "activity_contact"):
        db.execute(f"DROP INDEX IF EXISTS {index}")
    db.executemany(
        "INSERT INTO contacts(id, tenant, email, first_name, created, last_interaction) VALUES(?, 'bench', ?, ?, ?, ?)",
        ((i, f"c{i}@example.com", f"C{i}", now_ms - 800 * DAY_MS, now_ms - rng.randrange(730) * DAY_MS)
         for i in range(1, contacts + 1)))
    db.executemany(
        "INSERT INTO activity(contact_id, kind, product, order_id, time) VALUES(?, 0, ?, ?, ?)",
        ((rng.randrange(1, contacts + 1), product(rng, products), str(n), now_ms - rng.randrange(730) * DAY_MS)
         for n in range(orders)))
    db.executemany(
        "INSERT INTO activity(contact_id, kind, product, order_id, time) VALUES(?, ?, ?, NULL, ?)",
        ((rng.randrange(1, contacts + 1), rng.choice((1, 2)), product(rng, products), now_ms - rng.randrange(60) * DAY_MS)
         for _ in range(carts)))
    # Asks postern to compute each contact's derived facts (buyer, prospect) when it starts,
    # as it does for a database from before they existed.
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()


def post(port, path, body, timeout=600):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    start = time.monotonic()
    with urllib.request.urlopen(req, timeout=timeout) as r:
        answer = json.loads(r.read())
    return time.monotonic() - start, answer


def peak_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


PACED = 'per_second = 50\n[policies.activity_window]\nlifted_routes = []\n'
AT_ONCE = 'per_second = 1000000\n[policies.activity_window]\nlifted_routes = ["default"]\n'


def start_postern(work, binary):
    http_port = free_port()
    extra = f"""
[http]
listen = ["127.0.0.1:{http_port}"]
request_timeout = "10m"
[policies]
order = ["consent", "activity_window", "no_resend", "link_guard", "campaign_pacing",
         "frequency_cap", "credits", "completion_notice"]
[policies.credits.grants]
bench = 100000000
[[delivery.limits]]
transport = "file"
rate = 1
[policies.campaign_pacing]
""" + PACED
    tenant = (f'sending_domains = ["shop.example"]\n'
              f'api_keys = [{{ name = "bench", sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}" }}]\n')
    postern = Postern(work, binary, extra=extra, tenant_extra=tenant)
    postern.http_port = http_port
    return postern


def main():
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(ROOT / "build/bin/postern"))
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--carts", type=int, default=300_000)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    note_recent_cleanup()
    work = Path(tempfile.mkdtemp(prefix="postern-bench-campaign-", dir=ROOT / "var"))
    try:
        # First start: postern creates its databases; then the data goes in while it is down.
        postern = start_postern(work, args.binary)
        postern.stop()
        t = time.monotonic()
        generate(postern.dir / "data" / "contacts.db", args.contacts, args.orders, args.carts, args.products,
                 args.seed)
        print(f"generated {args.contacts:,} contacts, {args.orders:,} orders, {args.carts:,} cart/wishlist adds "
              f"in {time.monotonic() - t:.0f} s")
        t = time.monotonic()
        postern = start_postern_again(postern, args.binary)
        print(f"postern started (indexes and per-contact facts built) in {time.monotonic() - t:.0f} s")

        print("\naudience selection (POST /v1/audiences/preview), target <= 2 s")
        print(f"{'rule':40} {'selected':>10} {'time':>8}")
        for name, rule in RULES:
            seconds, answer = post(postern.http_port, "/v1/audiences/preview", rule)
            print(f"{name:40} {answer['count']:>10,} {seconds:>7.2f}s")

        message = {"from": "news@shop.example", "subject": "Bench", "text": "Hello from the bench https://shop.example/"}
        name, rule = RULES[0]
        seconds, report = post(postern.http_port, "/v1/campaigns",
                               {"name": "dry", "audience": rule, "message": message, "dry_run": True})
        print(f"\ncampaign dry run, {name}: {report['selected']:,} selected, {report['remaining']:,} remain, "
              f"{seconds:.2f} s")

        postern.stop()
        postern = start_postern_again(postern, args.binary, at_once=True)
        before = peak_kib(postern.proc.pid)
        start = time.monotonic()
        seconds, answer = post(postern.http_port, "/v1/campaigns", {"name": "everyone", "audience": {}, "message": message})
        report = answer["report"]
        print(f"\ncampaign to every contact, pacing and activity window lifted: {report['selected']:,} selected, "
              f"{report['remaining']:,} to send")
        print(f"  recorded (the 202): {seconds:.1f} s")
        progress = wait_spooled(postern, answer["id"])
        print(f"  every recipient a durable message in the spool: {time.monotonic() - start:.1f} s (target <= 60 s); "
              f"{progress['queued']:,} queued, {progress['dropped']:,} dropped")
        after = peak_kib(postern.proc.pid)
        print(f"postern peak memory: {before / 1024:.0f} MiB before, {after / 1024:.0f} MiB after")
        post(postern.http_port, f"/v1/campaigns/{answer['id']}/cancel", {})
    finally:
        try:
            postern.stop()
        except Exception:
            pass
        if not getattr(postern, "keep", False):
            remove_work(work)


def wait_spooled(postern, campaign, timeout=900):
    """Polls the campaign until no recipient waits to be fed to the spool; its progress."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        req = urllib.request.Request(f"http://127.0.0.1:{postern.http_port}/v1/campaigns/{campaign}",
                                     headers={"Authorization": f"Bearer {KEY}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            progress = json.loads(r.read())["progress"]
        if progress["waiting"] == 0:
            return progress
        time.sleep(0.5)
    raise RuntimeError(f"the campaign's recipients were not all spooled within {timeout} s")


def start_postern_again(old, binary, at_once=False):
    """Starts postern again on the config and data of `old`, which was stopped; with `at_once`,
    configured to send a campaign at once (see start_postern)."""
    if at_once:
        config = old.dir / "postern.toml"
        config.write_text(config.read_text().replace(PACED, AT_ONCE))
    old.log = open(old.dir / "serve.log", "ab")
    old.proc = subprocess.Popen([str(binary), "-c", str(old.dir / "postern.toml"), "serve"],
                                stdout=old.log, stderr=old.log, preexec_fn=raise_fd_limit)
    try:
        wait_port(old.port, timeout=600)  # SMTP greets; the HTTP listener opens right after it
    except RuntimeError:
        raise RuntimeError("postern did not start:\n" + serve_log(old))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{old.http_port}/readyz", timeout=5):
                return old
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("postern's HTTP listener did not become ready")


def serve_log(postern):
    return (postern.dir / "serve.log").read_text(errors="replace")[-3000:]


if __name__ == "__main__":
    main()

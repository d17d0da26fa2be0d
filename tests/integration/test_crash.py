"""Durability under kill -9: mail that `postern sendmail` accepted (exit 0) is delivered even
when the server is SIGKILLed at random moments while mail arrives and is delivered.

Delivery is at-least-once across a crash: a message written into its Maildir just before the
kill, whose outcome was not yet committed to the spool, is delivered again after the restart.
The test allows that (at most max_parallel per crash) but not a single lost message.

POSTERN_CRASH_SEED=<n> replays the random kill points of an earlier run (printed on stderr).
"""

import os
import random
import re
import sys
import threading
import time
import unittest

from postern_harness import PosternTestCase, wait_until

MESSAGES = 300
SUBMITTERS = 2
KILLS = 3
MAX_PARALLEL = 32  # the default [delivery] max_parallel: attempts in flight at a kill, at most
RECIPIENTS = [f"crash{i}@example.com" for i in range(5)]
TEST_ID = re.compile(rb"^X-Test-Id: (\S+)\r?$", re.M)


class CrashTest(PosternTestCase):
    def test_accepted_mail_survives_kill_9(self):
        seed = int(os.environ.get("POSTERN_CRASH_SEED", str(time.time_ns() % 1_000_000_007)))
        rng = random.Random(seed)
        sys.stderr.write(f"\n[crash test] seed {seed} (POSTERN_CRASH_SEED={seed} replays the kill points)\n")
        inst = self.install()
        server = inst.start_server()

        lock = threading.Lock()
        results = {}  # marker -> (recipient, exit status, stderr)
        errors = []

        def submit(indices):
            try:
                for i in indices:
                    marker = f"crash-{i:04d}-{seed}"
                    rcpt = RECIPIENTS[i % len(RECIPIENTS)]
                    message = (f"Subject: crash test {i}\nX-Test-Id: {marker}\n\nmessage {i} of {MESSAGES}\n"
                               + "padding line to make the body a bit larger\n" * (i % 7))
                    proc = inst.sendmail("-oi", rcpt, message=message, timeout=60)
                    with lock:
                        results[marker] = (rcpt, proc.returncode, proc.stderr)
            except Exception as e:  # reported by the main thread
                with lock:
                    errors.append(repr(e))

        threads = [threading.Thread(target=submit, args=(range(t, MESSAGES, SUBMITTERS),), daemon=True)
                   for t in range(SUBMITTERS)]
        for t in threads:
            t.start()

        # Kill points spread over the submissions, so the server dies with mail arriving, being
        # picked up from the maildrop and being delivered.
        kill_points = sorted(rng.sample(range(MESSAGES // 10, MESSAGES - MESSAGES // 10), KILLS))
        kills = []
        for point in kill_points:
            wait_until(lambda: len(results) >= point or errors or not any(t.is_alive() for t in threads),
                       timeout=60, describe=lambda: f"submissions stalled at {len(results)} of {MESSAGES}")
            time.sleep(rng.uniform(0, 0.15))
            self.assertTrue(server.running, f"the server died by itself:\n{server.log()}")
            server.kill()
            kills.append(len(results))
            time.sleep(rng.uniform(0, 0.3))  # mail piles up in the maildrop meanwhile
            server = inst.start_server()
        for t in threads:
            t.join(120)
            self.assertFalse(t.is_alive(), "a submitter did not finish")
        self.assertEqual(errors, [])
        sys.stderr.write(f"[crash test] killed the server after {kills} of {MESSAGES} submissions\n")
        self.assertEqual(len(kills), KILLS)

        refused = {m: r for m, r in results.items() if r[1] != 0}
        self.assertEqual(refused, {}, "sendmail does not need the server: every submission must be taken")
        accepted = {m: r[0] for m, r in results.items() if r[1] == 0}
        self.assertEqual(len(accepted), MESSAGES)

        def delivered():
            """marker -> list of (maildir, Delivered-To line ok) for every delivered file."""
            seen = {}
            for path in inst.all_delivered():
                data = path.read_bytes()
                m = TEST_ID.search(data.split(b"\n\n", 1)[0])
                marker = m.group(1).decode() if m else f"?{path.name}"
                seen.setdefault(marker, []).append((path.parent.parent.name, data))
            return seen

        def settled():
            seen = delivered()
            if set(accepted) - set(seen):
                return None
            if inst.maildrop_waiting():
                return None
            if "Mail queue is empty" not in inst.queue_list():
                return None
            return seen

        def describe():
            seen = delivered()
            missing = sorted(set(accepted) - set(seen))
            return (f"{len(missing)} accepted message(s) never delivered: {missing[:20]}\n"
                    f"maildrop/new: {[p.name for p in inst.maildrop_waiting()][:20]}\n"
                    f"queue:\n{inst.queue_list()[:3000]}\n"
                    f"last server log:\n{server.log()[-5000:]}")

        seen = wait_until(settled, timeout=60, interval=0.25, describe=describe)

        unknown = sorted(set(seen) - set(accepted))
        self.assertEqual(unknown, [], "delivered files without a known X-Test-Id")
        for marker, copies in seen.items():
            for maildir, data in copies:
                rcpt = accepted[marker]
                self.assertEqual(maildir, rcpt, marker)
                self.assertIn(f"Delivered-To: {rcpt}\n".encode(), data)
                i = int(marker.split("-")[1])
                self.assertIn(f"message {i} of {MESSAGES}\n".encode(), data, f"{marker} arrived damaged")
        duplicates = sum(len(c) - 1 for c in seen.values())
        duplicated = sorted(m for m, c in seen.items() if len(c) > 1)
        sys.stderr.write(f"[crash test] {len(accepted)} accepted, {len(seen)} delivered, "
                         f"{duplicates} duplicate deliveries {duplicated[:10]}\n")
        self.assertLessEqual(duplicates, KILLS * MAX_PARALLEL)

        # Nothing left behind: no drop waiting, none set aside as corrupt or refused.
        self.assertEqual(inst.maildrop_waiting(), [])
        for sub in ("corrupt", "rejected"):
            d = inst.maildrop / sub
            self.assertEqual(sorted(os.listdir(d)) if d.is_dir() else [], [], f"maildrop/{sub}")
        self.assertIn("Mail queue is empty", inst.queue_list())
        self.assertEqual(server.stop(), 0, server.log()[-3000:])


if __name__ == "__main__":
    unittest.main()

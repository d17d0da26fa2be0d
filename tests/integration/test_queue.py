"""`postern queue …` and the delivery engine's outcomes (deferral, failure, DSNs, expiry),
driven through the scripted test transport: fail…@ gets 550 5.1.1, defer…@ gets 451 4.4.1,
everything else is written to <data>/scripted/<queue id>.<index>.eml."""

import re
import time
import unittest

from postern_harness import PosternTestCase, TEST_PLUGIN_DIR, files_containing, parse_message, wait_until

SENDER = "sender@example.org"


class QueueTestCase(PosternTestCase):
    def scripted_install(self, **delivery):
        settings = {"retry_schedule": ["1h"], "jitter": 0.0}
        settings.update(delivery)
        return self.install(transports=["scripted"], plugin_dirs=[TEST_PLUGIN_DIR], delivery=settings,
                            extra='[transports.scripted]\ndirectory = "scripted"\n')

    def submit(self, inst, *recipients, sender=SENDER, subject="queue test"):
        before = len(inst.queued_ids())
        inst.check_sendmail("-f", sender, *recipients, message=f"Subject: {subject}\n\nbody\n")
        return inst.wait_for_queued(before + 1)[-1]

    def events(self, inst, queue_id):
        """The event lines of `queue show`, without their time stamps."""
        out, inside = [], False
        for line in inst.queue_show(queue_id).splitlines():
            if line == "events:":
                inside = True
                continue
            if inside:
                if not line.startswith("  "):
                    break
                # "  Tue Nov 24 08:40:42 deferred <a@x> via scripted: 451 …"
                out.append(re.sub(r"^\s+\w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2} ", "", line))
        return out

    def wait_for_dsn(self, inst, needle):
        """The scripted .eml files that are reports (multipart/report) containing `needle`."""
        def found():
            return [p for p in files_containing(inst.scripted_dir, b"multipart/report") if needle in p.read_bytes()]
        return wait_until(found, describe=lambda: f"no DSN containing {needle!r}\n" + inst.diagnostics())


class Purge(QueueTestCase):
    def keep_content_install(self):
        """Delivery by the scripted transport; content kept for one second after the end."""
        return self.install(transports=["scripted"], plugin_dirs=[TEST_PLUGIN_DIR],
                            extra='[transports.scripted]\ndirectory = "scripted"\n[spool]\nkeep_content = "1s"\n')

    def test_purge_drops_content_past_keep_content_beside_a_running_server(self):
        inst = self.keep_content_install()
        inst.start_server()
        done = self.submit(inst, "kept@example.com")
        inst.wait_for_recipient(done, "kept@example.com", r"delivered")
        waiting = self.submit(inst, "defer1@example.com")
        inst.wait_for_recipient(waiting, "defer1@example.com", r"deferred")
        self.assertIn("Subject: queue test", inst.queue_show(done), "content kept for resends at first")
        time.sleep(1.5)
        out = inst.check_run("queue", "purge").stdout
        self.assertEqual(out, "purge: dropped the content of 1 message(s) finished before spool.keep_content, "
                              "deleted 0 message(s) finished before spool.keep_history\n")
        self.assertIn("content:    no longer kept", inst.queue_show(done))
        self.assertIn("Subject: queue test", inst.queue_show(waiting), "mail still waiting keeps its content")
        # Done again, nothing is left to do; the server goes on delivering.
        self.assertIn("dropped the content of 0 message(s)", inst.check_run("queue", "purge").stdout)
        after = self.submit(inst, "after@example.com")
        inst.wait_for_recipient(after, "after@example.com", r"delivered")

    def test_purge_that_cannot_read_its_storage_says_why_and_changes_nothing(self):
        inst = self.keep_content_install()
        server = inst.start_server()
        done = self.submit(inst, "kept@example.com")
        inst.wait_for_recipient(done, "kept@example.com", r"delivered")
        self.assertEqual(server.stop(), 0, server.log())
        # Purge reads the campaigns (their mail is kept while they run): a damaged campaigns.db
        # is a storage error, not a reason to drop anything.
        (inst.data / "campaigns.db").write_bytes(b"this is not an SQLite database" * 200)
        time.sleep(1.5)
        proc = inst.run("queue", "purge")
        self.assertEqual(proc.returncode, 70, proc.stdout + proc.stderr)
        self.assertRegex(proc.stderr, r"^postern: .*not a database", proc.stderr)
        self.assertEqual(proc.stdout, "")
        self.assertIn("Subject: queue test", inst.queue_show(done), "the content is still there")


class DeferredMail(QueueTestCase):
    def test_deferred_recipient_is_listed_with_its_reply_and_events(self):
        inst = self.scripted_install()
        inst.start_server()
        queue_id = self.submit(inst, "defer1@example.com")
        inst.wait_for_recipient(queue_id, "defer1@example.com", r"deferred, attempts 1\b")

        listing = inst.queue_list()
        self.assertRegex(listing, rf"(?m)^{queue_id} +\d+ .*  {re.escape(SENDER)}$")
        self.assertRegex(listing, r"(?m)^ {50}\(451 4\.4\.1 try again later\)$")
        self.assertRegex(listing, r"(?m)^ {50}defer1@example\.com$")
        self.assertIn("-- 1 Kbytes in 1 Request.", listing)

        show = inst.queue_show(queue_id)
        self.assertIn(f"queue id:   {queue_id}\n", show)
        self.assertIn(f"sender:     <{SENDER}>\n", show)
        self.assertIn("source:     local\n", show)
        self.assertRegex(show, r"<defer1@example\.com> deferred, attempts 1, next .*, via scripted, "
                               r"last: 451 4\.4\.1 try again later")
        self.assertIn("Subject: queue test", show, "show prints the headers")
        self.assertEqual(self.events(inst, queue_id), [
            f"accepted <defer1@example.com>: 250 2.0.0 queued as {queue_id}",
            "deferred <defer1@example.com> via scripted: 451 4.4.1 try again later",
        ])
        # The queue is read from the spool, with or without a server.
        inst.servers[-1].stop()
        self.assertEqual(inst.queue_ids(), [(queue_id, False)])
        self.assertEqual(list(inst.scripted_dir.glob("*.eml")) if inst.scripted_dir.exists() else [], [])

    def test_hold_release_delete(self):
        # Retried every second: a held message must see no attempt for several of those.
        inst = self.scripted_install(retry_schedule=["1s"])
        inst.start_server()
        queue_id = self.submit(inst, "defer2@example.com")
        inst.wait_for_recipient(queue_id, "defer2@example.com", r"deferred, attempts [2-9]")

        self.assertEqual(inst.check_run("queue", "hold", queue_id).stdout, "hold: 1 message(s)\n")
        self.assertEqual(inst.queue_ids(), [(queue_id, True)], "a held message has '!' after its id")
        self.assertIn(f"queue id:   {queue_id} (held)", inst.queue_show(queue_id))
        time.sleep(1.5)  # an attempt in flight when the hold landed may still finish
        held_at = inst.attempts(queue_id, "defer2@example.com")
        time.sleep(3)
        self.assertEqual(inst.attempts(queue_id, "defer2@example.com"), held_at, "attempts while held")
        again = inst.run("queue", "hold", queue_id)
        self.assertEqual(again.returncode, 1, "holding a held message changes nothing")

        self.assertEqual(inst.check_run("queue", "release", queue_id).stdout, "release: 1 message(s)\n")
        self.assertEqual(inst.queue_ids(), [(queue_id, False)])
        inst.wait_for_recipient(queue_id, "defer2@example.com", rf"attempts (?!{held_at}\b)\d+")

        self.assertEqual(inst.check_run("queue", "delete", queue_id).stdout, "delete: 1 message(s)\n")
        self.assertIn("Mail queue is empty", inst.queue_list())
        deleted_at = inst.attempts(queue_id, "defer2@example.com")
        self.assertRegex(inst.recipient_line(queue_id, "defer2@example.com"),
                         r"failed, attempts \d+.*last: 550 5\.0\.0 deleted by the operator")
        events = self.events(inst, queue_id)
        for kind in ("held", "released", "deleted"):
            self.assertIn(kind, events)
        self.assertEqual(events[-1], "deleted")
        self.assertIn("content:    no longer kept", inst.queue_show(queue_id))
        time.sleep(2)
        self.assertEqual(inst.attempts(queue_id, "defer2@example.com"), deleted_at, "attempts after delete")
        self.assertIn("Mail queue is empty", inst.queue_list())
        self.assertNotIn("dsn", [e.split()[0] for e in self.events(inst, queue_id)])

    def test_flush_retries_at_once(self):
        inst = self.scripted_install(retry_schedule=["1h"])
        inst.start_server()
        queue_id = self.submit(inst, "defer3@example.com")
        inst.wait_for_recipient(queue_id, "defer3@example.com", r"deferred, attempts 1\b")
        time.sleep(1.5)  # six poll intervals: without a flush nothing is due for an hour
        self.assertEqual(inst.attempts(queue_id, "defer3@example.com"), 1)

        self.assertEqual(inst.check_run("queue", "flush", queue_id).stdout, "flush: 1 recipient(s)\n")
        inst.wait_for_recipient(queue_id, "defer3@example.com", r"deferred, attempts 2\b", timeout=10)
        self.assertEqual(inst.check_run("queue", "flush").stdout, "flush: 1 recipient(s)\n")
        inst.wait_for_recipient(queue_id, "defer3@example.com", r"deferred, attempts 3\b", timeout=10)
        self.assertEqual(self.events(inst, queue_id).count(
            "deferred <defer3@example.com> via scripted: 451 4.4.1 try again later"), 3)

    def test_unknown_ids(self):
        inst = self.scripted_install()
        show = inst.run("queue", "show", "0000000000000000")
        self.assertEqual(show.returncode, 66, show.stderr)  # EX_NOINPUT
        self.assertIn("no message 0000000000000000", show.stderr)
        for action in ("hold", "release", "delete", "flush"):
            with self.subTest(action=action):
                proc = inst.run("queue", action, "0000000000000000")
                self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
                self.assertIn("no pending message 0000000000000000", proc.stderr)


class FailedMail(QueueTestCase):
    def test_failed_recipient_gets_a_dsn_to_the_sender(self):
        inst = self.scripted_install()
        inst.start_server()
        queue_id = self.submit(inst, "ok@example.com", "fail1@example.com")
        [dsn_file] = self.wait_for_dsn(inst, b"fail1@example.com")
        dsn = dsn_file.read_bytes()
        # Written for the sender: the DSN's own queue id names the file; recipient index 0.
        self.assertTrue(dsn_file.name.endswith(".0.eml"), dsn_file.name)
        self.assertNotEqual(dsn_file.name.split(".")[0], queue_id)
        msg = parse_message(dsn)
        self.assertEqual(msg["To"], f"<{SENDER}>")
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertRegex(msg["From"], r"MAILER-DAEMON@")
        self.assertEqual(msg["Auto-Submitted"], "auto-replied")
        parts = [p.get_content_type() for p in msg.get_payload()]
        self.assertEqual(parts, ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        self.assertIn(b"Status: 5.1.1", dsn)
        self.assertIn(b"Action: failed", dsn)
        self.assertIn(b"Final-Recipient: rfc822; fail1@example.com", dsn)
        self.assertIn(b"Diagnostic-Code: smtp; 550 5.1.1 no such user", dsn)
        self.assertIn(f"X-Postern-Queue-ID: {queue_id}".encode(), dsn)
        self.assertNotIn(b"ok@example.com", dsn.split(b"text/rfc822-headers")[0],
                         "the delivered recipient is not reported")
        # The delivered recipient got its copy; the DSN was delivered with the null sender.
        self.assertTrue((inst.scripted_dir / f"{queue_id}.0.eml").exists())
        inst.wait_for_queue_empty()
        self.assertRegex(inst.recipient_line(queue_id, "fail1@example.com"),
                         r"failed, attempts 1, via scripted, last: 550 5\.1\.1 no such user")
        self.assertRegex(inst.recipient_line(queue_id, "ok@example.com"), r"delivered, attempts 1, via scripted")
        events = self.events(inst, queue_id)
        self.assertIn("failed <fail1@example.com> via scripted: 550 5.1.1 no such user", events)
        self.assertTrue(any(e.startswith(f"dsn <{SENDER}>: 250 2.0.0 report queued as ") for e in events), events)
        dsn_id = dsn_file.name.split(".")[0]
        self.assertIn("sender:     <>", inst.queue_show(dsn_id))

    def test_null_sender_failure_makes_no_dsn(self):
        inst = self.scripted_install()
        inst.start_server()
        queue_id = self.submit(inst, "fail2@example.com", sender="<>")
        inst.wait_for_recipient(queue_id, "fail2@example.com", r"failed, attempts 1\b")
        self.assertIn("sender:     <>\n", inst.queue_show(queue_id))
        # A DSN would have been stored with the failure, in the same commit.
        self.assertEqual(self.events(inst, queue_id)[1:],
                         ["failed <fail2@example.com> via scripted: 550 5.1.1 no such user"])
        time.sleep(1)
        self.assertIn("Mail queue is empty", inst.queue_list())
        self.assertEqual(list(inst.scripted_dir.glob("*.eml")) if inst.scripted_dir.exists() else [], [])
        self.assertNotIn("non-delivery notification", inst.server_logs())

    def test_undeliverable_dsn_makes_no_further_report(self):
        inst = self.scripted_install()
        inst.start_server()
        # The DSN to a sender that defers waits in the queue, sent by MAILER-DAEMON.
        deferring = self.submit(inst, "fail3@example.com", sender="defer-bounce@example.org")
        inst.wait_for_recipient(deferring, "fail3@example.com", r"failed, attempts 1\b")
        dsn_id = wait_until(lambda: [i for i, _ in inst.queue_ids() if i != deferring], describe=inst.diagnostics)[0]
        inst.wait_for_recipient(dsn_id, "defer-bounce@example.org", r"deferred, attempts 1\b")
        listing = inst.queue_list()
        self.assertRegex(listing, rf"(?m)^{dsn_id} +\d+ .*  MAILER-DAEMON$")
        self.assertRegex(listing, r"(?m)^ {50}defer-bounce@example\.org$")
        self.assertIn("sender:     <>", inst.queue_show(dsn_id))
        self.assertIn("source:     dsn", inst.queue_show(dsn_id))

        # The DSN to a sender that fails is dropped: a report about a report is never sent.
        failing = self.submit(inst, "fail4@example.com", sender="fail-bounce@example.org")
        inst.wait_for_recipient(failing, "fail4@example.com", r"failed, attempts 1\b")
        dsn_events = [e for e in self.events(inst, failing) if e.startswith("dsn ")]
        self.assertEqual(len(dsn_events), 1, dsn_events)
        second = dsn_events[0].rsplit(" ", 1)[1]
        inst.wait_for_recipient(second, "fail-bounce@example.org", r"failed, attempts 1\b")
        self.assertEqual([e.split()[0] for e in self.events(inst, second)], ["accepted", "failed"])
        time.sleep(1)
        self.assertEqual(sorted(i for i, _ in inst.queue_ids()), [dsn_id])
        self.assertEqual(list(inst.scripted_dir.glob("*.eml")) if inst.scripted_dir.exists() else [], [])

    def test_expired_deferral_fails_with_4_4_7_and_a_dsn(self):
        inst = self.scripted_install(retry_schedule=["1s"], max_age="3s", poll_interval="250ms")
        inst.start_server()
        started = time.monotonic()
        queue_id = self.submit(inst, "defer4@example.com")
        line = inst.wait_for_recipient(queue_id, "defer4@example.com", r"failed", timeout=20)
        self.assertGreaterEqual(time.monotonic() - started, 2.5, "failed before max_age")
        self.assertRegex(line, r"last: 451 4\.4\.7 message expired in the queue; last reply: "
                               r"451 4\.4\.1 try again later")
        attempts = int(re.search(r"attempts (\d+)", line).group(1))
        self.assertGreaterEqual(attempts, 3, line)
        events = self.events(inst, queue_id)
        self.assertEqual(events[0].split()[0], "accepted")
        self.assertEqual([e.split()[0] for e in events[1:-2]], ["deferred"] * (attempts - 1), events)
        self.assertTrue(events[-2].startswith("failed <defer4@example.com> via scripted: 451 4.4.7 message expired"),
                        events)
        self.assertTrue(events[-1].startswith(f"dsn <{SENDER}>"), events)

        [dsn_file] = self.wait_for_dsn(inst, b"defer4@example.com")
        dsn = dsn_file.read_bytes()
        self.assertEqual(parse_message(dsn)["To"], f"<{SENDER}>")
        self.assertIn(b"Status: 4.4.7", dsn)
        self.assertIn(b"Action: failed", dsn)
        inst.wait_for_queue_empty()


if __name__ == "__main__":
    unittest.main()


class SendmailDsnOptions(QueueTestCase):
    """sendmail's -N, -R and -V reach the DSNs the engine sends (RFC 3461 semantics)."""

    def test_notify_never_suppresses_the_report(self):
        inst = self.scripted_install()
        inst.start_server()
        before = len(inst.queued_ids())
        inst.check_sendmail("-N", "never", "-f", SENDER, "fail-never@example.com", message="Subject: n\n\nbody\n")
        queue_id = inst.wait_for_queued(before + 1)[-1]
        inst.wait_for_recipient(queue_id, "fail-never@example.com", r"failed")
        time.sleep(0.5)
        self.assertEqual(files_containing(inst.scripted_dir, b"multipart/report"), [])
        self.assertFalse(any(e.startswith("dsn") for e in self.events(inst, queue_id)))

    def test_envid_and_ret_full_come_back_in_the_report(self):
        inst = self.scripted_install()
        inst.start_server()
        inst.check_sendmail("-V", "order-4711", "-R", "full", "-N", "failure,delay", "-f", SENDER,
                            "fail-envid@example.com", message="Subject: with envid\n\nTHE ORIGINAL BODY\n")
        [report] = self.wait_for_dsn(inst, b"Original-Envelope-Id: order-4711")
        data = report.read_bytes()
        self.assertIn(b"Content-Type: message/rfc822", data)
        self.assertIn(b"THE ORIGINAL BODY", data)

    def test_notify_success_asks_for_a_delivery_report(self):
        inst = self.scripted_install()
        inst.start_server()
        inst.check_sendmail("-N", "success", "-f", SENDER, "happy@example.com", message="Subject: s\n\nbody\n")
        [report] = self.wait_for_dsn(inst, b"Action: delivered")
        self.assertIn(b"Final-Recipient: rfc822; happy@example.com", report.read_bytes())

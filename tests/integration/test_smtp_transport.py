"""The smtp transport against real SMTP servers on loopback: Postfix's smtp-sink for volume,
connection reuse and fail-over; a scripted server (smtp_peers.py) for STARTTLS, AUTH, reply
mapping and dropped connections; and `postern plugins` for what probe() says."""

import os
import re
import unittest

from postern_harness import PosternTestCase, toml_value, wait_until
from smtp_harness import certificate
from smtp_peers import ScriptedSmtpServer, SmtpSink, free_port

SENDER = "shop@example.com"


def message(subject, body="hello\n", headers=""):
    return f"From: Shop <{SENDER}>\nSubject: {subject}\n{headers}\n{body}"


class SmtpTransportTestCase(PosternTestCase):
    def smtp_install(self, **settings):
        extra = "[transports.smtp]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in settings.items())
        return self.install(transports=("smtp",), extra=extra)

    def send(self, inst, *recipients, subject="via smtp", body="hello\n", headers="", options=()):
        inst.check_sendmail("-f", SENDER, *options, *recipients, message=message(subject, body, headers))

    def smtp_row(self, inst):
        """The smtp line of `postern plugins`: (available, whole line)."""
        out = inst.check_run("plugins").stdout
        row = next((line for line in out.splitlines() if line.startswith("smtp ")), None)
        self.assertIsNotNone(row, out)
        available = re.match(r"smtp\s+transport\s+\S+\s+(yes|no)\s", row)
        self.assertIsNotNone(available, row)
        return available.group(1) == "yes", row


class SmtpSinkDelivery(SmtpTransportTestCase):
    def test_many_messages_over_few_reused_connections(self):
        sink = SmtpSink(self)
        inst = self.smtp_install(relays=[sink.relay], max_connections=2)
        inst.start_server()
        for i in range(20):
            self.send(inst, f"user{i}@example.com", subject=f"bulk {i}")
        self.send(inst, "ann@example.com", "bob@example.com", "cy@example.com", subject="three at once")
        ids = inst.wait_for_queued(21)
        inst.wait_for_queue_empty(timeout=60)
        for queue_id in ids[:2] + ids[-1:]:
            for line in inst.queue_show(queue_id).splitlines():
                if "attempts" in line:
                    self.assertRegex(line, r"delivered, attempts 1, via smtp, last: 250 ", line)

        dumps = sink.wait_for_dumps(21)
        subjects = sorted(re.search(rb"^Subject: (.*)$", d, re.M).group(1).decode() for d in dumps)
        self.assertEqual(subjects, sorted([f"bulk {i}" for i in range(20)] + ["three at once"]))
        three = next(d for d in dumps if b"Subject: three at once" in d)
        mail, rcpts = SmtpSink.envelope(three)
        self.assertEqual(rcpts, ["<ann@example.com>", "<bob@example.com>", "<cy@example.com>"],
                         "three recipients in one transaction")
        self.assertEqual(mail, f"<{SENDER}>")
        # At most max_connections for the mail, plus the probe's at start-up: connections are reused.
        self.assertLessEqual(sink.connections(), 3, sink.log()[-2000:])
        self.assertGreaterEqual(sink.commands("RSET"), 1, "a reused connection starts with RSET")
        self.assertEqual(sink.commands("MAIL"), 21)

    def test_recipients_beyond_max_recipients_are_split(self):
        sink = SmtpSink(self)
        inst = self.smtp_install(relays=[sink.relay], max_recipients=50)
        inst.start_server()
        recipients = [f"r{i:03}@example.com" for i in range(120)]
        self.send(inst, *recipients, subject="split")
        [queue_id] = inst.wait_for_queued(1)
        inst.wait_for_queue_empty(timeout=60)
        counts = sorted(len(SmtpSink.envelope(d)[1]) for d in sink.wait_for_dumps(3))
        self.assertEqual(counts, [20, 50, 50])
        got = sorted(r for d in sink.dumps() for r in SmtpSink.envelope(d)[1])
        self.assertEqual(got, sorted(f"<{r}>" for r in recipients))
        self.assertRegex(inst.recipient_line(queue_id, "r119@example.com"), r"delivered")

    def test_fails_over_to_the_second_relay(self):
        sink = SmtpSink(self)
        dead = free_port()
        inst = self.smtp_install(relays=[f"127.0.0.1:{dead}", sink.relay])
        inst.start_server()
        self.send(inst, "ann@example.com", subject="fail-over")
        [queue_id] = inst.wait_for_queued(1)
        inst.wait_for_recipient(queue_id, "ann@example.com", r"delivered, attempts 1, via smtp, last: 250 ")
        [dump] = sink.wait_for_dumps(1)
        self.assertIn(b"Subject: fail-over", dump)
        self.assertIn(f"relay 127.0.0.1:{dead}: cannot connect: Connection refused", inst.server_logs())


class Pipelining(SmtpTransportTestCase):
    def test_envelope_goes_in_one_write_when_offered_and_command_by_command_when_not(self):
        for pipelining in (True, False):
            with self.subTest(pipelining=pipelining):
                server = ScriptedSmtpServer(self, pipelining=pipelining)
                inst = self.smtp_install(relays=[server.relay])
                inst.start_server()
                self.send(inst, "ann@example.com", "bob@example.com", subject="pipelined?")
                [queue_id] = inst.wait_for_queued(1)
                for address in ("ann@example.com", "bob@example.com"):
                    inst.wait_for_recipient(queue_id, address, r"delivered, .*last: 250 2\.0\.0 Ok: queued as SCRIPTED1")
                [t] = server.wait_for_transactions(1)
                self.assertEqual(t.pipelined, pipelining, server.commands)
                self.assertEqual(t.rcpts, ["RCPT TO:<ann@example.com>", "RCPT TO:<bob@example.com>"])
                self.assertIn(b"Subject: pipelined?", t.data)

    def test_envelope_parameters_are_passed_on(self):
        server = ScriptedSmtpServer(self)
        inst = self.smtp_install(relays=[server.relay])
        inst.start_server()
        inst.check_sendmail("-f", SENDER, "-N", "success,failure", "-R", "hdrs", "-V", "ENV-42", "ann@example.com",
                            message=message("Gr\u00fc\u00dfe", body="\u00fcber alles\n.leading dot\n"))
        [t] = server.wait_for_transactions(1)
        self.assertRegex(t.mail, r"^MAIL FROM:<shop@example\.com> SIZE=\d+ BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=ENV-42$")
        self.assertEqual(t.rcpts, ["RCPT TO:<ann@example.com> NOTIFY=SUCCESS,FAILURE"])
        self.assertIn("\u00fcber alles\n.leading dot\n".encode(), t.data.replace(b"\r\n", b"\n"),
                      "8-bit content and a leading dot arrive intact")


class TlsAndAuth(SmtpTransportTestCase):
    def tls_server(self, **kw):
        return ScriptedSmtpServer(self, certificate=certificate(), user="relayuser", password="relay-pass", **kw)

    def test_starttls_then_auth_plain_delivers_and_the_password_stays_out_of_the_log(self):
        server = self.tls_server()
        os.environ["POSTERN_TEST_RELAY_PASSWORD"] = "relay-pass"
        self.addCleanup(os.environ.pop, "POSTERN_TEST_RELAY_PASSWORD", None)
        # By name: the certificate's name is checked and sent as SNI.
        inst = self.smtp_install(relays=[f"localhost:{server.port}"], username="relayuser",
                                 password_env="POSTERN_TEST_RELAY_PASSWORD", tls_ca_file=str(certificate()[0]))
        available, row = self.smtp_row(inst)
        self.assertTrue(available, row)
        self.assertIn("certificate verified", row)
        inst.start_server()
        self.send(inst, "ann@example.com", subject="secret")
        [queue_id] = inst.wait_for_queued(1)
        inst.wait_for_recipient(queue_id, "ann@example.com", r"delivered, attempts 1, via smtp, last: 250 ")
        [t] = server.wait_for_transactions(1)
        self.assertTrue(t.tls)
        self.assertEqual(t.user, "relayuser")
        self.assertIn("localhost", server.server_names)
        self.assertEqual([(m, u, ok) for _, m, u, ok in server.auth_attempts], [("PLAIN", "relayuser", True)])
        self.assertNotIn("relay-pass", inst.server_logs())

    def test_auth_login_when_plain_is_not_offered(self):
        server = self.tls_server(auth_mechanisms=("LOGIN",))
        inst = self.smtp_install(relays=[server.relay], username="relayuser", password="relay-pass",
                                 tls_ca_file=str(certificate()[0]))
        inst.start_server()
        self.send(inst, "ann@example.com")
        [queue_id] = inst.wait_for_queued(1)
        inst.wait_for_recipient(queue_id, "ann@example.com", r"delivered")
        self.assertEqual([(m, ok) for _, m, _, ok in server.auth_attempts], [("LOGIN", True)])

    def test_wrong_credentials_fail_or_defer_as_the_relay_says(self):
        for reply, state in (("535 5.7.8 Error: authentication failed", "failed"),
                             ("454 4.7.0 Temporary authentication failure", "deferred")):
            with self.subTest(reply=reply):
                server = self.tls_server(auth_failure=reply)
                inst = self.smtp_install(relays=[server.relay], username="relayuser", password="wrong",
                                         tls_ca_file=str(certificate()[0]))
                inst.start_server()
                self.send(inst, "ann@example.com")
                [queue_id] = inst.wait_for_queued(1)
                code = reply.split(" ", 2)
                line = inst.wait_for_recipient(queue_id, "ann@example.com",
                                               rf"{state}, attempts 1, .*last: {code[0]} {re.escape(code[1])} ")
                self.assertIn(f"relay {server.relay}: AUTH refused", line)
                self.assertEqual(server.transactions, [])

    def test_tls_required_against_a_relay_without_starttls_defers(self):
        server = ScriptedSmtpServer(self)
        inst = self.smtp_install(relays=[server.relay], tls="required")
        # Usable once fixed without a restart: available, with the problem named.
        available, row = self.smtp_row(inst)
        self.assertTrue(available, row)
        self.assertIn("deliveries through it will be deferred", row)
        self.assertIn("does not offer STARTTLS", row)
        inst.start_server()
        self.send(inst, "ann@example.com")
        [queue_id] = inst.wait_for_queued(1)
        line = inst.wait_for_recipient(queue_id, "ann@example.com", r"deferred, attempts 1, ")
        self.assertIn(f"451 4.7.4 relay {server.relay}: does not offer STARTTLS, and tls = \"required\"", line)
        self.assertEqual(server.transactions, [])

    def test_an_unverifiable_certificate_defers_and_names_the_problem(self):
        # The default: verification against the system CA store, which does not know the test's CA.
        server = self.tls_server()
        inst = self.smtp_install(relays=[server.relay], username="relayuser", password="relay-pass")
        available, row = self.smtp_row(inst)
        self.assertTrue(available, row)
        self.assertIn("deliveries through it will be deferred", row)
        self.assertIn("self-signed certificate", row)
        inst.start_server()
        self.send(inst, "ann@example.com")
        [queue_id] = inst.wait_for_queued(1)
        line = inst.wait_for_recipient(queue_id, "ann@example.com", r"deferred, attempts 1, ")
        self.assertRegex(line, r"last: 451 4\.7\.5 relay 127\.0\.0\.1:\d+: TLS handshake failed: "
                               r"certificate verification failed: self-signed certificate")
        self.assertEqual(server.auth_attempts, [], "no credentials before the certificate is trusted")

    def test_credentials_are_not_sent_in_clear_text(self):
        server = ScriptedSmtpServer(self, user="relayuser", password="relay-pass")  # AUTH without TLS
        inst = self.smtp_install(relays=[server.relay], username="relayuser", password="relay-pass",
                                 tls="opportunistic")
        inst.start_server()
        self.send(inst, "ann@example.com")
        [queue_id] = inst.wait_for_queued(1)
        line = inst.wait_for_recipient(queue_id, "ann@example.com", r"deferred, attempts 1, ")
        self.assertIn("credentials were not sent", line)
        self.assertEqual(server.auth_attempts, [])


class ReplyMapping(SmtpTransportTestCase):
    def test_each_recipient_gets_its_own_reply(self):
        server = ScriptedSmtpServer(self, rcpt_replies={
            "unknown@example.com": "550 5.1.1 <unknown@example.com>: Recipient address rejected: User unknown",
            "grey@example.com": "451 4.7.1 <grey@example.com>: Recipient address rejected: Greylisted",
        })
        inst = self.smtp_install(relays=[server.relay])
        inst.start_server()
        self.send(inst, "unknown@example.com", "grey@example.com", "ok@example.com", subject="mixed")
        [queue_id] = inst.wait_for_queued(1)
        inst.wait_for_recipient(queue_id, "unknown@example.com",
                                r"failed, attempts 1, via smtp, last: 550 5\.1\.1 <unknown@example\.com>: "
                                r"Recipient address rejected: User unknown$")
        inst.wait_for_recipient(queue_id, "grey@example.com",
                                r"deferred, attempts 1, .*via smtp, last: 451 4\.7\.1 <grey@example\.com>: "
                                r"Recipient address rejected: Greylisted$")
        inst.wait_for_recipient(queue_id, "ok@example.com",
                                r"delivered, attempts 1, via smtp, last: 250 2\.0\.0 Ok: queued as SCRIPTED1$")
        first = server.wait_for_transactions(1)[0]
        self.assertEqual(len(first.rcpts), 3, "one transaction for the three")
        self.assertIn(b"Subject: mixed", first.data)

    def test_a_connection_dropped_after_data_defers_everyone(self):
        server = ScriptedSmtpServer(self, drop_after_data=True,
                                    rcpt_replies={"unknown@example.com": "550 5.1.1 User unknown"})
        inst = self.smtp_install(relays=[server.relay])
        inst.start_server()
        self.send(inst, "ann@example.com", "bob@example.com", "unknown@example.com")
        [queue_id] = inst.wait_for_queued(1)
        for address in ("ann@example.com", "bob@example.com"):
            line = inst.wait_for_recipient(queue_id, address, r"deferred, attempts 1, ")
            self.assertRegex(line, r"last: 451 4\.4\.2 relay 127\.0\.0\.1:\d+: the relay closed the connection "
                                   r"waiting for the reply to the end of the message; the relay may or may not "
                                   r"have taken the message")
        inst.wait_for_recipient(queue_id, "unknown@example.com", r"failed, attempts 1, .*last: 550 5\.1\.1 ")


class Probe(SmtpTransportTestCase):
    def test_available_when_the_first_reachable_relay_answers(self):
        sink = SmtpSink(self)
        inst = self.smtp_install(relays=[f"127.0.0.1:{free_port()}", sink.relay])
        available, row = self.smtp_row(inst)
        self.assertTrue(available, row)
        self.assertIn(f"relay {sink.relay} answers EHLO: ESMTP PIPELINING", row)
        self.assertIn("Connection refused", row)
        self.assertEqual(sink.commands("MAIL"), 0, "a probe sends no mail")

    def test_unavailable_with_a_reason(self):
        port = free_port()
        cases = [
            ({}, "no relay configured (set relays = [\"host:port\"] in "),
            ({"relays": ["nonexistent.invalid:25"]}, "relay nonexistent.invalid:25: cannot resolve nonexistent.invalid"),
            ({"relays": [f"127.0.0.1:{port}"]}, f"relay 127.0.0.1:{port}: cannot connect: Connection refused"),
        ]
        for settings, reason in cases:
            with self.subTest(settings=settings):
                inst = self.smtp_install(**settings)
                available, row = self.smtp_row(inst)
                self.assertFalse(available, row)
                self.assertIn(reason, row)

    def test_a_bad_setting_is_refused_with_its_key(self):
        inst = self.smtp_install(relays=["mail.example.com:99999"])
        proc = inst.run("plugins")
        self.assertIn("relays entry \"mail.example.com:99999\" has port", proc.stdout + proc.stderr)


if __name__ == "__main__":
    unittest.main()

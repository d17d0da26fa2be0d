"""The SMTP submission server, driven by real clients: Python's smtplib, swaks and msmtp, and
raw sockets for what clients do not normally send (pipelining bursts, smuggling attempts,
garbage). Mail is delivered by the file transport into Maildirs."""

import smtplib
import socket
import ssl
import subprocess
import time
import unittest

from postern_harness import TEST_PLUGIN_DIR, header_lines, parse_message, wait_until
from smtp_harness import Dialogue, SmtpTestCase, certificate, client_context


class Submission(SmtpTestCase):
    def test_trusted_network_submits_without_auth(self):
        inst = self.smtp_install()
        self.start(inst)
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            s.sendmail("app@shop.example", ["ann@example.com"], "Subject: plain\r\nX-Test: 1\r\n\r\nhello\r\n")
        [data] = inst.wait_for_maildir("ann@example.com")
        received = [l for l in header_lines(data) if l.startswith("Received:")][0]
        self.assertIn("with ESMTP id", received)
        self.assertIn("[127.0.0.1]", received)
        self.assertTrue(data.endswith(b"\n\nhello\n"), data[-40:])

    def test_the_250_after_data_names_the_queue_id(self):
        inst = self.smtp_install()
        self.start(inst)
        d = Dialogue(self.port)
        self.assertEqual(d.reply()[0], 220)
        d.command("EHLO client.example")
        d.command("MAIL FROM:<app@shop.example>")
        d.command("RCPT TO:<bob@example.com>")
        self.assertEqual(d.command("DATA")[0], 354)
        code, text = d.command("Subject: id\r\n\r\nx\r\n.")
        self.assertEqual(code, 250)
        queue_id = text.split()[-1]
        self.assertRegex(queue_id, r"^[0-9A-Z]{16}$")
        inst.wait_for_maildir("bob@example.com")
        self.assertIn(queue_id, inst.run("queue", "show", queue_id).stdout)

    def test_starttls_and_auth_plain_with_smtplib(self):
        inst = self.smtp_install(trusted=("10.99.0.0/16",))
        self.start(inst)
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            s.ehlo("client.example")
            self.assertFalse(s.has_extn("auth"), "no AUTH before TLS")
            s.starttls(context=client_context())
            s.ehlo("client.example")
            self.assertIn("PLAIN", s.esmtp_features["auth"])
            s.login("shop", "s3cret")
            s.sendmail("orders@shop.example", ["carol@example.com"], "Subject: tls\r\n\r\nsecret\r\n")
        [data] = inst.wait_for_maildir("carol@example.com")
        received = [l for l in header_lines(data) if l.startswith("Received:")][0]
        self.assertIn("with ESMTPSA id", received)
        self.assertIn("authenticated as shop", inst.servers[0].log())

    def test_implicit_tls_port(self):
        inst = self.smtp_install(trusted=("10.99.0.0/16",))
        self.start(inst)
        with smtplib.SMTP_SSL("127.0.0.1", self.tls_port, context=client_context()) as s:
            s.login("shop", "s3cret")
            s.sendmail("orders@shop.example", ["dan@example.com"], "Subject: implicit\r\n\r\nx\r\n")
        inst.wait_for_maildir("dan@example.com")

    def test_tls_1_1_is_refused(self):
        inst = self.smtp_install()
        self.start(inst)
        ctx = client_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        with self.assertRaises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError, OSError)):
            with smtplib.SMTP_SSL("127.0.0.1", self.tls_port, context=ctx, timeout=5) as s:
                s.noop()

    def test_auth_login_with_swaks(self):
        inst = self.smtp_install(trusted=("10.99.0.0/16",))
        self.start(inst)
        proc = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.port}", "--tls", "--tls-verify", "--tls-ca-path",
                               str(certificate()[0]), "--auth", "LOGIN", "--auth-user", "shop", "--auth-password",
                               "s3cret", "--from", "orders@shop.example", "--to", "erin@example.com", "--header",
                               "Subject: swaks"], capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("235 2.7.0", proc.stdout)
        inst.wait_for_maildir("erin@example.com")

    def test_msmtp_with_starttls_and_auth(self):
        inst = self.smtp_install(trusted=("10.99.0.0/16",))
        self.start(inst)
        rc = inst.root / "msmtprc"
        rc.write_text(f"account postern\nhost 127.0.0.1\nport {self.port}\nfrom orders@shop.example\n"
                      f"tls on\ntls_starttls on\ntls_trust_file {certificate()[0]}\n"
                      f"auth plain\nuser shop\npassword s3cret\naccount default : postern\n")
        rc.chmod(0o600)
        proc = subprocess.run(["msmtp", "-C", str(rc), "frank@example.com"], input=b"Subject: msmtp\n\nvia msmtp\n",
                              capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        [data] = inst.wait_for_maildir("frank@example.com")
        self.assertIn(b"via msmtp", data)

    def test_smtputf8_addresses_and_8bit_bodies(self):
        inst = self.smtp_install()
        self.start(inst)
        body = "Subject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße, déjà vu ✓\r\n"
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            s.ehlo()
            self.assertTrue(s.has_extn("smtputf8"))
            s.sendmail("expéditeur@shop.example", ["élève@école.example"], body.encode("utf-8"),
                       mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        [data] = inst.wait_for_maildir("élève@école.example")
        self.assertIn("Grüße, déjà vu ✓".encode(), data)
        self.assertIn("Return-Path: <expéditeur@shop.example>".encode(), data)

    def test_utf8_address_without_smtputf8_is_refused(self):
        inst = self.smtp_install()
        self.start(inst)
        d = Dialogue(self.port)
        d.reply()
        d.command("EHLO c")
        code, text = d.command("MAIL FROM:<expéditeur@shop.example>")
        self.assertEqual((code, text.split()[0]), (553, "5.6.7"))

    def test_a_20_mib_message(self):
        inst = self.smtp_install()
        self.start(inst)
        line = ("0123456789" * 7) + "\r\n"
        body = "Subject: big\r\n\r\n" + line * (20 * 1024 * 1024 // len(line))
        with smtplib.SMTP("127.0.0.1", self.port, timeout=120) as s:
            s.sendmail("app@shop.example", ["big@example.com"], body)
        [data] = inst.wait_for_maildir("big@example.com", timeout=60)
        lines = 20 * 1024 * 1024 // len(line)
        self.assertEqual(data.count(b"0123456789" * 7 + b"\n"), lines, "every line arrives (LF on disk)")

    def test_size_limit(self):
        inst = self.smtp_install()
        self.start(inst)
        d = Dialogue(self.port)
        d.reply()
        _, ehlo = d.command("EHLO c")
        self.assertIn("SIZE 52428800", ehlo)
        code, text = d.command("MAIL FROM:<a@shop.example> SIZE=60000000")
        self.assertEqual((code, text.split()[0]), (552, "5.3.4"))

    def test_data_over_the_size_limit_is_refused_after_it_is_read(self):
        inst = self.smtp_install(extra="[submission]\nmax_message_size = \"10KiB\"\n")
        self.start(inst)
        # No SIZE= in MAIL (smtplib would send one and be refused early): the limit bites in DATA.
        d = self.open_transaction("x@example.com")
        self.assertEqual(d.command("DATA")[0], 354)
        code, text = d.command("Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 500 + ".")
        self.assertEqual((code, text.split()[0]), (552, "5.3.4"))
        self.assertEqual(d.command("NOOP")[0], 250, "the session is still in step")
        self.assertEqual(inst.all_delivered(), [])


class Refusals(SmtpTestCase):
    def test_never_an_open_relay(self):
        inst = self.smtp_install(trusted=("10.99.0.0/16",))
        self.start(inst)
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            s.ehlo("outsider.example")
            code, text = s.mail("spammer@outsider.example")
            self.assertEqual(code, 530)
            self.assertIn(b"5.7.0 Authentication required", text)
            code, _ = s.rcpt("victim@elsewhere.example")
            self.assertEqual(code, 503)
            code, _ = s.docmd("DATA")
            self.assertEqual(code, 503)
        time.sleep(0.3)
        self.assertEqual(inst.queue_list().strip(), "Mail queue is empty")

    def test_auth_needs_tls(self):
        inst = self.smtp_install(trusted=("10.99.0.0/16",))
        self.start(inst)
        d = Dialogue(self.port)
        d.reply()
        _, ehlo = d.command("EHLO c")
        self.assertNotIn("AUTH", ehlo)
        code, text = d.command("AUTH PLAIN AHNob3AAczNjcmV0")
        self.assertEqual((code, text.split()[0]), (538, "5.7.11"))

    def test_bad_credentials_and_rate_limit(self):
        inst = self.smtp_install(trusted=("10.99.0.0/16",), smtp_extra="auth_max_failures = 3\n")
        self.start(inst)
        for attempt in range(3):
            with smtplib.SMTP("127.0.0.1", self.port) as s:
                s.starttls(context=client_context())
                s.ehlo()
                # One mechanism only: smtplib's login() would try PLAIN, then LOGIN.
                s.user, s.password = "shop", f"wrong-{attempt}"
                with self.assertRaises(smtplib.SMTPAuthenticationError) as caught:
                    s.auth("PLAIN", s.auth_plain)
                self.assertEqual(caught.exception.smtp_code, 535)
        # Blocked now, even with the right password.
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            s.starttls(context=client_context())
            s.ehlo()
            s.user, s.password = "shop", "s3cret"
            with self.assertRaises(smtplib.SMTPResponseException) as caught:
                s.auth("PLAIN", s.auth_plain)
            self.assertEqual(caught.exception.smtp_code, 421)
        self.assertNotIn("s3cret", inst.servers[0].log(), "passwords never reach the log")

    def test_protocol_errors(self):
        inst = self.smtp_install()
        self.start(inst)
        d = Dialogue(self.port)
        d.reply()
        self.assertEqual(d.command("MAIL FROM:<a@b.example>")[0], 503, "EHLO first")
        self.assertEqual(d.command("EHLO c")[0], 250)
        self.assertEqual(d.command("FROB")[0], 500)
        self.assertEqual(d.command("TURN")[0], 502)
        self.assertEqual(d.command("RCPT TO:<x@y.example>")[0], 503)
        self.assertEqual(d.command("DATA")[0], 503)
        self.assertEqual(d.command("MAIL FROM:a@b.example")[0], 501)
        self.assertEqual(d.command("MAIL FROM:<a@b.example> FOO=1")[0], 555)
        self.assertEqual(d.command("MAIL FROM:<not an address>")[0], 553)
        self.assertEqual(d.command("X" * 1200)[0], 500)
        self.assertEqual(d.command("VRFY someone")[0], 252)
        self.assertEqual(d.command("HELP")[0], 214)
        self.assertEqual(d.command("NOOP")[0], 250)
        self.assertEqual(d.command("RSET")[0], 250)
        self.assertEqual(d.command("QUIT")[0], 221)
        self.assertTrue(d.closed())

    def test_every_other_refusal(self):
        inst = self.smtp_install(trusted=("127.0.0.1/32",), smtp_extra="max_errors = 100\n")
        self.start(inst)
        d = Dialogue(self.port)
        d.reply()
        d.command("EHLO c")
        expect = [
            ("EXPN staff", 502, "5.5.1"),
            ("AUTH PLAIN", 538, "5.7.11"),  # before TLS
            ("MAIL FROM:<a@shop.example> BODY=BINARYMIME", 555, "5.5.4"),
            ("MAIL FROM:<a@shop.example> SIZE=lots", 501, "5.5.4"),
            ("MAIL FROM:<a@shop.example> RET=SOME", 501, "5.5.4"),
            ("MAIL FROM:<a@shop.example> ENVID=bad+zz", 501, "5.5.4"),
            ("DATA", 503, "5.5.1"),
            ("BDAT 0 LAST", 503, "5.5.1"),
            ("BDAT x", 501, "5.5.4"),
            ("BDAT 3 SOON", 501, "5.5.4"),
            ("MAIL FROM:<a@shop.example>", 250, "2.1.0"),
            ("MAIL FROM:<b@shop.example>", 503, "5.5.1"),  # nested
            ("DATA", 554, "5.5.1"),                        # no valid recipients
            ("RCPT TO:<r@example.com> NOTIFY=NEVER,SUCCESS", 501, "5.5.4"),
            ("RCPT TO:<r@example.com> NOTIFY=SOMETIMES", 501, "5.5.4"),
            ("RCPT TO:<r@example.com> ORCPT=nosemicolon", 501, "5.5.4"),
            ("RCPT TO:<r@example.com> FOO=BAR", 555, "5.5.4"),
            ("RCPT TO:<élève@école.example>", 553, "5.6.7"),  # no SMTPUTF8 in MAIL
            ("RCPT TO:<r@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;R+40example.com", 250, "2.1.5"),
            ("STARTTLS now", 501, "5.5.4"),
        ]
        for line, code, enhanced in expect:
            with self.subTest(line=line):
                got, text = d.command(line)
                self.assertEqual((got, text.split()[0]), (code, enhanced), text)
        # BDAT content is read even when refused, so the session stays in step.
        d.command("RSET")
        d.send("BDAT 5 LAST\r\nhello")
        self.assertEqual(d.reply()[0], 503)
        self.assertEqual(d.command("NOOP")[0], 250)

    def test_auth_refusals_after_tls(self):
        inst = self.smtp_install(trusted=("10.99.0.0/16",))
        self.start(inst)
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            s.starttls(context=client_context())
            s.ehlo("c")
            self.assertEqual(s.docmd("STARTTLS")[0], 503, "TLS is already on")
            self.assertEqual(s.docmd("AUTH CRAM-MD5")[0], 504)
            code, text = s.docmd("AUTH PLAIN")
            self.assertEqual(code, 334)
            self.assertEqual(s.docmd("*")[0], 501, "the client cancelled")
            self.assertEqual(s.docmd("AUTH PLAIN !!!notbase64")[0], 501)
            self.assertEqual(s.docmd("AUTH PLAIN AGZvbw==")[0], 501, "PLAIN needs two NULs")
            s.login("shop", "s3cret")
            self.assertEqual(s.docmd("AUTH PLAIN AHNob3AAczNjcmV0")[0], 503, "already authenticated")

    def test_starttls_without_a_certificate_is_454(self):
        inst = self.install(extra='[smtp]\nlisten = ["127.0.0.1:0"]\ntrusted_networks = ["127.0.0.1/32"]\n'
                                  'trusted_tenant = "local"\n[tenants.local]\n')
        server = inst.start_server()
        from smtp_harness import LISTENING
        port = int(wait_until(lambda: LISTENING.findall(server.log_since_start()))[0][1])
        d = Dialogue(port)
        d.reply()
        self.assertNotIn("STARTTLS", d.command("EHLO c")[1])
        code, text = d.command("STARTTLS")
        self.assertEqual((code, text.split()[0]), (454, "4.7.0"))

    def test_connection_limit_overall(self):
        inst = self.smtp_install(smtp_extra="max_connections = 2\n")
        self.start(inst)
        first, second = Dialogue(self.port), Dialogue(self.port)
        self.assertEqual(first.reply()[0], 220)
        self.assertEqual(second.reply()[0], 220)
        code, text = Dialogue(self.port).reply()
        self.assertEqual((code, text.split()[0]), (421, "4.7.0"))

    def test_too_many_errors_end_the_session(self):
        inst = self.smtp_install(smtp_extra="max_errors = 3\n")
        self.start(inst)
        d = Dialogue(self.port)
        d.reply()
        d.command("FOO")
        d.command("BAR")
        code, _ = d.command("BAZ")
        self.assertEqual(code, 500)
        self.assertEqual(d.reply()[0], 421)
        self.assertTrue(d.closed())

    def test_too_many_recipients(self):
        inst = self.smtp_install(smtp_extra="max_recipients = 2\n")
        self.start(inst)
        d = Dialogue(self.port)
        d.reply()
        d.command("EHLO c")
        d.command("MAIL FROM:<a@shop.example>")
        self.assertEqual(d.command("RCPT TO:<r1@example.com>")[0], 250)
        self.assertEqual(d.command("RCPT TO:<r2@example.com>")[0], 250)
        code, text = d.command("RCPT TO:<r3@example.com>")
        self.assertEqual((code, text.split()[0]), (452, "4.5.3"))

    def test_idle_clients_are_timed_out(self):
        inst = self.smtp_install(smtp_extra='command_timeout = "1s"\n')
        self.start(inst)
        d = Dialogue(self.port)
        d.reply()
        code, text = d.reply()  # nothing sent: the server gives up
        self.assertEqual((code, text.split()[0]), (421, "4.4.2"))
        self.assertTrue(d.closed())

    def test_connection_limit_per_client(self):
        inst = self.smtp_install(smtp_extra="max_connections_per_client = 2\n")
        self.start(inst)
        first, second = Dialogue(self.port), Dialogue(self.port)
        self.assertEqual(first.reply()[0], 220)
        self.assertEqual(second.reply()[0], 220)
        third = Dialogue(self.port)
        code, text = third.reply()
        self.assertEqual((code, text.split()[0]), (421, "4.7.0"))
        first.command("QUIT")
        first.close()
        # The slot is free again once the first one left.
        def fourth_greeted():
            d = Dialogue(self.port)
            code = d.reply()[0]
            d.close()
            return code == 220
        wait_until(fourth_greeted, timeout=10)

    def test_policies_answer_as_they_decide(self):
        inst = self.smtp_install(plugin_dirs=None, test_plugins=True,
                                 extra='[policies]\norder = ["stamp"]\n[policies.stamp]\nstamp = "via-smtp"\n')
        self.start(inst)
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            with self.assertRaises(smtplib.SMTPDataError) as caught:
                s.sendmail("a@shop.example", ["x@example.com"], "Subject: s\r\n\r\nREJECT-ME\r\n")
            self.assertEqual(caught.exception.smtp_code, 550)
            self.assertEqual(caught.exception.smtp_error, b"5.7.1 Message refused by the stamp policy")
            s.sendmail("a@shop.example", ["ok@example.com", "drop@example.com"], "Subject: s\r\n\r\nfine\r\n")
        [data] = inst.wait_for_maildir("ok@example.com")
        self.assertIn(b"X-Stamp: via-smtp", data)
        self.assertEqual(inst.maildir_files("drop@example.com"), [])


class Shutdown(SmtpTestCase):
    def test_sigterm_with_sessions_open_exits_cleanly(self):
        inst = self.smtp_install()
        server = self.start(inst)
        idle = Dialogue(self.port)
        idle.reply()
        busy = self.open_transaction("late@example.com")
        self.assertEqual(busy.command("DATA")[0], 354)
        busy.send("Subject: half\r\n\r\nhalf a message")
        time.sleep(0.2)
        self.assertEqual(server.stop(grace=20), 0, "SIGTERM with sessions open ends with exit 0:\n" + server.log())
        self.assertTrue(idle.closed())
        self.assertEqual(inst.all_delivered(), [], "the half message was never acknowledged, nor stored")


class Framing(SmtpTestCase):
    def test_pipelining(self):
        inst = self.smtp_install()
        self.start(inst)
        d = Dialogue(self.port)
        d.reply()
        self.assertIn("PIPELINING", d.command("EHLO c")[1])
        d.send("MAIL FROM:<a@shop.example>\r\nRCPT TO:<p1@example.com>\r\nRCPT TO:<p2@example.com>\r\n"
               "RCPT TO:<bad address>\r\nDATA\r\n")
        self.assertEqual([d.reply()[0] for _ in range(5)], [250, 250, 250, 553, 354])
        d.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@shop.example>\r\nRCPT TO:<p3@example.com>\r\n"
               "DATA\r\n")
        self.assertEqual([d.reply()[0] for _ in range(4)], [250, 250, 250, 354])
        d.send("Subject: second\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        self.assertEqual([d.reply()[0] for _ in range(2)], [250, 221])
        for address in ("p1@example.com", "p2@example.com", "p3@example.com"):
            inst.wait_for_maildir(address)

    def test_smuggling_attempts_stay_inside_one_message(self):
        inst = self.smtp_install()
        self.start(inst)
        d = self.open_transaction("target@example.com")
        d.command("DATA")
        d.send("Subject: outer\r\n\r\nouter body\n.\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@example.com>\r\n"
               "DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n")
        code, _ = d.reply()
        self.assertEqual(code, 250)
        self.assertEqual(d.command("QUIT")[0], 221, "exactly one reply for the whole message")
        [data] = inst.wait_for_maildir("target@example.com")
        self.assertIn(b"MAIL FROM:<evil@x.example>", data, "the smuggled command is only text in the message")
        time.sleep(0.5)
        self.assertEqual(inst.maildir_files("victim@example.com"), [])

    def test_bare_line_endings_can_be_refused(self):
        inst = self.smtp_install(smtp_extra='bare_line_endings = "reject"\n')
        self.start(inst)
        d = self.open_transaction("t@example.com")
        d.command("DATA")
        code, text = d.command("Subject: bare\r\n\r\nline\nwith bare LF\r\n.")
        self.assertEqual((code, text.split()[0]), (550, "5.5.2"))
        self.assertEqual(d.command("NOOP")[0], 250)

    def test_long_lines_in_data_are_refused(self):
        inst = self.smtp_install()
        self.start(inst)
        d = self.open_transaction("t@example.com")
        d.command("DATA")
        code, text = d.command("Subject: long\r\n\r\n" + "y" * 1500 + "\r\n.")
        self.assertEqual((code, text.split()[0]), (500, "5.5.2"))

    def test_chunking_with_bdat(self):
        inst = self.smtp_install()
        self.start(inst)
        d = Dialogue(self.port)
        d.reply()
        self.assertIn("CHUNKING", d.command("EHLO c")[1])
        d.command("MAIL FROM:<a@shop.example> BODY=8BITMIME")
        d.command("RCPT TO:<chunky@example.com>")
        first = b"Subject: chunks\r\n\r\n.leading dot kept\r\n"
        last = "ünïcode tail\r\n".encode()
        d.send(b"BDAT %d\r\n" % len(first) + first)
        self.assertEqual(d.reply()[0], 250)
        d.send(b"BDAT %d LAST\r\n" % len(last) + last)
        code, text = d.reply()
        self.assertEqual(code, 250, text)
        [data] = inst.wait_for_maildir("chunky@example.com")
        self.assertIn(b"\n.leading dot kept\n", data)
        self.assertIn(last.replace(b"\r\n", b"\n"), data)


class DsnParameters(SmtpTestCase):
    def scripted(self):
        inst = self.smtp_install(transports=("scripted",), plugin_dirs=None, test_plugins=True,
                                 delivery={"retry_schedule": ["1h"]},
                                 extra='[transports.scripted]\ndirectory = "scripted"\n')
        self.start(inst)
        return inst

    def reports(self, inst):
        d = inst.scripted_dir
        return [p.read_bytes() for p in sorted(d.iterdir())] if d.is_dir() else []

    def test_envid_orcpt_and_ret_reach_the_report(self):
        inst = self.scripted()
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            s.ehlo()
            self.assertTrue(s.has_extn("dsn"))
            s.sendmail("app@shop.example", ["fail-x@example.com"], "Subject: dsn\r\n\r\nORIGINAL\r\n",
                       mail_options=["RET=FULL", "ENVID=order+2B42"],
                       rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;Fail-X@Example.com"])
        report = wait_until(lambda: [r for r in self.reports(inst) if b"multipart/report" in r],
                            describe=inst.diagnostics)[0]
        self.assertIn(b"Original-Envelope-Id: order+42", report)
        self.assertIn(b"Original-Recipient: rfc822;Fail-X@Example.com", report)
        self.assertIn(b"ORIGINAL", report, "RET=FULL returns the whole message")

    def test_notify_never_means_no_report(self):
        inst = self.scripted()
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            s.sendmail("app@shop.example", ["fail-quiet@example.com"], "Subject: q\r\n\r\nx\r\n",
                       rcpt_options=["NOTIFY=NEVER"])
        inst.wait_for_queue_empty()
        time.sleep(0.5)
        self.assertEqual([r for r in self.reports(inst) if b"multipart/report" in r], [])


if __name__ == "__main__":
    unittest.main()

"""`postern sendmail`: what it takes, what it refuses (and with which sysexits code), and what
the server makes of what it took, delivered through the file transport into Maildirs."""

import os
import time
import unittest

from postern_harness import DEFAULT_SENDER, HOSTNAME, POSTERN_BIN, PosternTestCase, header_lines, header_names, \
    parse_message, wait_until

EX_USAGE, EX_DATAERR, EX_TEMPFAIL, EX_CONFIG = 64, 65, 75, 78


def body_of(data):
    text = data.decode(errors="replace")
    return text.split("\n\n", 1)[1] if "\n\n" in text else ""


class SendmailDelivery(PosternTestCase):
    def test_delivered_with_the_server_running(self):
        inst = self.install()
        inst.start_server()
        inst.check_sendmail("Bob@Example.COM", message="Subject: running\nX-Test-Id: running-1\n\nhello bob\n")
        [data] = inst.wait_for_maildir("bob@example.com")
        # The Maildir is named by the lowercased address; Delivered-To keeps the address as given.
        self.assertTrue(data.startswith(f"Return-Path: <{DEFAULT_SENDER}>\nDelivered-To: Bob@Example.COM\n".encode()),
                        data[:200])
        self.assertNotIn(b"\r", data, "the maildir layout writes LF line endings")
        msg = parse_message(data)
        self.assertEqual(msg["X-Test-Id"], "running-1")
        self.assertEqual(msg["Subject"], "running")
        self.assertEqual(body_of(data), "hello bob\n")
        wait_until(lambda: inst.maildrop_waiting() == [],
                   describe=lambda: "the maildrop file is removed once the spool has it\n" + inst.diagnostics())
        inst.wait_for_queue_empty()

    def test_taken_while_stopped_then_delivered_when_the_server_starts(self):
        inst = self.install()
        inst.check_sendmail("carol@example.com", message="Subject: offline\n\nwhile nobody listened\n")
        waiting = inst.maildrop_waiting()
        self.assertEqual(len(waiting), 1, "sendmail writes one file into maildrop/new")
        self.assertIn(b"while nobody listened", waiting[0].read_bytes())
        # Nobody picks it up while no server runs.
        time.sleep(0.5)
        self.assertEqual(inst.all_delivered(), [])
        self.assertEqual(inst.maildrop_waiting(), waiting)

        inst.start_server()
        [data] = inst.wait_for_maildir("carol@example.com")
        self.assertIn(b"while nobody listened", data)
        wait_until(lambda: inst.maildrop_waiting() == [], describe=inst.diagnostics)

    def test_recipients_from_headers_with_t_and_bcc_removed(self):
        inst = self.install()
        inst.start_server()
        message = ("From: Sender <s@example.org>\n"
                   "To: Ann <ann@example.com>, bob@example.com\n"
                   "Cc: cc@example.com\n"
                   "Bcc: hidden@example.com,\n"
                   " Other Hidden <hidden2@example.com>\n"
                   "Subject: dash t\n"
                   "\n"
                   "to everyone\n")
        inst.check_sendmail("-t", message=message)
        expected = ["ann@example.com", "bob@example.com", "cc@example.com", "hidden@example.com",
                    "hidden2@example.com"]
        copies = {a: inst.wait_for_maildir(a) for a in expected}
        time.sleep(0.5)  # anything extra would have arrived in the same attempt
        self.assertEqual(sorted(p.parent.parent.name for p in inst.all_delivered()), sorted(expected))
        for address, [data] in copies.items():
            self.assertNotIn("bcc", header_names(data), f"copy for {address} still has a Bcc header:\n{data.decode()}")
            others = [line for line in header_lines(data) if not line.startswith("Delivered-To:")]
            self.assertNotIn("hidden", "\n".join(others).lower(), f"copy for {address} names a Bcc recipient")
            self.assertIn(b"to everyone", data)
            msg = parse_message(data)
            self.assertEqual(msg["To"], "Ann <ann@example.com>, bob@example.com")
            self.assertEqual(msg["Cc"], "cc@example.com")

    def test_f_sets_the_return_path_and_F_the_from_name(self):
        inst = self.install()
        inst.start_server()
        inst.check_sendmail("-f", "bounces@example.org", "-F", "Ann Example", "dan@example.com",
                            message="Subject: envelope\n\nbody\n")
        inst.check_sendmail("-fattached@example.org", "erin@example.com", message="Subject: attached\n\nbody\n")
        [dan] = inst.wait_for_maildir("dan@example.com")
        [erin] = inst.wait_for_maildir("erin@example.com")
        self.assertTrue(dan.startswith(b"Return-Path: <bounces@example.org>\n"), dan[:100])
        self.assertEqual(parse_message(dan)["From"], '"Ann Example" <bounces@example.org>')
        self.assertTrue(erin.startswith(b"Return-Path: <attached@example.org>\n"), erin[:100])

    def test_a_lone_dot_ends_the_message_unless_i_or_oi(self):
        inst = self.install()
        inst.start_server()
        message = "Subject: dots\n\nbefore the dot\n.\nafter the dot\n"
        inst.check_sendmail("plain@example.com", message=message)
        inst.check_sendmail("-i", "dash-i@example.com", message=message)
        inst.check_sendmail("-oi", "dash-oi@example.com", message=message)
        [plain] = inst.wait_for_maildir("plain@example.com")
        [with_i] = inst.wait_for_maildir("dash-i@example.com")
        [with_oi] = inst.wait_for_maildir("dash-oi@example.com")
        self.assertEqual(body_of(plain), "before the dot\n")
        self.assertEqual(body_of(with_i), "before the dot\n.\nafter the dot\n")
        self.assertEqual(body_of(with_oi), "before the dot\n.\nafter the dot\n")

    def test_missing_headers_are_added_and_received_is_on_top(self):
        inst = self.install()
        inst.start_server()
        inst.check_sendmail("bare@example.com", message="no header section at all\nsecond line\n")
        inst.check_sendmail("some@example.com", message="Subject: only a subject\n\nbody\n")
        own = ("From: Own <own@example.org>\nDate: Mon, 01 Jan 2024 00:00:00 +0000\n"
               "Message-ID: <own-id@example.org>\nSubject: complete\n\nbody\n")
        inst.check_sendmail("full@example.com", message=own)

        for address in ("bare@example.com", "some@example.com"):
            [data] = inst.wait_for_maildir(address)
            names = header_names(data)
            self.assertEqual(names[:3], ["return-path", "delivered-to", "received"], data.decode())
            for name in ("date", "message-id", "from"):
                self.assertEqual(names.count(name), 1, f"{name} in {address}'s copy:\n{data.decode()}")
            msg = parse_message(data)
            self.assertRegex(msg["Message-ID"], rf"^<[0-9A-Z]{{16}}@{HOSTNAME}>$")
            self.assertEqual(msg["From"], f"<{DEFAULT_SENDER}>")
            self.assertRegex(msg["Date"], r"^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$")
            received = " ".join(msg["Received"].split())
            self.assertRegex(received, rf"^by {HOSTNAME} \(postern, from user \S+\) with local id [0-9A-Z]{{16}} "
                                       rf"for <{address}>; ")
        [bare] = inst.wait_for_maildir("bare@example.com")
        self.assertEqual(body_of(bare), "no header section at all\nsecond line\n")

        [full] = inst.wait_for_maildir("full@example.com")
        names = header_names(full)
        self.assertEqual(names[:3], ["return-path", "delivered-to", "received"])
        for name in ("date", "message-id", "from"):
            self.assertEqual(names.count(name), 1, f"{name} was added to a message that had it:\n{full.decode()}")
        msg = parse_message(full)
        self.assertEqual(msg["Message-ID"], "<own-id@example.org>")
        self.assertEqual(msg["Date"], "Mon, 01 Jan 2024 00:00:00 +0000")

    def test_config_from_the_postern_config_variable(self):
        inst = self.install()
        inst.start_server()
        inst.check_sendmail("envvar@example.com", message="Subject: env\n\nvia POSTERN_CONFIG\n", config=False,
                            env={"POSTERN_CONFIG": str(inst.config)})
        [data] = inst.wait_for_maildir("envvar@example.com")
        self.assertIn(b"via POSTERN_CONFIG", data)
        # And the other commands read it too.
        q = inst.run("queue", "list", config=False, env={"POSTERN_CONFIG": str(inst.config)})
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertIn("Mail queue is empty", q.stdout)

    def test_legacy_options_are_accepted_and_ignored(self):
        inst = self.install()
        inst.start_server()
        inst.check_sendmail("-odi", "-oem", "-v", "-B8BITMIME", "-N", "never", "-bm", "--", "legacy@example.com",
                            message="Subject: legacy\n\nold command line\n")
        [data] = inst.wait_for_maildir("legacy@example.com")
        self.assertIn(b"old command line", data)

    def test_relative_paths_are_taken_from_the_config_and_data_dirs(self):
        inst = self.install(extra='[spool]\ndir = "queue-here"\n\n[transports.file]\ndirectory = "mail-out"\n')
        inst.start_server()
        inst.check_sendmail("paths@example.com", message="Subject: paths\n\nwhere\n")
        maildir = inst.root / "data" / "mail-out" / "paths@example.com" / "new"
        wait_until(lambda: maildir.is_dir() and list(maildir.iterdir()), describe=inst.diagnostics)
        self.assertTrue((inst.root / "data" / "queue-here" / "queue.db").is_file(), inst.tree())
        self.assertFalse((inst.root / "data" / "spool").exists(), inst.tree())
        self.assertFalse((inst.root / "data" / "outbox").exists(), inst.tree())
        self.assertEqual(os.listdir(inst.cwd), [], "nothing is created in the working directory")

    def test_broken_maildrop_files_are_set_aside_not_lost(self):
        inst = self.install()
        new = inst.maildrop / "new"
        new.mkdir(parents=True)
        (new / "0-garbage").write_bytes(os.urandom(512))
        truncated = (b'postern-maildrop 1\n{"from":"a@example.org","tenant":"default","user":"root",'
                     b'"to":["t@example.com"],"size":5000}\nSubject: cut short\r\n\r\nonly part')
        (new / "1-truncated").write_bytes(truncated)
        inst.check_sendmail("after@example.com", message="Subject: after\n\nstill delivered\n")
        server = inst.start_server()
        inst.wait_for_maildir("after@example.com")
        corrupt = inst.maildrop / "corrupt"
        wait_until(lambda: corrupt.is_dir() and len(os.listdir(corrupt)) == 2, describe=inst.diagnostics)
        self.assertEqual((corrupt / "1-truncated").read_bytes(), truncated)
        wait_until(lambda: inst.maildrop_waiting() == [], describe=inst.diagnostics)
        self.assertIn("maildrop file 0-garbage: not a maildrop file", server.log())
        self.assertRegex(server.log(), r"maildrop file 1-truncated: truncated: \d+ of 5000 bytes")
        self.assertEqual([p.parent.parent.name for p in inst.all_delivered()], ["after@example.com"])

    def test_invoked_as_sendmail(self):
        inst = self.install()
        link = inst.root / "sendmail"
        os.symlink(POSTERN_BIN, link)
        inst.start_server()
        inst.check_sendmail("-oi", "linked@example.com", message="Subject: argv0\n\nas sendmail\n", binary=str(link))
        [data] = inst.wait_for_maildir("linked@example.com")
        self.assertIn(b"as sendmail", data)


class SendmailRefusals(PosternTestCase):
    """Each refusal has its sysexits code, a message on stderr, and leaves nothing to deliver."""

    MESSAGE = "Subject: refused\n\nmust not arrive\n"

    def assert_nothing_taken(self, inst):
        self.assertEqual(inst.maildrop_waiting(), [])
        # A message sent afterwards is delivered, and alone: nothing refused got in before it.
        inst.start_server()
        inst.check_sendmail("sentinel@example.com", message="Subject: sentinel\n\nok\n")
        inst.wait_for_maildir("sentinel@example.com")
        time.sleep(0.5)
        self.assertEqual([p.parent.parent.name for p in inst.all_delivered()], ["sentinel@example.com"])
        inst.wait_for_queue_empty()

    def test_usage_errors_exit_64(self):
        inst = self.install()
        cases = [
            ((), "no recipients"),
            (("-t",), "no recipients"),  # -t, but no To/Cc/Bcc
            (("-Z", "x@example.com"), "unknown option -Z"),
            (("--bogus", "x@example.com"), "unknown option --bogus"),
            (("x@example.com", "-f"), "needs an address"),
            (("-bp",), "mode -bp is not supported"),
        ]
        for args, text in cases:
            with self.subTest(args=args):
                proc = inst.sendmail(*args, message=self.MESSAGE)
                self.assertEqual(proc.returncode, EX_USAGE, proc.stderr)
                self.assertIn(text, proc.stderr)
        self.assert_nothing_taken(inst)

    def test_bad_addresses_exit_65(self):
        inst = self.install()
        for args in (("a b@example.com",), ("good@example.com", "@example.com"), ("user@",),
                     ("-f", "bad sender@example.org", "good@example.com")):
            with self.subTest(args=args):
                proc = inst.sendmail(*args, message=self.MESSAGE)
                self.assertEqual(proc.returncode, EX_DATAERR, proc.stderr)
                self.assertIn("bad", proc.stderr)
        # -t: the bad one comes from a header (GMime parses it; the address check refuses it).
        proc = inst.sendmail("-t", message='To: ok@example.com, "a b"@example.com\n\nx\n')
        self.assertEqual(proc.returncode, EX_DATAERR, proc.stderr)
        self.assert_nothing_taken(inst)

    def test_message_over_the_size_limit_exits_65(self):
        inst = self.install(extra="[submission]\nmax_message_size = \"1KiB\"\n")
        proc = inst.sendmail("big@example.com", message="Subject: big\n\n" + ("x" * 70 + "\n") * 20)
        self.assertEqual(proc.returncode, EX_DATAERR, proc.stderr)
        self.assertIn("over the limit of 1024 bytes", proc.stderr)
        self.assert_nothing_taken(inst)

    def test_bad_config_exits_78(self):
        inst = self.install()
        good = inst.config.read_text()
        bad = inst.root / "bad.toml"
        # The same settings (so the same maildrop) plus a syntax error.
        bad.write_text(good + "\n[spool\nmax_batch = 10\n")
        cmd = inst.sendmail("x@example.com", message=self.MESSAGE, config=False, env={"POSTERN_CONFIG": str(bad)})
        self.assertEqual(cmd.returncode, EX_CONFIG, cmd.stderr)
        self.assertIn(f"{bad}:", cmd.stderr)
        proc = inst.sendmail("-C", str(bad), "x@example.com", message=self.MESSAGE, config=False)
        self.assertEqual(proc.returncode, EX_CONFIG, proc.stderr)
        self.assertRegex(proc.stderr, rf"{bad}:\d+:\d+: ")
        self.assert_nothing_taken(inst)

    def test_unwritable_maildrop_exits_75(self):
        inst = self.install()
        blocker = inst.root / "blocker"
        blocker.write_text("a regular file where a directory should be\n")
        stuck = inst.root / "stuck.toml"
        stuck.write_text(inst.config.read_text().replace('data_dir = "data"', 'data_dir = "blocker/data"'))
        self.assertIn("blocker/data", stuck.read_text())
        proc = inst.sendmail("-C", stuck, "x@example.com", message=self.MESSAGE, config=False)
        self.assertEqual(proc.returncode, EX_TEMPFAIL, proc.stderr)
        self.assertIn("cannot queue the message", proc.stderr)
        self.assertEqual(blocker.read_text(), "a regular file where a directory should be\n")
        self.assert_nothing_taken(inst)


if __name__ == "__main__":
    unittest.main()


class SendmailOptionSyntax(PosternTestCase):
    """Options as getopt reads them, and recipients that must never vanish silently."""

    def test_clustered_flags(self):
        inst = self.install()
        inst.start_server()
        # -ti: -t and -i together; with -i a lone "." does not end the message.
        inst.check_sendmail("-ti", message="To: ann@example.com\nSubject: clustered\n\nbefore\n.\nafter\n")
        [data] = inst.wait_for_maildir("ann@example.com")
        self.assertIn(b"before\n.\nafter\n", data)
        # -fSENDER glued, and -oi.
        inst.check_sendmail("-oi", "-fglued@example.org", "bob@example.com", message="Subject: glued\n\nx\n")
        [data] = inst.wait_for_maildir("bob@example.com")
        self.assertTrue(data.startswith(b"Return-Path: <glued@example.org>\n"), data[:80])

    def test_config_given_before_the_subcommand(self):
        inst = self.install()
        proc = inst.run("-c", str(inst.config), "sendmail", "-i", "cfg@example.com", input="Subject: c\n\nx\n",
                        config=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(len(inst.maildrop_waiting()), 1)

    def test_an_unreadable_header_address_refuses_the_message(self):
        inst = self.install()
        for header in ("To: ok@example.com, user@", "Cc: x@example..com", "To: a(b)c@example.com"):
            with self.subTest(header=header):
                proc = inst.sendmail("-t", message=f"{header}\nSubject: s\n\nx\n")
                self.assertEqual(proc.returncode, 65, proc.stderr)
                self.assertIn("cannot read every address", proc.stderr)
        self.assertEqual(inst.maildrop_waiting(), [])

    def test_a_headerless_message_with_F_keeps_its_body_apart(self):
        inst = self.install()
        inst.start_server()
        inst.check_sendmail("-F", "Ann Smith", "-f", "ann@example.org", "dora@example.com", message="first body line\n")
        [data] = inst.wait_for_maildir("dora@example.com")
        head, _, body = data.decode().partition("\n\n")
        self.assertIn('From: "Ann Smith" <ann@example.org>', head)
        self.assertEqual(body, "first body line\n")

    def test_bad_dsn_options_are_usage_errors(self):
        inst = self.install()
        for args in (("-N", "never,success"), ("-N", "sometimes"), ("-R", "everything")):
            with self.subTest(args=args):
                proc = inst.sendmail(*args, "x@example.com", message="x\n")
                self.assertEqual(proc.returncode, 64, proc.stderr)
        self.assertEqual(inst.maildrop_waiting(), [])

"""The sendmail transport, driven through the real postern binary, with the real msmtp (Debian
package msmtp) as the sendmail program, relaying into Postfix's smtp-sink on loopback.
smtp-sink writes each mail transaction it receives to a file (`-d DIR/%M.`), headed by the
envelope it saw (X-Mail-Args, X-Rcpt-Args). Both programs are required (scripts/setup installs
them): without them the tests fail, they are never skipped."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from postern_harness import PosternTestCase, wait_until

SENDER = "orders@shop.example"


def find_program(name, *places):
    found = shutil.which(name) or next((p for p in places if os.access(p, os.X_OK)), None)
    if not found:
        raise AssertionError(f"{name} is not installed (scripts/setup installs it)")
    return found


MSMTP = find_program("msmtp", "/usr/bin/msmtp")
SMTP_SINK = find_program("smtp-sink", "/usr/sbin/smtp-sink")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """smtp-sink on 127.0.0.1:`port`, dumping each transaction into its own file."""

    def __init__(self, testcase, *options, port=None):
        # smtp-sink drops to the postfix user when started as root: the directory must be
        # reachable and writable for it, so it is not under the test's private directory.
        self.dir = Path(tempfile.mkdtemp(prefix="postern-sink-"))
        self.dir.chmod(0o777)
        testcase.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.port = port or free_port()
        cmd = [SMTP_SINK] + (["-u", "postfix"] if os.geteuid() == 0 else []) + list(options)
        cmd += ["-d", f"{self.dir}/%M.", f"127.0.0.1:{self.port}", "100"]
        self.log = self.dir.parent / (self.dir.name + ".log")
        testcase.addCleanup(lambda: self.log.unlink(missing_ok=True))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        testcase.addCleanup(self.stop)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"smtp-sink exited with {self.proc.returncode}: {self.log.read_text()!r}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_until(listening, 10, describe=lambda: f"smtp-sink never listened on {self.port}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def dumps(self):
        return sorted(p for p in self.dir.iterdir() if p.is_file())

    def wait_for(self, needle, timeout=20):
        """The dump (envelope fields, message) that contains `needle` (bytes), once complete."""
        def found():
            for p in self.dumps():
                data = p.read_bytes()
                if needle in data and data.rstrip().endswith(b"END-OF-TEST-MESSAGE"):
                    return data
            return None
        return wait_until(found, timeout, describe=lambda: f"no complete dump with {needle!r} in {self.dir}: "
                          f"{[p.name for p in self.dumps()]}")


def envelope(dump):
    """(sender, [recipients]) as smtp-sink recorded the transaction."""
    text = dump.decode(errors="replace")
    sender = re.search(r"(?m)^X-Mail-Args: <([^>]*)>", text).group(1)
    return sender, re.findall(r"(?m)^X-Rcpt-Args: <([^>]*)>", text)


class SendmailTransport(PosternTestCase):
    def sendmail_install(self, sink_port, retry=("1s",), **settings):
        values = {"binary": MSMTP, "arguments": ["--host=127.0.0.1", f"--port={sink_port}"], "timeout": "10s"}
        values.update(settings)
        from postern_harness import toml_value
        section = "[transports.sendmail]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items()
                                                      if v is not None)
        return self.install(transports=("sendmail",), delivery={"retry_schedule": list(retry), "jitter": 0.0},
                            extra=section)

    def submit(self, inst, *recipients, sender=SENDER, subject="sendmail test", body="hello\n"):
        before = len(inst.queued_ids())
        inst.check_sendmail("-i", "-f", sender, "--", *recipients,
                            message=f"To: someone-else@example.com\nSubject: {subject}\n\n{body}END-OF-TEST-MESSAGE\n")
        return inst.wait_for_queued(before + 1)[-1]

    def test_msmtp_relays_each_message_with_its_envelope(self):
        sink = SmtpSink(self)
        inst = self.sendmail_install(sink.port)
        inst.start_server()
        queue_id = self.submit(inst, "ann@example.com", "-bob@example.com", subject="relayed",
                               body="line one\n.\nline after a lone dot\n")
        line = inst.wait_for_recipient(queue_id, "ann@example.com", r"\bdelivered\b")
        self.assertIn(f"via sendmail, last: 250 2.0.0 accepted by {MSMTP}", line)
        inst.wait_for_recipient(queue_id, "-bob@example.com", r"\bdelivered\b")

        dump = sink.wait_for(b"Subject: relayed")
        # The envelope is postern's, not the header's; a recipient starting with "-" is no option.
        self.assertEqual(envelope(dump), (SENDER, ["ann@example.com", "-bob@example.com"]))
        self.assertEqual(len(sink.dumps()), 1, "one run of msmtp for both recipients")
        text = dump.decode()
        self.assertIn("\nline one\n.\nline after a lone dot\nEND-OF-TEST-MESSAGE", text.replace("\r\n", "\n"))
        self.assertRegex(text, r"(?m)^Received: by test\.example \(postern")

    def test_the_null_sender_reaches_the_relay_as_the_null_sender(self):
        sink = SmtpSink(self)
        inst = self.sendmail_install(sink.port)
        inst.start_server()
        queue_id = self.submit(inst, "carol@example.com", sender="<>", subject="null sender")
        inst.wait_for_recipient(queue_id, "carol@example.com", r"\bdelivered\b")
        self.assertEqual(envelope(sink.wait_for(b"Subject: null sender")), ("", ["carol@example.com"]))

    def test_a_closed_port_defers_with_msmtps_complaint_then_delivers_once_the_relay_listens(self):
        port = free_port()
        inst = self.sendmail_install(port)
        inst.start_server()
        queue_id = self.submit(inst, "dave@example.com", subject="deferred first")
        line = inst.wait_for_recipient(queue_id, "dave@example.com", r"\bdeferred\b")
        self.assertIn(f"last: 451 4.3.0 {MSMTP} exited with 75 (EX_TEMPFAIL): msmtp: cannot connect to 127.0.0.1, "
                      f"port {port}: Connection refused", line)
        sink = SmtpSink(self, port=port)
        inst.wait_for_recipient(queue_id, "dave@example.com", r"\bdelivered\b")
        self.assertEqual(envelope(sink.wait_for(b"Subject: deferred first")), (SENDER, ["dave@example.com"]))

    def test_a_recipient_the_relay_refuses_fails_with_msmtps_reason(self):
        sink = SmtpSink(self, "-f", "rcpt")  # every RCPT gets 500 5.3.0
        inst = self.sendmail_install(sink.port)
        inst.start_server()
        queue_id = self.submit(inst, "erin@example.com")
        line = inst.wait_for_recipient(queue_id, "erin@example.com", r"\bfailed\b")
        self.assertIn(f"last: 554 5.6.0 {MSMTP} exited with 65 (EX_DATAERR): msmtp: recipient address "
                      "erin@example.com not accepted by the server", line)

    def test_a_relay_that_stalls_past_the_timeout_is_killed_and_deferred(self):
        sink = SmtpSink(self, "-w", "30")  # waits 30 s before answering DATA
        inst = self.sendmail_install(sink.port, timeout="2s")
        server = inst.start_server()
        queue_id = self.submit(inst, "frank@example.com")
        started = time.monotonic()
        line = inst.wait_for_recipient(queue_id, "frank@example.com", r"\bdeferred\b")
        self.assertLess(time.monotonic() - started, 10)
        self.assertIn(f"last: 451 4.4.1 {MSMTP} did not finish within 2s and was killed", line)
        self.assertEqual(server.stop(), 0, server.log())

    def test_plugins_shows_the_program_found_or_why_none_is(self):
        inst = self.sendmail_install(free_port())
        proc = inst.check_run("plugins")
        row = next(line for line in proc.stdout.splitlines() if line.startswith("sendmail "))
        self.assertRegex(row, rf"^sendmail +transport +1\.0\.0 +yes +runs {re.escape(MSMTP)} with 2 extra arguments ")

        missing = self.sendmail_install(free_port(), binary="/nonexistent/sendmail")
        row = next(line for line in missing.check_run("plugins").stdout.splitlines() if line.startswith("sendmail "))
        self.assertRegex(row, r" no +binary /nonexistent/sendmail: No such file or directory ")

        by_name = self.sendmail_install(free_port(), binary="msmtp")
        row = next(line for line in by_name.check_run("plugins").stdout.splitlines() if line.startswith("sendmail "))
        self.assertRegex(row, rf" yes +runs {re.escape(MSMTP)} ")


if __name__ == "__main__":
    unittest.main()

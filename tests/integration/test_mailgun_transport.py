"""The mailgun transport, driven through the real postern binary, against a fake Mailgun.

The real Mailgun service cannot be reached from here (no network, no account), so these tests
run a local fake instead: fake_mailgun.py, an http.server on 127.0.0.1 in a thread, which
behaves as Mailgun's API documentation describes POST /v3/{domain}/messages.mime and
GET /v3/domains/{domain}: it checks the Basic credentials (api:KEY), parses the multipart
form (`to`, `message`, `o:testmode`), and answers 200 {"id": ..., "message": "Queued. Thank
you."}, or 400/401/404/413 with {"message": ...}; tests script 403, 429 with Retry-After, 500,
503 and a hang (a time-out). Mail is submitted with `postern sendmail`; outcomes are read from
`postern queue show`, the server's log and the REST API (GET /v1/messages/{id}).
"""

import base64
import email.utils
import os
import re
import socket
import time
import unittest
from datetime import datetime

from fake_mailgun import Answer, FakeMailgun
from http_harness import HttpTestCase
from postern_harness import wait_until

DOMAIN = "mg.shop.example"
KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0-postern-test"
KEY_ENV = "POSTERN_IT_MAILGUN_KEY"
SENDER = "orders@shop.example"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rfc3339(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class MailgunTestCase(HttpTestCase):
    def setUp(self):
        super().setUp()
        self.fake = FakeMailgun(DOMAIN, KEY)
        self.addCleanup(self.fake.stop)
        # The key reaches postern the way an operator should pass it: in the environment.
        os.environ[KEY_ENV] = KEY
        self.addCleanup(os.environ.pop, KEY_ENV, None)

    def mailgun_install(self, http=False, retry=("1s",), **settings):
        """An installation delivering through mailgun only, against the fake."""
        values = {"domain": DOMAIN, "base_url": self.fake.url, "api_key_env": KEY_ENV, "timeout": "5s"}
        values.update(settings)
        section = "[transports.mailgun]\n" + "".join(f"{k} = {self.toml(v)}\n" for k, v in values.items() if v is not None)
        delivery = {"retry_schedule": list(retry), "jitter": 0.0}
        if http:
            # Mail from sendmail belongs to the tenant "shop", so that its API key can read it.
            return self.http_install(transports=("mailgun",), delivery=delivery,
                                     extra=section + '\n[submission]\nlocal_tenant = "shop"\n')
        return self.install(transports=("mailgun",), delivery=delivery, extra=section)

    @staticmethod
    def toml(v):
        from postern_harness import toml_value
        return toml_value(v)

    def submit(self, inst, *recipients, subject="mailgun test", body="hello\n", headers=""):
        before = len(inst.queued_ids())
        inst.check_sendmail("-f", SENDER, *recipients,
                            message=f"From: {SENDER}\nTo: someone-else@example.com\nSubject: {subject}\n{headers}\n{body}")
        return inst.wait_for_queued(before + 1)[-1]

    def wait_requests(self, address, count, timeout=20):
        return wait_until(lambda: (lambda r: r if len(r) >= count else None)(self.fake.sent_to(address)), timeout,
                          describe=lambda: f"waiting for {count} request(s) to {address}; the fake saw:\n"
                          + self.fake.describe())

    def status(self, queue_id):
        r = self.request("GET", f"/v1/messages/{queue_id}")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def assert_key_hidden(self, *texts):
        secret_forms = [KEY, base64.b64encode(f"api:{KEY}".encode()).decode()]
        for text in texts:
            for secret in secret_forms:
                self.assertNotIn(secret, text)


class Delivery(MailgunTestCase):
    def test_delivered_with_mailguns_id_kept_and_testmode_sent(self):
        inst = self.mailgun_install(http=True, testmode=True)
        server = self.start(inst)
        queue_id = self.submit(inst, "ann@example.com", "bob@example.com", subject="first")
        line = inst.wait_for_recipient(queue_id, "ann@example.com", r"\bdelivered\b")
        [req] = self.fake.sent_to("ann@example.com")
        # One request for the attempt, with the envelope's recipients, not the To field's.
        self.assertEqual(req.method, "POST")
        self.assertEqual(req.path, f"/v3/{DOMAIN}/messages.mime")
        self.assertEqual(req.auth(), ("api", KEY))
        self.assertEqual(req.to, [b"ann@example.com", b"bob@example.com"])
        self.assertEqual(req.values("o:testmode"), [b"yes"])
        self.assertTrue(req.filename("message"), "the message is a file upload, as Mailgun asks")
        self.assertIn(b"Subject: first\r\n", req.message)
        self.assertIn(b"\r\n\r\nhello\r\n", req.message)
        self.assertRegex(req.message.decode(), r"(?m)^Received: by test\.example \(postern")

        # The id Mailgun answered is the remote id, in `queue show` and in the REST API.
        body = self.fake.requests[0]
        mailgun_id = re.search(r"queued by Mailgun as (<[^>]+>)", line).group(1)
        self.assertIn(f"last: 250 2.0.0 queued by Mailgun as {mailgun_id} (HTTP 200 OK: Queued. Thank you.)", line)
        inst.wait_for_recipient(queue_id, "bob@example.com", r"\bdelivered\b")
        recipients = {r["address"]: r for r in self.status(queue_id)["recipients"]}
        for address in ("ann@example.com", "bob@example.com"):
            self.assertEqual(recipients[address]["state"], "delivered")
            self.assertEqual(recipients[address]["transport"], "mailgun")
            self.assertEqual(recipients[address]["remote_id"], mailgun_id)
        self.assertEqual(body.status, 200)
        self.assert_key_hidden(server.log(), inst.queue_show(queue_id), inst.check_run("plugins").stdout)

    def test_without_testmode_no_testmode_option_is_sent(self):
        inst = self.mailgun_install()
        inst.start_server()
        queue_id = self.submit(inst, "carol@example.com")
        inst.wait_for_recipient(queue_id, "carol@example.com", r"\bdelivered\b")
        [req] = self.fake.sent_to("carol@example.com")
        self.assertEqual(req.values("o:testmode"), [])

    def test_requests_share_kept_alive_connections_within_max_in_flight(self):
        inst = self.mailgun_install(max_in_flight=2)
        inst.start_server()
        addresses = [f"r{i}@example.com" for i in range(6)]
        for a in addresses:
            self.fake.on_recipient(a, Answer(200, {"id": f"<{a}>", "message": "Queued. Thank you."}, delay=0.4))
        ids = [self.submit(inst, a, subject=a) for a in addresses]
        for queue_id, a in zip(ids, addresses):
            inst.wait_for_recipient(queue_id, a, r"\bdelivered\b")
        self.assertLessEqual(self.fake.max_in_flight, 2, self.fake.describe())
        self.assertLessEqual(self.fake.connections, 2, "six requests on at most two connections\n" + self.fake.describe())
        # One at a time, later: the connections kept open serve them.
        before = self.fake.connections
        for a in ("later1@example.com", "later2@example.com"):
            queue_id = self.submit(inst, a)
            inst.wait_for_recipient(queue_id, a, r"\bdelivered\b")
        self.assertEqual(self.fake.connections, before, self.fake.describe())


class Refusals(MailgunTestCase):
    """400, 401, 403, 404 and 413 fail the recipients at once, with Mailgun's message."""

    def assert_failed(self, inst, queue_id, address, pattern):
        line = inst.wait_for_recipient(queue_id, address, r"\bfailed\b")
        self.assertRegex(line, pattern)
        self.assertIn("attempts 1,", line, "a permanent failure is not retried")
        return line

    def test_400_fails_with_mailguns_message(self):
        inst = self.mailgun_install()
        inst.start_server()
        self.fake.on_recipient("dave@example.com", Answer(400, {"message": "'to' parameter is not a valid address. "
                                                                           "please check documentation"}))
        queue_id = self.submit(inst, "dave@example.com")
        self.assert_failed(inst, queue_id, "dave@example.com",
                           r"last: 554 5\.5\.4 Mailgun refused the request: HTTP 400 Bad Request: 'to' parameter is "
                           r"not a valid address")

    def test_401_for_a_wrong_key_fails_and_the_key_is_never_shown(self):
        os.environ[KEY_ENV] = "key-wrong-" + KEY  # contains the real key: must not leak either
        inst = self.mailgun_install()
        server = inst.start_server()
        queue_id = self.submit(inst, "erin@example.com")
        line = self.assert_failed(inst, queue_id, "erin@example.com",
                                  r"last: 554 5\.7\.8 Mailgun refused the API key: HTTP 401 Unauthorized: "
                                  r"Invalid private key")
        self.assertRegex(server.log(), r"\[plugin\.mailgun\] .*HTTP 401 Unauthorized.*check domain, region and key")
        self.assert_key_hidden(server.log(), line, inst.queue_show(queue_id), inst.check_run("plugins").stdout)
        self.assertNotIn("key-wrong-", server.log() + inst.queue_show(queue_id))

    def test_403_fails(self):
        inst = self.mailgun_install()
        inst.start_server()
        self.fake.on_recipient("frank@example.com", Answer(403, {"message": f"Domain {DOMAIN} is not allowed to send"}))
        queue_id = self.submit(inst, "frank@example.com")
        self.assert_failed(inst, queue_id, "frank@example.com",
                           r"last: 554 5\.7\.1 .*HTTP 403 Forbidden: Domain mg\.shop\.example is not allowed to send")

    def test_404_for_a_domain_mailgun_does_not_know(self):
        inst = self.mailgun_install(domain="other.example")
        inst.start_server()
        queue_id = self.submit(inst, "gina@example.com")
        self.assert_failed(inst, queue_id, "gina@example.com",
                           r"last: 554 5\.3\.5 .*HTTP 404 Not Found: Domain not found: other\.example")
        self.assertEqual(self.fake.requests[0].path, "/v3/other.example/messages.mime")

    def test_413_for_a_message_over_mailguns_size_limit(self):
        self.fake.max_size = 64 * 1024  # Mailgun's is 25 MB; the same answer, sooner
        inst = self.mailgun_install()
        inst.start_server()
        queue_id = self.submit(inst, "hank@example.com", body="x" * 76 + "\n" * 1 + ("y" * 76 + "\n") * 1500)
        self.assert_failed(inst, queue_id, "hank@example.com", r"last: 552 5\.3\.4 .*HTTP 413 Payload Too Large")


class Retries(MailgunTestCase):
    """429, 5xx, time-outs and connection failures are deferred; Retry-After is honoured."""

    def test_429_waits_as_long_as_retry_after_says_then_delivers(self):
        inst = self.mailgun_install(http=True)
        self.start(inst)
        self.fake.on_recipient("ivy@example.com",
                               Answer(429, {"message": "Too many requests"}, {"Retry-After": "4"}), None)
        queue_id = self.submit(inst, "ivy@example.com")
        line = inst.wait_for_recipient(queue_id, "ivy@example.com", r"\bdeferred\b")
        self.assertRegex(line, r"last: 451 4\.4\.5 Mailgun is rate limiting: HTTP 429 Too Many Requests: "
                               r"Too many requests \(retry after 4s\)")
        # The engine's own backoff is 1 s; Mailgun asked for 4.
        status = self.status(queue_id)
        [rcpt] = status["recipients"]
        if rcpt["state"] == "deferred":
            deferred_at = max(rfc3339(e["time"]) for e in status["events"] if e["type"] == "deferred")
            self.assertGreaterEqual((rfc3339(rcpt["next_attempt"]) - deferred_at).total_seconds(), 3.999, status)
        first, second = self.wait_requests("ivy@example.com", 2)
        self.assertGreaterEqual(second.time - first.time, 4.0 - 0.01, self.fake.describe())
        inst.wait_for_recipient(queue_id, "ivy@example.com", r"\bdelivered\b")

    def test_503_with_an_http_date_defers_until_that_date(self):
        inst = self.mailgun_install(http=True)
        self.start(inst)
        later = email.utils.formatdate(time.time() + 7200, usegmt=True)
        self.fake.on_recipient("jack@example.com", Answer(503, {"message": "Service Unavailable"}, {"Retry-After": later}))
        queue_id = self.submit(inst, "jack@example.com")
        line = inst.wait_for_recipient(queue_id, "jack@example.com", r"\bdeferred\b")
        self.assertRegex(line, r"last: 451 4\.3\.0 Mailgun failed: HTTP 503 Service Unavailable: Service Unavailable "
                               r"\(retry after 7[12]\d\ds\)")
        status = self.status(queue_id)
        [rcpt] = status["recipients"]
        deferred_at = max(rfc3339(e["time"]) for e in status["events"] if e["type"] == "deferred")
        self.assertGreaterEqual((rfc3339(rcpt["next_attempt"]) - deferred_at).total_seconds(), 7190, status)
        # With a 1 s schedule it would have been tried again by now.
        time.sleep(2.5)
        self.assertEqual(len(self.fake.sent_to("jack@example.com")), 1, self.fake.describe())
        self.assertEqual(inst.attempts(queue_id, "jack@example.com"), 1)

    def test_500_without_retry_after_follows_the_engines_schedule(self):
        inst = self.mailgun_install()
        inst.start_server()
        self.fake.on_recipient("kate@example.com", Answer(500, {"message": "Internal Server Error"}), None)
        queue_id = self.submit(inst, "kate@example.com")
        first, second = self.wait_requests("kate@example.com", 2)
        self.assertLess(second.time - first.time, 3.5, "the 1 s schedule, not a Retry-After")
        line = inst.wait_for_recipient(queue_id, "kate@example.com", r"\bdelivered\b")
        self.assertIn("attempts 2,", line)
        events = inst.queue_show(queue_id)
        self.assertRegex(events, r"deferred <kate@example\.com> via mailgun: 451 4\.3\.0 Mailgun failed: "
                                 r"HTTP 500 Internal Server Error: Internal Server Error")

    def test_no_answer_within_the_timeout_is_deferred(self):
        inst = self.mailgun_install(timeout="1s")
        inst.start_server()
        self.fake.on_recipient("liam@example.com", Answer(hang=8), None)
        queue_id = self.submit(inst, "liam@example.com")
        self.wait_requests("liam@example.com", 1)
        started = time.monotonic()
        line = inst.wait_for_recipient(queue_id, "liam@example.com", r"\b(deferred|delivered)\b")
        self.assertLess(time.monotonic() - started, 5)
        show = inst.queue_show(queue_id)
        self.assertRegex(show, r"deferred <liam@example\.com> via mailgun: 451 4\.4\.1 no answer from Mailgun in time: "
                               r"Operation timed out", line)
        inst.wait_for_recipient(queue_id, "liam@example.com", r"\bdelivered\b")

    def test_a_closed_port_is_deferred(self):
        inst = self.mailgun_install(base_url=f"http://127.0.0.1:{free_port()}")
        inst.start_server()
        queue_id = self.submit(inst, "mia@example.com")
        line = inst.wait_for_recipient(queue_id, "mia@example.com", r"\bdeferred\b")
        self.assertRegex(line, r"last: 451 4\.4\.1 cannot connect to Mailgun: ")


class Probe(MailgunTestCase):
    """`postern plugins` shows whether mailgun can work, and why not, never the key."""

    def mailgun_row(self, inst, env=None):
        proc = inst.run("plugins", env=env)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        rows = [line for line in proc.stdout.splitlines() if line.startswith("mailgun ")]
        self.assertEqual(len(rows), 1, proc.stdout)
        self.assert_key_hidden(proc.stdout, proc.stderr)
        return rows[0]

    def test_missing_settings_are_named(self):
        os.environ.pop(KEY_ENV, None)
        row = self.mailgun_row(self.mailgun_install())
        self.assertRegex(row, r"^mailgun +transport +1\.0\.0 +no +no API key \(set api_key, or the environment "
                              rf"variable {KEY_ENV}\)")
        row = self.mailgun_row(self.mailgun_install(domain=None, api_key_env=None, api_key=KEY))
        self.assertRegex(row, r" no +no domain \(set domain in \[transports\.mailgun\]\)")
        self.assertEqual(self.fake.requests, [], "nothing is asked of Mailgun without probe_request")

    def test_available_with_domain_and_key_and_regions_give_mailguns_urls(self):
        row = self.mailgun_row(self.mailgun_install())
        self.assertRegex(row, rf" yes +sends as {re.escape(DOMAIN)} at {re.escape(self.fake.url)} ")
        row = self.mailgun_row(self.mailgun_install(base_url=None, region="eu", testmode=True))
        self.assertRegex(row, rf" yes +sends as {re.escape(DOMAIN)} at https://api\.eu\.mailgun\.net, test mode ")
        row = self.mailgun_row(self.mailgun_install(base_url=None))
        self.assertRegex(row, r" at https://api\.mailgun\.net ")

    def test_probe_request_checks_the_key_and_the_domain_with_mailgun(self):
        row = self.mailgun_row(self.mailgun_install(probe_request=True))
        self.assertRegex(row, r" yes +sends as .*\(Mailgun knows the domain and key\)")
        [req] = self.fake.requests
        self.assertEqual((req.method, req.path, req.auth()), ("GET", f"/v3/domains/{DOMAIN}", ("api", KEY)))

        row = self.mailgun_row(self.mailgun_install(probe_request=True), env={KEY_ENV: "key-not-this-one"})
        self.assertRegex(row, rf" no +API key refused \(HTTP 401 Unauthorized to GET .*, key from \${KEY_ENV}\)")

        row = self.mailgun_row(self.mailgun_install(probe_request=True, domain="unknown.example"))
        self.assertRegex(row, r" no +Mailgun does not know the domain unknown\.example \(HTTP 404")

    def test_an_invalid_setting_is_reported_with_its_section(self):
        row = self.mailgun_row(self.mailgun_install(region="mars"))
        self.assertRegex(row, r" no +.*\[transports\.mailgun\]: region must be \"us\" or \"eu\", not \"mars\"")


if __name__ == "__main__":
    unittest.main()

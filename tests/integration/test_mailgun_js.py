"""The Mailgun-compatible API (/v3) driven by the official mailgun.js client from npm: text, html,
attachments, batch sending with recipient-variables, and refusals, as a Mailgun user's Node.js
code would send them. mailgun_js/send.mjs runs the client; the packages are installed from
mailgun_js/package-lock.json with `npm ci` when node_modules is missing or stale. Mail is
delivered by the file transport into Maildirs.

Node.js (18 or later) and npm are required (scripts/setup installs them): without them the tests
fail, they are never skipped."""

import base64
import email
import email.policy
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import time
import unittest
from pathlib import Path

from http_harness import OTHER_KEY, SHOP_KEY, HttpTestCase

CLIENT_DIR = Path(__file__).resolve().parent / "mailgun_js"
NODE_MODULES = CLIENT_DIR / "node_modules"
NPM_CACHE = CLIENT_DIR / ".npm-cache"  # npm's download cache, kept beside the packages
STAMP = NODE_MODULES / ".postern-installed"  # what node_modules was installed from
NPM_CI_TIMEOUT = 300


def parse_message(data):
    return email.message_from_bytes(data, policy=email.policy.default)


def _install_fingerprint():
    """What node_modules is installed from (the packages have no native code: the Node.js version
    does not matter)."""
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((CLIENT_DIR / name).read_bytes())
    return digest.hexdigest()


def ensure_client():
    """Checks node and npm and installs the locked packages when needed. Returns None, or why
    mailgun.js cannot run (the tests then fail with it)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if not p)
        return (f"{missing} not found on PATH: the mailgun.js tests need Node.js 18+ and npm "
                f"(run scripts/setup, which installs Debian's nodejs and npm)")
    proc = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    version = proc.stdout.strip()
    m = re.match(r"v(\d+)\.", version)
    if proc.returncode != 0 or not m:
        return f"`node --version` failed ({proc.returncode}): {proc.stdout}{proc.stderr}"
    if int(m.group(1)) < 18:
        return f"mailgun.js needs Node.js 18 or later; {node} is {version}"
    fingerprint = _install_fingerprint()
    if STAMP.is_file() and STAMP.read_text().strip() == fingerprint and (NODE_MODULES / "mailgun.js").is_dir():
        return None
    env = dict(os.environ, npm_config_cache=str(NPM_CACHE), npm_config_update_notifier="false")
    started = time.monotonic()
    try:
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT_DIR, env=env,
                              capture_output=True, text=True, timeout=NPM_CI_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        return f"`npm ci` in {CLIENT_DIR} did not finish in {NPM_CI_TIMEOUT} s:\n{e.stdout or ''}{e.stderr or ''}"
    if proc.returncode != 0:
        return f"`npm ci` in {CLIENT_DIR} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    STAMP.write_text(fingerprint + "\n")
    print(f"\n[mailgun.js] npm ci took {time.monotonic() - started:.1f} s", flush=True)
    return None


class MailgunJs(HttpTestCase):
    client_problem = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client_problem = ensure_client()

    def setUp(self):
        super().setUp()
        if self.client_problem:
            self.fail(self.client_problem)
        self.inst = self.http_install()
        self.start(self.inst)

    def send(self, *messages, key=SHOP_KEY, domain="shop.example"):
        """Sends each message with mailgun.js's messages.create; returns one answer per message:
        {"ok": true, "result": …} or {"ok": false, "status": …, "message": …}."""
        job = {"url": self.url(""), "key": key, "domain": domain, "messages": list(messages)}
        proc = subprocess.run(["node", "send.mjs"], cwd=CLIENT_DIR, input=json.dumps(job), capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, f"send.mjs failed:\n{proc.stdout}{proc.stderr}")
        answers = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        self.assertEqual(len(answers), len(messages), proc.stdout + proc.stderr)
        return answers

    def accepted(self, answer):
        """The client's resolved value of an accepted message, checked for Mailgun's shape."""
        self.assertTrue(answer["ok"], answer)
        result = answer["result"]
        self.assertEqual(result["message"], "Queued. Thank you.")
        self.assertRegex(result["id"], r"^<[^<>@\s]+@[^<>@\s]+>$")
        return result

    @staticmethod
    def file(name, data):
        return {"filename": name, "data": base64.b64encode(data).decode()}

    def test_a_text_message_with_options(self):
        [answer] = self.send({
            "from": "Shop Orders <orders@shop.example>", "to": "Ann Example <ann@example.com>, bob@example.com",
            "cc": ["carl@example.com"], "bcc": "audit@example.com", "subject": "Your order – Grüße",
            "text": "Thank you for your order.\nIt ships tomorrow.", "o:tag": ["order", "confirmation"],
            "h:X-Order-Id": "1001", "h:Reply-To": "help@shop.example", "v:order": "1001"})
        result = self.accepted(answer)
        [data] = self.inst.wait_for_maildir("ann@example.com")
        for who in ("bob@example.com", "carl@example.com", "audit@example.com"):
            self.assertEqual(len(self.inst.wait_for_maildir(who)), 1, who)
        msg = parse_message(data)
        self.assertEqual(msg["Message-ID"], result["id"])
        self.assertEqual(str(msg["Subject"]), "Your order – Grüße")
        self.assertEqual(msg["From"].addresses[0].addr_spec, "orders@shop.example")
        self.assertEqual(msg["From"].addresses[0].display_name, "Shop Orders")
        self.assertEqual([a.addr_spec for a in msg["To"].addresses], ["ann@example.com", "bob@example.com"])
        self.assertEqual([a.addr_spec for a in msg["Cc"].addresses], ["carl@example.com"])
        self.assertNotIn(b"audit@example.com", data)  # the Bcc is in no header
        self.assertEqual(msg["Reply-To"].addresses[0].addr_spec, "help@shop.example")
        self.assertEqual(msg["X-Order-Id"], "1001")
        self.assertEqual(json.loads(msg["X-Mailgun-Variables"]), {"order": "1001"})
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertEqual(msg.get_content().replace("\r\n", "\n").rstrip("\n"),
                         "Thank you for your order.\nIt ships tomorrow.")

    def test_an_html_message_with_a_text_alternative_and_an_inline_image(self):
        logo = b"\x89PNG\r\n\x1a\n" + bytes(random.Random(7).randrange(256) for _ in range(300))
        html = '<html><body><h1>Welcome, Ann</h1><p>Ünïcödé &amp; <img src="cid:logo.png"></p></body></html>'
        [answer] = self.send({"from": "news@shop.example", "to": ["ann@example.com"], "subject": "Welcome",
                              "html": html, "text": "Welcome, Ann", "inline": self.file("logo.png", logo)})
        result = self.accepted(answer)
        [data] = self.inst.wait_for_maildir("ann@example.com")
        msg = parse_message(data)
        self.assertEqual(msg["Message-ID"], result["id"])
        self.assertEqual(msg.get_body(("html",)).get_content().strip(), html)
        self.assertEqual(msg.get_body(("plain",)).get_content().strip(), "Welcome, Ann")
        self.assertIn("multipart/alternative", [p.get_content_type() for p in msg.walk()])
        [image] = [p for p in msg.walk() if p.get_content_type() == "image/png"]
        self.assertEqual(image.get_payload(decode=True), logo)
        self.assertEqual(image["Content-ID"], "<logo.png>")
        self.assertEqual(image.get_content_disposition(), "inline")

        [answer] = self.send({"from": "news@shop.example", "to": "bob@example.com", "subject": "Only html",
                              "html": "<p>Just <b>HTML</b></p>"})
        self.accepted(answer)
        [data] = self.inst.wait_for_maildir("bob@example.com")
        msg = parse_message(data)
        self.assertEqual(msg.get_content_type(), "text/html")
        self.assertEqual(msg.get_content().strip(), "<p>Just <b>HTML</b></p>")

    def test_two_attachments_round_trip_byte_for_byte(self):
        rng = random.Random(1001)
        binary = bytes(range(256)) + bytes(rng.randrange(256) for _ in range(70000)) + b"\r\n\r\n.\r\n\x00"
        text = "Invoice 1001\nÄpfel;3;2,50 €\nBirnen;1;0,99 €\n".encode()
        [answer] = self.send({"from": "billing@shop.example", "to": "ann@example.com", "subject": "Invoice",
                              "text": "Your invoice is attached.",
                              "attachment": [self.file("archive.bin", binary), self.file("invoice.csv", text)]})
        result = self.accepted(answer)
        [data] = self.inst.wait_for_maildir("ann@example.com")
        msg = parse_message(data)
        self.assertEqual(msg["Message-ID"], result["id"])
        self.assertEqual(msg.get_content_type(), "multipart/mixed")
        files = {p.get_filename(): p for p in msg.iter_attachments()}
        self.assertEqual(sorted(files), ["archive.bin", "invoice.csv"])
        self.assertEqual(files["archive.bin"].get_payload(decode=True), binary)
        self.assertEqual(files["archive.bin"].get_content_type(), "application/octet-stream")
        self.assertEqual(files["invoice.csv"].get_payload(decode=True), text)
        self.assertEqual(files["invoice.csv"].get_content_type(), "text/csv")
        self.assertEqual(msg.get_body(("plain",)).get_content().strip(), "Your invoice is attached.")

    def test_batch_sending_with_recipient_variables_gives_each_recipient_their_own_message(self):
        people = {"ann@example.com": {"name": "Ann", "code": "A-1"},
                  "bob@example.com": {"name": "Bob", "code": "B-2"},
                  "carl@example.com": {"name": "Carl", "code": "C-3"}}
        [answer] = self.send({"from": "news@shop.example", "to": list(people),
                              "subject": "Hello %recipient.name%",
                              "text": "Dear %recipient.name%, your code is %recipient.code%.",
                              "recipient-variables": json.dumps(people)})
        self.accepted(answer)
        delivered = {who: self.inst.wait_for_maildir(who) for who in people}
        time.sleep(0.5)  # a second message to anyone would have landed by now
        for who, vars_ in people.items():
            files = self.inst.maildir_files(who)
            self.assertEqual(len(files), 1, f"{who} got {len(files)} messages")
            data = delivered[who][0]
            msg = parse_message(data)
            self.assertEqual(str(msg["Subject"]), f"Hello {vars_['name']}")
            self.assertEqual([a.addr_spec for a in msg["To"].addresses], [who])
            self.assertEqual(msg.get_content().strip(), f"Dear {vars_['name']}, your code is {vars_['code']}.")
            for other, other_vars in people.items():
                if other != who:
                    self.assertNotIn(other.encode(), data, f"{who}'s message names {other}")
                    self.assertNotIn(other_vars["code"].encode(), data, f"{who}'s message has {other}'s code")
            self.assertNotIn(b"%recipient.", data)
        self.assertEqual(len(self.inst.all_delivered()), 3)

    def test_a_whole_mime_message_goes_to_messages_mime(self):
        raw = ("From: Shop <news@shop.example>\r\nTo: someone@example.com\r\nSubject: Prepared elsewhere\r\n"
               "X-Prepared: yes\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
               "A message built by the caller.\r\n")
        [answer] = self.send({"to": ["ann@example.com", "bob@example.com"], "message": raw})
        self.accepted(answer)
        for who in ("ann@example.com", "bob@example.com"):
            [data] = self.inst.wait_for_maildir(who)
            msg = parse_message(data)
            self.assertEqual((str(msg["Subject"]), msg["X-Prepared"]), ("Prepared elsewhere", "yes"))
            self.assertEqual(msg.get_content().strip(), "A message built by the caller.")
        self.assertEqual(self.inst.maildir_files("someone@example.com"), [])  # the envelope is 'to'

    def test_testmode_as_a_boolean_accepts_without_delivering(self):
        [answer] = self.send({"from": "news@shop.example", "to": "ann@example.com", "subject": "test",
                              "text": "x", "o:testmode": True})
        self.accepted(answer)
        time.sleep(1)
        self.assertEqual(self.inst.all_delivered(), [])

    def test_refusals_reach_the_client_as_mailgun_errors(self):
        message = {"from": "news@shop.example", "to": "ann@example.com", "subject": "x", "text": "x"}
        [wrong_domain] = self.send(message, domain="other.example")
        self.assertFalse(wrong_domain["ok"], wrong_domain)
        self.assertEqual(wrong_domain["status"], 404, wrong_domain)
        self.assertEqual((wrong_domain["type"], wrong_domain["message"], wrong_domain["details"]),
                         ("MailgunAPIError", "Not Found", "Domain not found: other.example"))
        [unknown_domain] = self.send(message, domain="elsewhere.example")
        self.assertEqual((unknown_domain["status"], unknown_domain["details"]),
                         (404, "Domain not found: elsewhere.example"))
        [other_tenant] = self.send(message, key=OTHER_KEY)  # a valid key, but not the domain's tenant
        self.assertEqual((other_tenant["status"], other_tenant["details"]), (404, "Domain not found: shop.example"))
        [wrong_key] = self.send(message, key="key-0123456789abcdef0123456789abcdef")
        self.assertFalse(wrong_key["ok"], wrong_key)
        self.assertEqual(wrong_key["status"], 401, wrong_key)
        self.assertEqual((wrong_key["type"], wrong_key["message"]), ("MailgunAPIError", "Unauthorized"))
        self.assertIn("API key", wrong_key["details"])
        [no_body] = self.send({"from": "news@shop.example", "to": "ann@example.com", "subject": "x"})
        self.assertEqual((no_body["status"], no_body["details"]),
                         (400, "Need at least one of 'text' or 'html' parameters specified"))
        # The same client and server, with the right key and domain, does send.
        self.accepted(self.send(message)[0])
        self.inst.wait_for_maildir("ann@example.com")
        time.sleep(0.5)
        self.assertEqual(len(self.inst.all_delivered()), 1)


if __name__ == "__main__":
    unittest.main()

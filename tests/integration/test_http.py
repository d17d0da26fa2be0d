"""The REST API driven over real HTTP: the native JSON API (/v1) with Python's http.client and
curl, the Mailgun-compatible API (/v3) with curl's form uploads, and every refusal. Mail is
delivered by the file transport into Maildirs."""

import email
import email.policy
import hashlib
import hmac
import json
import os
import subprocess
import time
import unittest
from datetime import datetime, timedelta, timezone

from http_harness import OTHER_KEY, SHOP_KEY, HttpTestCase, webhook_receiver
from postern_harness import wait_until


def parse_message(data):
    return email.message_from_bytes(data, policy=email.policy.default)


def message_body(**kw):
    body = {"from": "Shop <orders@shop.example>", "to": ["ann@example.com"], "subject": "Your order",
            "text": "Thank you for your order."}
    body.update(kw)
    return body


class Operations(HttpTestCase):
    def test_health_readiness_and_metrics_need_no_key(self):
        inst = self.http_install()
        self.start(inst)
        self.assertEqual(self.request("GET", "/healthz", key=None).status, 200)
        ready = self.request("GET", "/readyz", key=None)
        self.assertEqual((ready.status, ready.json()["status"]), (200, "ready"))
        self.request("POST", "/v1/messages", message_body())
        metrics = self.request("GET", "/metrics", key=None)
        self.assertEqual(metrics.status, 200)
        self.assertIn("text/plain", metrics.headers["content-type"])
        self.assertIn('postern_http_messages_accepted_total{tenant="shop"} 1', metrics.body)
        self.assertIn('postern_open_connections{protocol="http"}', metrics.body)
        self.assertIn("postern_queue_messages", metrics.body)
        self.assertIn("postern_spool_commit_seconds_bucket", metrics.body)


class NativeApi(HttpTestCase):
    def test_a_message_with_text_html_and_attachment_is_accepted_durably_and_delivered(self):
        inst = self.http_install()
        self.start(inst)
        r = self.request("POST", "/v1/messages", message_body(
            to=["Ann Example <ann@example.com>"], cc=["bob@example.com"], bcc=["audit@example.com"],
            subject="Ihre Bestellung – danke", html="<p>Thank you</p>", tags=["order"],
            headers={"X-Order-Id": "1001"},
            attachments=[{"filename": "invoice.txt", "content_type": "text/plain",
                          "content": "aW52b2ljZSAxMDAx"}]))
        self.assertEqual(r.status, 202, r)
        answer = r.json()
        self.assertRegex(answer["id"], r"^[0-9A-Z]{16}$")
        self.assertEqual([x["address"] for x in answer["recipients"]],
                         ["ann@example.com", "bob@example.com", "audit@example.com"])
        self.assertEqual(answer["recipients"][0]["id"], answer["id"] + ".0")
        [data] = inst.wait_for_maildir("ann@example.com")
        msg = parse_message(data)
        self.assertEqual(str(msg["Subject"]), "Ihre Bestellung – danke")
        self.assertIn("=?", data.split(b"\n\n", 1)[0].decode())  # encoded word on the wire
        self.assertEqual(msg["X-Order-Id"], "1001")
        self.assertEqual(msg["Message-ID"], "<" + answer["message_id"] + ">")
        self.assertNotIn("audit@example.com", str(msg["To"]) + str(msg["Cc"]) + str(msg.get("Bcc", "")))
        self.assertEqual(msg.get_content_type(), "multipart/mixed")
        parts = [p.get_content_type() for p in msg.walk()]
        self.assertIn("multipart/alternative", parts)
        attachment = next(p for p in msg.walk() if p.get_filename() == "invoice.txt")
        self.assertEqual(attachment.get_content(), "invoice 1001")
        inst.wait_for_maildir("audit@example.com")
        status = wait_until(lambda: (lambda s: s if all(x["state"] == "delivered" for x in s["recipients"]) else None)(
            self.request("GET", f"/v1/messages/{answer['id']}").json()))
        self.assertEqual(status["recipients"][0]["transport"], "file")
        self.assertEqual(status["tags"], ["order"])
        self.assertIn("delivered", [e["type"] for e in status["events"]])

    def test_bearer_tokens_work_and_curl_is_a_client(self):
        inst = self.http_install()
        self.start(inst)
        self.assertEqual(self.request("POST", "/v1/messages", message_body(), scheme="bearer").status, 202)
        proc = subprocess.run(["curl", "-sS", "-u", f"api:{SHOP_KEY}", "-H", "Content-Type: application/json",
                               "--data-binary", json.dumps(message_body(to="bob@example.com")),
                               "-w", "\n%{http_code}", self.url("/v1/messages")],
                              capture_output=True, text=True, timeout=30)
        body, code = proc.stdout.rsplit("\n", 1)
        self.assertEqual(code, "202", proc.stdout + proc.stderr)
        self.assertIn('"id"', body)
        inst.wait_for_maildir("bob@example.com")

    def test_raw_messages_take_the_envelope_from_their_header(self):
        inst = self.http_install()
        self.start(inst)
        raw = ("From: orders@shop.example\r\nTo: ann@example.com\r\nBcc: hidden@example.com\r\n"
               "Subject: raw\r\n\r\nbody\r\n")
        r = self.request("POST", "/v1/messages/raw", raw, content_type="message/rfc822")
        self.assertEqual(r.status, 202, r)
        self.assertEqual([x["address"] for x in r.json()["recipients"]], ["ann@example.com", "hidden@example.com"])
        [data] = inst.wait_for_maildir("hidden@example.com")
        self.assertIn(b"Subject: raw", data)

    def test_an_idempotency_key_gives_the_first_answer_and_never_a_second_message(self):
        inst = self.http_install()
        self.start(inst)
        first = self.request("POST", "/v1/messages", message_body(), headers={"Idempotency-Key": "order-1001"})
        again = self.request("POST", "/v1/messages", message_body(), headers={"Idempotency-Key": "order-1001"})
        self.assertEqual((first.status, again.status), (202, 202))
        self.assertEqual(first.json(), again.json())
        other = self.request("POST", "/v1/messages", message_body(), headers={"Idempotency-Key": "order-1002"})
        self.assertNotEqual(other.json()["id"], first.json()["id"])
        wait_until(lambda: len(inst.maildir_files("ann@example.com")) == 2)
        time.sleep(0.5)
        self.assertEqual(len(inst.maildir_files("ann@example.com")), 2)

    def test_send_at_schedules_delivery(self):
        inst = self.http_install()
        self.start(inst)
        later = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = self.request("POST", "/v1/messages", message_body(send_at=later))
        self.assertEqual(r.status, 202, r)
        time.sleep(1.5)
        status = self.request("GET", f"/v1/messages/{r.json()['id']}").json()
        self.assertEqual(status["recipients"][0]["state"], "queued")
        self.assertEqual(status["recipients"][0]["next_attempt"][:16], later[:16])
        self.assertEqual(inst.maildir_files("ann@example.com"), [])
        inst.check_run("queue", "flush")  # flushes deferred mail, not scheduled mail
        time.sleep(1)
        self.assertEqual(inst.maildir_files("ann@example.com"), [])
        far = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = self.request("POST", "/v1/messages", message_body(send_at=far))
        self.assertEqual(r.status, 400)
        self.assertIn("send_at", r.json()["message"])


class Refusals(HttpTestCase):
    def setUp(self):
        super().setUp()
        self.inst = self.http_install(http_extra='max_body_size = "64KiB"')
        self.start(self.inst)

    def refused(self, status, needle, *args, **kw):
        r = self.request(*args, **kw)
        self.assertEqual(r.status, status, r)
        self.assertIn(needle, r.json()["message"])
        return r

    def test_missing_or_wrong_keys_are_401(self):
        r = self.refused(401, "API key", "POST", "/v1/messages", message_body(), key=None)
        self.assertIn("Basic", r.headers["www-authenticate"])
        self.refused(401, "API key", "POST", "/v1/messages", message_body(), key="pk_wrong")
        self.refused(401, "API key", "GET", "/v1/messages/0000000000000000", key="", scheme="bearer")

    def test_malformed_json_names_where(self):
        self.refused(400, "malformed JSON at byte 9", "POST", "/v1/messages", '{"from": ,}')
        self.refused(400, "must be a JSON object", "POST", "/v1/messages", "[1, 2]")
        self.refused(400, "beyond the range of a double", "POST", "/v1/messages", '{"tags": [1e999]}')

    def test_unknown_and_mistyped_fields_are_named(self):
        self.refused(400, "subjekt: unknown field", "POST", "/v1/messages", message_body(subjekt="x"))
        self.refused(400, "to[1]: expected a string", "POST", "/v1/messages", message_body(to=["a@example.com", 5]))
        self.refused(400, "stream: expected", "POST", "/v1/messages", message_body(stream="bulk"))
        self.refused(400, "attachments[0].content: not valid base64", "POST", "/v1/messages",
                     message_body(attachments=[{"filename": "a", "content": "***"}]))
        self.refused(400, "from: missing", "POST", "/v1/messages", {"to": ["a@example.com"], "text": "x"})
        self.refused(400, "at least one recipient", "POST", "/v1/messages", message_body(to=[]))

    def test_header_injection_is_refused(self):
        self.refused(400, "subject contains a line break", "POST", "/v1/messages", message_body(subject="hi\r\nBcc: victim@example.com"))
        self.refused(400, "line break", "POST", "/v1/messages", message_body(to=["a@example.com\r\nX: y"]))
        self.refused(400, "X-Evil", "POST", "/v1/messages", message_body(headers={"X-Evil": "a\nb"}))

    def test_too_many_recipients_are_refused(self):
        inst = self.http_install(extra="[smtp]\nmax_recipients = 3\n")
        self.start(inst)
        r = self.request("POST", "/v1/messages", message_body(to=[f"r{i}@example.com" for i in range(4)]))
        self.assertEqual(r.status, 400, r)
        self.assertIn("at most 3 recipients", r.json()["message"])

    def test_a_body_over_the_limit_is_413(self):
        r = self.request("POST", "/v1/messages", message_body(text="x" * 100000))
        self.assertEqual(r.status, 413, r)

    def test_a_sender_outside_the_tenants_domains_is_403(self):
        self.refused(403, "not a sending domain", "POST", "/v1/messages", message_body(**{"from": "x@other.example"}))

    def test_tenants_cannot_see_each_others_messages(self):
        r = self.request("POST", "/v1/messages", message_body())
        own = self.request("GET", f"/v1/messages/{r.json()['id']}")
        self.assertEqual(own.status, 200)
        self.refused(404, "no message", "GET", f"/v1/messages/{r.json()['id']}", key=OTHER_KEY)
        self.refused(404, "Domain not found", "POST", "/v3/shop.example/messages",
                     "from=x@shop.example&to=a@example.com&text=hi", key=OTHER_KEY,
                     content_type="application/x-www-form-urlencoded")

    def test_unknown_endpoints_and_methods(self):
        self.refused(404, "no such endpoint", "GET", "/v1/nothing")
        self.refused(405, "use POST", "GET", "/v1/messages")
        self.assertEqual(self.request("GET", "/nothing", key=None).status, 404)

    def test_a_request_without_a_key_is_refused_before_its_body_is_read(self):
        import socket
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            # Announces 50 MB and sends none of it: the answer must not wait for the body.
            s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 50000000\r\nExpect: 100-continue\r\n\r\n")
            answer = s.recv(200)
            self.assertTrue(answer.startswith(b"HTTP/1.1 401"), answer)
        import base64
        auth = base64.b64encode(f"api:{SHOP_KEY}".encode())
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            # Small endpoints take small bodies: refused from the announced length alone.
            s.sendall(b"PUT /v1/templates/x HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth +
                      b"\r\nContent-Length: 3000000\r\n\r\n")
            answer = s.recv(200)
            self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer)

    def test_raw_messages_are_checked_after_line_endings_are_made_crlf(self):
        ok = self.request("POST", "/v1/messages/raw", "From: orders@shop.example\nTo: ann@example.com\n\nLF only\n")
        self.assertEqual(ok.status, 202, ok)
        hidden = "From: orders@shop.example\r\nX-A: 1\nFrom: ceo@bank.example\r\nTo: ann@example.com\r\n\r\nx\r\n"
        self.refused(400, "exactly one From", "POST", "/v1/messages/raw", hidden)
        self.refused(400, "exactly one From", "POST", "/v1/messages/raw",
                     "From: s@shop.example@bank.example\r\nTo: ann@example.com\r\n\r\nx\r\n")
        self.refused(400, "from: expected one mailbox", "POST", "/v1/messages",
                     message_body(**{"from": "s@shop.example@bank.example"}))

    def test_an_idempotent_raw_message_with_an_empty_message_id_still_gets_its_answer(self):
        raw = "From: orders@shop.example\r\nTo: ann@example.com\r\nMessage-ID:\r\n\r\nx\r\n"
        first = self.request("POST", "/v1/messages/raw", raw, headers={"Idempotency-Key": "k-empty"})
        again = self.request("POST", "/v1/messages/raw", raw, headers={"Idempotency-Key": "k-empty"})
        self.assertEqual((first.status, again.status), (202, 202), (first, again))
        self.assertEqual(first.json()["id"], again.json()["id"])

    def test_a_note_with_control_characters_is_refused(self):
        sent = self.request("POST", "/v1/messages", message_body()).json()
        self.refused(400, "note: control characters", "POST", f"/v1/messages/{sent['id']}/resend", {"note": "Sorry\u0000"})

    def test_garbage_on_the_socket_gets_400(self):
        import socket
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 400"))


class RateLimit(HttpTestCase):
    def test_a_tenant_over_its_rate_gets_429_with_retry_after(self):
        inst = self.http_install(shop_extra="rate_limit = 0.5", http_extra="rate_burst = 2")
        self.start(inst)
        statuses = [self.request("GET", "/v1/messages/0000000000000000").status for _ in range(3)]
        self.assertEqual(statuses, [404, 404, 429])
        r = self.request("GET", "/v1/messages/0000000000000000")
        self.assertEqual(r.status, 429)
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        # Another tenant has its own bucket.
        self.assertEqual(self.request("GET", "/v1/messages/0000000000000000", key=OTHER_KEY).status, 404)


class MailgunApi(HttpTestCase):
    def curl(self, *form, path="/v3/shop.example/messages", key=SHOP_KEY):
        args = ["curl", "-sS", "-u", f"api:{key}", "-w", "\n%{http_code}"]
        for f in form:
            args += list(f)
        proc = subprocess.run(args + [self.url(path)], capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, f"curl failed: {proc.stderr}")
        body, code = proc.stdout.rsplit("\n", 1)
        return int(code), json.loads(body) if body.startswith("{") else body

    def test_a_form_post_answers_like_mailgun_and_delivers(self):
        inst = self.http_install()
        self.start(inst)
        code, body = self.curl(("-F", "from=Shop <news@shop.example>"), ("-F", "to=ann@example.com, bob@example.com"),
                               ("-F", "to=carl@example.com"), ("-F", "subject=Hello"), ("-F", "text=Plain"),
                               ("--form-string", "html=<b>Rich</b>"), ("-F", "o:tag=welcome"), ("-F", "h:X-Campaign=c1"),
                               ("-F", "v:order=1001"), ("-F", "attachment=@/etc/hostname;filename=host.txt"))
        self.assertEqual(code, 200, body)
        self.assertEqual(body["message"], "Queued. Thank you.")
        self.assertRegex(body["id"], r"^<.+@.+>$")
        for who in ("ann@example.com", "bob@example.com", "carl@example.com"):
            [data] = inst.wait_for_maildir(who)
        msg = parse_message(data)
        self.assertEqual(msg["X-Campaign"], "c1")
        self.assertEqual(json.loads(msg["X-Mailgun-Variables"]), {"order": "1001"})
        self.assertEqual(msg["Message-ID"], body["id"])
        self.assertTrue(any(p.get_filename() == "host.txt" for p in msg.walk()))

    def test_urlencoded_posts_work(self):
        inst = self.http_install()
        self.start(inst)
        code, body = self.curl(("--data-urlencode", "from=news@shop.example"), ("--data-urlencode", "to=ann@example.com"),
                               ("--data-urlencode", "subject=Grüße"), ("--data-urlencode", "text=a+b & c"))
        self.assertEqual(code, 200, body)
        [data] = inst.wait_for_maildir("ann@example.com")
        msg = parse_message(data)
        self.assertEqual(str(msg["Subject"]), "Grüße")
        self.assertIn("a+b & c", msg.get_body(("plain",)).get_content())

    def test_recipient_variables_make_one_message_per_recipient(self):
        inst = self.http_install()
        self.start(inst)
        variables = {"ann@example.com": {"first": "Ann", "id": 1}, "bob@example.com": {"first": "Bob", "id": 2}}
        code, body = self.curl(("-F", "from=news@shop.example"), ("-F", "to=ann@example.com"), ("-F", "to=bob@example.com"),
                               ("-F", "subject=Hi %recipient.first%"), ("-F", "text=Your id: %recipient.id%"),
                               ("-F", "recipient-variables=" + json.dumps(variables)))
        self.assertEqual(code, 200, body)
        [ann] = inst.wait_for_maildir("ann@example.com")
        [bob] = inst.wait_for_maildir("bob@example.com")
        self.assertEqual(str(parse_message(ann)["Subject"]), "Hi Ann")
        self.assertEqual(str(parse_message(bob)["To"]), "bob@example.com")
        self.assertIn("Your id: 2", parse_message(bob).get_body(("plain",)).get_content())

    def test_messages_mime_takes_a_whole_message(self):
        inst = self.http_install()
        self.start(inst)
        raw = self.inst_file(inst, "m.eml", "From: news@shop.example\r\nTo: x@example.com\r\nSubject: mime\r\n\r\nbody\r\n")
        code, body = self.curl(("-F", "to=ann@example.com"), ("-F", f"message=@{raw}"), path="/v3/shop.example/messages.mime")
        self.assertEqual(code, 200, body)
        [data] = inst.wait_for_maildir("ann@example.com")
        self.assertIn(b"Subject: mime", data)
        self.assertEqual(inst.maildir_files("x@example.com"), [])

    def test_mailgun_errors_have_mailguns_shape(self):
        inst = self.http_install()
        self.start(inst)
        code, body = self.curl(("-F", "to=ann@example.com"), ("-F", "text=x"))
        self.assertEqual((code, body["message"]), (400, "'from' parameter is missing"))
        code, body = self.curl(("-F", "from=a@shop.example"), ("-F", "text=x"))
        self.assertEqual((code, body["message"]), (400, "'to' parameter is missing"))
        code, body = self.curl(("-F", "from=a@shop.example"), ("-F", "to=b@example.com"))
        self.assertEqual(code, 400)
        self.assertIn("'text' or 'html'", body["message"])
        code, body = self.curl(("-F", "from=a@shop.example"), ("-F", "to=b@example.com"), ("-F", "text=x"),
                               path="/v3/elsewhere.example/messages")
        self.assertEqual((code, body["message"]), (404, "Domain not found: elsewhere.example"))
        code, body = self.curl(("-F", "from=a@shop.example"), ("-F", "to=b@example.com"), ("-F", "text=x"),
                               ("-F", "o:deliverytime=not a date"))
        self.assertEqual(code, 400)
        self.assertIn("o:deliverytime", body["message"])

    def test_senders_outside_the_tenants_domains_and_bcc_fields_do_not_pass(self):
        inst = self.http_install()
        self.start(inst)
        code, body = self.curl(("-F", "from=ceo@bank.example"), ("-F", "to=ann@example.com"), ("-F", "text=x"))
        self.assertEqual(code, 403, body)
        self.assertIn("not a sending domain", body["message"])
        raw = self.inst_file(inst, "bcc.eml", "From: news@shop.example\r\nTo: x@example.com\r\n"
                                               "Bcc: secret@example.com\r\nSubject: mime\r\n\r\nbody\r\n")
        code, body = self.curl(("-F", "to=ann@example.com"), ("-F", f"message=@{raw}"), path="/v3/shop.example/messages.mime")
        self.assertEqual(code, 200, body)
        [data] = inst.wait_for_maildir("ann@example.com")
        self.assertNotIn(b"secret@example.com", data)
        foreign = self.inst_file(inst, "f.eml", "From: x@bank.example\r\n\r\nb\r\n")
        code, body = self.curl(("-F", "to=ann@example.com"), ("-F", f"message=@{foreign}"),
                               path="/v3/shop.example/messages.mime")
        self.assertEqual(code, 403, body)

    def test_numbers_in_variables_read_as_written(self):
        inst = self.http_install()
        self.start(inst)
        code, body = self.curl(("-F", "from=news@shop.example"), ("-F", "to=ann@example.com"),
                               ("-F", "text=Total: %recipient.total%"),
                               ("-F", "recipient-variables=" + json.dumps({"ann@example.com": {"total": 19.99}})))
        self.assertEqual(code, 200, body)
        [data] = inst.wait_for_maildir("ann@example.com")
        self.assertIn("Total: 19.99", parse_message(data).get_body(("plain",)).get_content())

    def test_testmode_accepts_without_sending(self):
        inst = self.http_install()
        self.start(inst)
        code, body = self.curl(("-F", "from=a@shop.example"), ("-F", "to=ann@example.com"), ("-F", "text=x"),
                               ("-F", "o:testmode=yes"))
        self.assertEqual((code, body["message"]), (200, "Queued. Thank you."))
        time.sleep(1)
        self.assertEqual(inst.maildir_files("ann@example.com"), [])

    @staticmethod
    def inst_file(inst, name, text):
        path = inst.root / name
        path.write_bytes(text.encode())
        return path



class Templates(HttpTestCase):
    def test_shipped_templates_render_with_escaped_html(self):
        inst = self.http_install(shop_extra='company_name = "Shop & Co"\ncompany_url = "https://shop.example"')
        self.start(inst)
        names = [t["name"] for t in self.request("GET", "/v1/templates").json()["templates"]]
        for name in ("order_received", "order_confirmation", "order_shipped", "order_cancelled"):
            self.assertIn(name, names)
        shipped = self.request("GET", "/v1/templates/order_shipped").json()
        self.assertTrue(shipped["builtin"])
        self.assertEqual(set(shipped["variables"]),
                         {"company_name", "company_url", "today", "customer_name", "order_id", "order_date"})
        r = self.request("POST", "/v1/messages", {
            "from": "orders@shop.example", "to": "ann@example.com", "template": "order_shipped",
            "variables": {"customer_name": "<Ann & Bob>", "order_id": 1001, "order_date": "2026-11-20", "x": 19.99}})
        self.assertEqual(r.status, 202, r)
        [data] = inst.wait_for_maildir("ann@example.com")
        msg = parse_message(data)
        self.assertEqual(str(msg["Subject"]), "Your order 1001 has been shipped")
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        self.assertIn("Hello <Ann & Bob>,", text)
        self.assertIn("Hello &lt;Ann &amp; Bob&gt;,", html)
        self.assertIn("Shop &amp; Co", html)
        self.assertIn('href="https://shop.example"', html)
        self.assertRegex(text, r"\(\d{4}-\d\d-\d\d\)")

    def test_render_and_syntax_errors_name_template_line_and_variable(self):
        inst = self.http_install()
        self.start(inst)
        r = self.request("POST", "/v1/messages", {"from": "orders@shop.example", "to": "ann@example.com",
                                                  "template": "order_shipped", "variables": {"order_id": "1"}})
        self.assertEqual(r.status, 422, r)
        body = r.json()
        self.assertEqual((body["template"], body["variable"]), ("order_shipped", "order_date") if body["part"] == "subject"
                         else ("order_shipped", body["variable"]))
        self.assertIn("unknown variable", body["message"])
        self.assertGreaterEqual(body["line"], 1)
        r = self.request("PUT", "/v1/templates/welcome", {"subject": "Hi", "text": "line one\nline {{ two\n"})
        self.assertEqual(r.status, 422, r)
        self.assertEqual((r.json()["part"], r.json()["line"]), ("text", 2))
        self.assertIn("template welcome, text line 2", r.json()["message"])
        r = self.request("POST", "/v1/messages", {"from": "orders@shop.example", "to": "ann@example.com",
                                                  "template": "missing"})
        self.assertEqual(r.status, 422)
        self.assertIn("template missing does not exist", r.json()["message"])

    def test_tenants_keep_their_own_templates(self):
        inst = self.http_install()
        self.start(inst)
        r = self.request("PUT", "/v1/templates/welcome", {"subject": "Welcome {{ name }}", "text": "Hi {{ name }}!"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.request("PUT", "/v1/templates/welcome",
                                      {"subject": "Welcome, {{ name }}", "text": "Hi {{ name }}!"}).status, 200)
        self.assertEqual(self.request("GET", "/v1/templates/welcome").json()["subject"], "Welcome, {{ name }}")
        self.assertEqual(self.request("GET", "/v1/templates/welcome", key=OTHER_KEY).status, 404)
        r = self.request("POST", "/v1/messages", {"from": "orders@shop.example", "to": "ann@example.com",
                                                  "template": "welcome", "variables": {"name": "Ann"}})
        self.assertEqual(r.status, 202, r)
        [data] = inst.wait_for_maildir("ann@example.com")
        self.assertEqual(str(parse_message(data)["Subject"]), "Welcome, Ann")
        self.assertEqual(self.request("DELETE", "/v1/templates/welcome").status, 204)
        self.assertEqual(self.request("GET", "/v1/templates/welcome").status, 404)
        r = self.request("DELETE", "/v1/templates/order_shipped")
        self.assertEqual(r.status, 404)
        self.assertIn("built in", r.json()["message"])

    def test_recipient_variables_make_a_batch(self):
        inst = self.http_install()
        self.start(inst)
        r = self.request("POST", "/v1/messages", {
            "from": "news@shop.example", "to": ["ann@example.com", "Bob <bob@example.com>"],
            "subject": "Hello {{ first }}", "text": "Your code: {{ code }}",
            "variables": {"code": "DEFAULT"},
            "recipient_variables": {"ann@example.com": {"first": "Ann", "code": "A1"}, "bob@example.com": {"first": "Bob"}}})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(len(r.json()["batch"]), 2)
        [ann] = inst.wait_for_maildir("ann@example.com")
        [bob] = inst.wait_for_maildir("bob@example.com")
        self.assertEqual(str(parse_message(ann)["Subject"]), "Hello Ann")
        self.assertIn("Your code: DEFAULT", parse_message(bob).get_body(("plain",)).get_content())
        self.assertNotIn("ann@example.com", str(parse_message(bob)["To"]))


class MessageOperations(HttpTestCase):
    def delivered(self, inst, address):
        return inst.wait_for_maildir(address)

    def test_events_are_paged_per_tenant(self):
        inst = self.http_install()
        self.start(inst)
        ids = [self.request("POST", "/v1/messages", message_body(to=f"r{i}@example.com")).json()["id"] for i in range(3)]
        for i in range(3):
            inst.wait_for_maildir(f"r{i}@example.com")
        delivered = wait_until(lambda: (lambda items: items if len(items) == 3 else None)(
            self.request("GET", "/v1/events?type=delivered").json()["items"]))
        self.assertEqual(sorted(e["message_id"] for e in delivered), sorted(ids))
        self.assertTrue(all(e["transport"] == "file" and e["response"]["code"] == 250 for e in delivered))
        first = self.request("GET", "/v1/events?limit=2").json()
        self.assertEqual([e["type"] for e in first["items"]], ["accepted", "accepted"])
        rest = self.request("GET", f"/v1/events?limit=1000&page={first['next_page']}").json()
        self.assertEqual(len(first["items"]) + len(rest["items"]), 6)
        again = self.request("GET", f"/v1/events?page={rest['next_page']}").json()
        self.assertEqual(again["items"], [])
        self.assertEqual(self.request("GET", "/v1/events", key=OTHER_KEY).json()["items"], [])
        self.assertEqual(self.request("GET", "/v1/events?type=opened").status, 400)
        self.assertEqual(self.request("GET", "/v1/events?since=yesterday").status, 400)
        for bad in ("5x", "", "0", "1001"):
            r = self.request("GET", f"/v1/events?limit={bad}")
            self.assertEqual((r.status, r.json()["message"]), (400, "limit: 1 to 1000"), bad)
        for bad in ("12", "1.2x", "x.1", "-1.2", "1.", ".1", "1.-", "1.--2", "99999999999999999.1"):
            r = self.request("GET", f"/v1/events?page={bad}")
            self.assertEqual((r.status, r.json()["message"]), (400, "page: not a page token"), bad)

    def test_resend_with_a_note_is_a_new_message_recorded_on_the_original(self):
        inst = self.http_install()
        self.start(inst)
        first = self.request("POST", "/v1/messages", message_body(html="<html><body><p>Order 7</p></body></html>"))
        inst.wait_for_maildir("ann@example.com")
        original = first.json()["id"]
        r = self.request("POST", f"/v1/messages/{original}/resend", {"note": "Sorry & thanks <3"})
        self.assertEqual(r.status, 202, r)
        self.assertNotEqual(r.json()["id"], original)
        self.assertEqual(r.json()["resend_of"], original)
        wait_until(lambda: len(inst.maildir_files("ann@example.com")) == 2)
        copies = [parse_message(p.read_bytes()) for p in inst.maildir_files("ann@example.com")]
        copy = next(m for m in copies if m["X-Postern-Resend-Of"])
        self.assertEqual(copy["X-Postern-Resend-Of"], original)
        self.assertTrue(copy.get_body(("plain",)).get_content().startswith("Sorry & thanks <3\n\n"))
        self.assertIn("<p>Sorry &amp; thanks &lt;3</p>", copy.get_body(("html",)).get_content())
        self.assertNotEqual(copy["Message-ID"], next(m for m in copies if not m["X-Postern-Resend-Of"])["Message-ID"])
        events = self.request("GET", f"/v1/messages/{original}").json()["events"]
        self.assertIn("resent", [e["type"] for e in events])
        self.assertEqual(self.request("POST", f"/v1/messages/{original}/resend", key=OTHER_KEY).status, 404)

    def test_test_send_answers_with_the_transports_result(self):
        inst = self.http_install()
        self.start(inst)
        r = self.request("POST", "/v1/test-send", {"to": "me@example.com"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["transport"], r.json()["delivered"], r.json()["code"]), ("file", True, 250))
        [data] = inst.wait_for_maildir("me@example.com", timeout=2)
        self.assertIn(b"postern test message", data)
        self.assertIn(b"From: postmaster@shop.example", data)
        self.assertEqual(self.request("POST", "/v1/test-send", {}).status, 400)
        self.assertEqual(self.request("POST", "/v1/test-send", {"to": "me@example.com", "from": "x@bank.example"}).status, 403)

    def test_test_send_reports_a_failing_transport(self):
        inst = self.http_install()
        self.start(inst)
        # The file sink's directory made unwritable after start: the transport answers 4xx.
        inst.outbox.mkdir(parents=True, exist_ok=True)
        inst.outbox.chmod(0o500)
        try:
            r = self.request("POST", "/v1/test-send", {"to": "me@example.com"})
        finally:
            inst.outbox.chmod(0o700)
        if os.geteuid() == 0:
            # root writes anyway; the answer is then a success, and that is what it must say.
            self.assertEqual(r.json()["delivered"], r.json()["code"] == 250)
        else:
            self.assertEqual((r.json()["delivered"], r.json()["code"] // 100), (False, 4))


class Webhooks(HttpTestCase):
    def test_webhooks_cannot_reach_private_addresses_by_default(self):
        inst = self.http_install()
        self.start(inst)
        self.assertEqual(self.request("PUT", "/v1/webhooks", {"delivered": f"http://127.0.0.1:{self.port}/healthz"}).status, 200)
        sent = self.request("POST", "/v1/messages", message_body()).json()
        events = wait_until(lambda: (lambda ev: ev if "webhook" in [e["type"] for e in ev] else None)(
            self.request("GET", f"/v1/messages/{sent['id']}").json()["events"]))
        hook = next(e for e in events if e["type"] == "webhook")
        self.assertEqual(hook["response"]["code"] // 100, 4)
        self.assertIn("could not connect (or the address is not allowed)", hook["response"]["text"])

    def test_delivery_events_are_posted_signed(self):
        url, received = webhook_receiver(self)
        # The hook listens on loopback: allowed here on purpose (see the next test).
        inst = self.http_install(http_extra="webhooks_to_private_networks = true")
        self.start(inst)
        r = self.request("PUT", "/v1/webhooks", {"delivered": url})
        self.assertEqual(r.status, 200, r)
        key = r.json()["signing_key"]
        self.assertEqual(r.json()["webhooks"], {"delivered": url})
        self.assertEqual(self.request("GET", "/v1/webhooks", key=OTHER_KEY).json()["webhooks"], {})
        self.assertEqual(self.request("PUT", "/v1/webhooks", {"opened": url}).status, 400)
        self.assertEqual(self.request("PUT", "/v1/webhooks", {"failed": "ftp://x"}).status, 400)
        sent = self.request("POST", "/v1/messages", message_body()).json()
        wait_until(lambda: received, describe=lambda: inst.server_logs())
        body = received[0]
        sig = body["signature"]
        expected = hmac.new(key.encode(), (sig["timestamp"] + sig["token"]).encode(), hashlib.sha256).hexdigest()
        self.assertEqual(sig["signature"], expected)
        self.assertEqual(body["event-data"]["event"], "delivered")
        self.assertEqual(body["event-data"]["recipient"], "ann@example.com")
        self.assertEqual(body["event-data"]["message"]["queue-id"], sent["id"])
        events = wait_until(lambda: (lambda ev: ev if "webhook" in [e["type"] for e in ev] else None)(
            self.request("GET", f"/v1/messages/{sent['id']}").json()["events"]))
        hook_event = next(e for e in events if e["type"] == "webhook")
        self.assertIn(url, hook_event["response"]["text"])


if __name__ == "__main__":
    unittest.main()

"""Campaigns through the real binary and the real policy plugins: contacts and activity in,
a dry run, a test send, the send itself with its progress, one-click unsubscribe, the
completion notice in the file sink, pause/resume/cancel, a kill -9 in the middle, and every
refusal (no_resend, credits, link_guard, bad requests)."""

import email
import email.policy
import re
import socket
import ssl
import unittest
import urllib.request
from datetime import datetime, timedelta, timezone

from http_harness import OTHER_KEY, HttpTestCase, webhook_receiver
from postern_harness import wait_until
from smtp_harness import certificate

ALL_POLICIES = ["consent", "activity_window", "no_resend", "link_guard", "campaign_pacing",
                "frequency_cap", "credits", "completion_notice"]
OWNER = "owner@shop.example"


def days_ago(n):
    return (datetime.now(timezone.utc) - timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def policies_config(order=ALL_POLICIES, grant=10, per_second=1000, cap=5):
    return ("[policies]\norder = [" + ", ".join(f'"{p}"' for p in order) + "]\n"
            f"[policies.credits.grants]\nshop = {grant}\n"
            f'[policies.completion_notice.notify]\nshop = "{OWNER}"\n'
            '[policies.link_guard.allowed]\nshop = ["shop.example"]\n'
            f"[policies.campaign_pacing]\nper_second = {per_second}\n"
            f"[policies.frequency_cap]\nmax = {cap}\n")


MESSAGE = {"from": "Shop <news@shop.example>", "subject": "Z is here",
           "text": "You bought X and Y. Z is in stock: https://shop.example/z\n",
           "html": '<p>You bought X and Y. <a href="https://www.shop.example/z">Z</a> is in stock.</p>'}
AUDIENCE = {"bought_all": ["X", "Y"], "bought_none": ["Z"]}

# Who buys what. The audience "bought X and Y, not Z" selects the buyers and c, d, e, f;
# b bought Z too. c was last seen 400 days ago; d unsubscribed; e refused contact; f hides
# the address; p1..p4 only have Z in the cart (prospects).
BUYERS = [f"a{i}@example.com" for i in range(1, 6)]


def load_shop(test):
    contacts = [{"email": a, "first_name": a[:2].upper()} for a in BUYERS]
    contacts += [{"email": "d@example.com", "unsubscribed": True},
                 {"email": "e@example.com", "consent": {"contact": False}},
                 {"email": "f@example.com", "first_name": "Fay", "consent": {"show_address": False, "show_name": False}}]
    r = test.request("POST", "/v1/contacts", {"contacts": contacts})
    test.assertEqual(r.status, 200, r)
    events = [{"email": a, "type": "order", "products": ["X", "Y"], "time": days_ago(3)}
              for a in BUYERS + ["b@example.com", "d@example.com", "e@example.com", "f@example.com"]]
    events += [{"email": "b@example.com", "type": "order", "products": ["Z"], "time": days_ago(2)},
               {"email": "c@example.com", "type": "order", "products": ["X", "Y"], "time": days_ago(400)}]
    events += [{"email": f"p{i}@example.com", "type": "cart", "products": ["Z"]} for i in range(1, 5)]
    r = test.request("POST", "/v1/activity", {"events": events})
    test.assertEqual(r.status, 200, r)


class CampaignTestCase(HttpTestCase):
    def begin(self, http_extra="", **kw):
        self.inst = self.http_install(http_extra=http_extra, extra=policies_config(**kw))
        self.server = self.start(self.inst)
        load_shop(self)

    def ok(self, method, path, body=None, status=200, **kw):
        r = self.request(method, path, body, **kw)
        self.assertEqual(r.status, status, r)
        return r.json()

    def campaign(self, **fields):
        body = {"name": "Z launch", "audience": AUDIENCE, "message": MESSAGE}
        body.update(fields)
        return body

    def wait_state(self, cid, state, timeout=60):
        return wait_until(lambda: (lambda c: c if c["state"] == state else None)(self.ok("GET", f"/v1/campaigns/{cid}")),
                          timeout=timeout, describe=lambda: repr(self.ok("GET", f"/v1/campaigns/{cid}")))

    def delivered_to(self, address):
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in self.inst.maildir_files(address)]

    def notices(self):
        return [m for m in self.delivered_to(OWNER) if "X-Postern-Campaign" in m]


class WholeCampaign(CampaignTestCase):
    def test_dry_run_test_send_send_progress_unsubscribe_and_notice(self):
        url, hooked = webhook_receiver(self)
        self.begin(http_extra="webhooks_to_private_networks = true")
        self.assertEqual(self.request("PUT", "/v1/webhooks", {"campaign_completed": url}).status, 200)
        # The report: who is selected, who each policy drops and why, what remains.
        report = self.ok("POST", "/v1/campaigns", self.campaign(dry_run=True, list_recipients=True))
        self.assertEqual(report["selected"], 9)
        drops = {(d["policy"], d["reason"]): d["count"] for d in report["drops"]}
        self.assertEqual(drops, {("activity_window", "inactive for more than 365 days"): 1,
                                 ("consent", "unsubscribed"): 1, ("consent", "contact not allowed"): 1})
        self.assertEqual((report["dropped"], report["remaining"], report["cost"]), (3, 6, 0))
        listed = [r["email"] for r in report["recipients"]]
        self.assertEqual(sorted(listed), sorted(BUYERS + ["f***@example.com"]))
        fay = next(r for r in report["recipients"] if r["email"].startswith("f"))
        self.assertEqual(fay["first_name"], "F***")
        self.assertEqual(self.ok("GET", "/v1/campaigns")["items"], [], "a dry run records nothing")
        self.assertEqual(self.inst.all_delivered(), [])

        # A draft, a test copy to the owner, then the send.
        draft = self.ok("POST", "/v1/campaigns", self.campaign(draft=True), status=201)
        cid = draft["id"]
        self.assertEqual(draft["state"], "draft")
        test = self.ok("POST", f"/v1/campaigns/{cid}/test", {"to": [OWNER]}, status=202)
        self.assertEqual(len(test["sent"]), 1)
        self.inst.wait_for_maildir(OWNER)
        copy = self.delivered_to(OWNER)[0]
        self.assertEqual(copy["X-Postern-Campaign-Test"], cid)
        self.assertEqual(copy["Subject"], "Z is here")
        sent = self.ok("POST", f"/v1/campaigns/{cid}/send", status=202)
        self.assertEqual((sent["report"]["selected"], sent["report"]["remaining"]), (9, 6))

        done = self.wait_state(cid, "finished")
        self.assertEqual(done["progress"], {"selected": 9, "dropped": 3, "waiting": 0, "queued": 6, "delivered": 6,
                                            "deferred": 0, "failed": 0, "cancelled": 0})
        # The send agrees with the report, recipient for recipient.
        queued = self.ok("GET", f"/v1/campaigns/{cid}/recipients?state=queued")["items"]
        first = self.ok("GET", f"/v1/campaigns/{cid}/recipients?limit=2")
        rest = self.ok("GET", f"/v1/campaigns/{cid}/recipients?limit=100&page={first['next_page']}")["items"]
        self.assertEqual(len(first["items"]) + len(rest), 9)
        for bad in ("x", "-3", "3x", "", "99999999999999999999"):
            self.assertEqual(self.request("GET", f"/v1/campaigns/{cid}/recipients?page={bad}").status, 400, bad)
        self.assertEqual(sorted(r["email"] for r in queued), sorted(listed))
        dropped = self.ok("GET", f"/v1/campaigns/{cid}/recipients?state=dropped")["items"]
        self.assertEqual(sorted((r["email"], r["policy"]) for r in dropped),
                         [("c@example.com", "activity_window"), ("d@example.com", "consent"),
                          ("e@example.com", "consent")])
        for address in BUYERS + ["f@example.com"]:
            got = self.delivered_to(address)
            self.assertEqual(len(got), 1, address)
            self.assertEqual(got[0]["To"].addresses[0].addr_spec, address)
            self.assertRegex(got[0]["List-Unsubscribe"], r"^<http://127\.0\.0\.1:\d+/unsubscribe/[^>]+>$")
            # RFC 8058 one-click needs HTTPS: with a plain-HTTP link the page's button does it.
            self.assertIsNone(got[0]["List-Unsubscribe-Post"])
        self.assertIn("one-click unsubscribe (RFC 8058) needs an HTTPS link", self.server.log())
        copies = [self.delivered_to(a)[0] for a in BUYERS + ["f@example.com"]]
        self.assertEqual(len({m["Message-ID"] for m in copies}), len(copies), "each copy has its own Message-ID")
        self.assertTrue(all(len(m.get_all("Date")) == 1 for m in copies), "one Date, set when the copy was queued")
        for address in ["b@example.com", "c@example.com", "d@example.com", "e@example.com"]:
            self.assertEqual(self.delivered_to(address), [], address)

        # One click: a GET only shows the button, the POST unsubscribes at once.
        link = re.fullmatch(r"<(http://[^>]+)>", self.delivered_to("a1@example.com")[0]["List-Unsubscribe"]).group(1)
        with urllib.request.urlopen(link, timeout=10) as page:
            self.assertIn(b"<form method=post>", page.read())
        self.assertFalse(self.ok("GET", "/v1/contacts?search=a1@")["items"][0]["unsubscribed"])
        with urllib.request.urlopen(urllib.request.Request(link, data=b"List-Unsubscribe=One-Click", method="POST"),
                                    timeout=10) as page:
            self.assertIn(b"unsubscribed", page.read())
        self.assertTrue(self.ok("GET", "/v1/contacts?search=a1@")["items"][0]["unsubscribed"])
        forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(forged, data=b"", method="POST"), timeout=10)
        self.assertEqual(refused.exception.code, 404)

        # One completion notice, still one after a restart.
        wait_until(lambda: self.notices(), describe=lambda: self.inst.tree())
        notice = self.notices()[0]
        self.assertIn('"Z launch" finished: 6 delivered, 0 failed', notice["Subject"])
        # The tenant's campaign_completed webhook, signed like the others.
        wait_until(lambda: hooked, describe=lambda: self.inst.server_logs())
        completed = hooked[0]["event-data"]
        self.assertEqual((completed["event"], completed["id"]), ("campaign_completed", cid))
        self.assertEqual({k: completed["campaign"][k] for k in ("outcome", "selected", "dropped", "delivered", "failed")},
                         {"outcome": "finished", "selected": 9, "dropped": 3, "delivered": 6, "failed": 0})
        self.assertIn("signature", hooked[0]["signature"])
        self.assertIn("Dropped by policies:       3", notice.get_content())
        self.server.stop()
        self.start(self.inst)
        self.inst.wait_for_queue_empty()
        self.assertEqual(len(self.notices()), 1)
        self.assertEqual([h["event-data"]["id"] for h in hooked], [cid])

        # no_resend: the same campaign again is refused, naming the first; resend overrides.
        again = self.request("POST", "/v1/campaigns", self.campaign())
        self.assertEqual(again.status, 422, again)
        self.assertEqual(again.json()["policy"], "no_resend")
        self.assertIn(cid, again.json()["message"])
        dry = self.ok("POST", "/v1/campaigns", self.campaign(dry_run=True))
        self.assertEqual(dry["refused"]["policy"], "no_resend")
        forced = self.ok("POST", "/v1/campaigns", self.campaign(resend=True), status=202)
        self.wait_state(forced["id"], "finished")
        # a1 unsubscribed meanwhile: the resend leaves them out.
        self.assertEqual(len(self.delivered_to("a1@example.com")), 1)
        self.assertEqual(len(self.delivered_to("a2@example.com")), 2)
        listing = self.ok("GET", "/v1/campaigns")["items"]
        self.assertEqual([c["id"] for c in listing], [forced["id"], cid])
        self.assertTrue(listing[0]["resend"])
        self.assertEqual(listing[1]["audience"]["bought_all"], ["X", "Y"])
        # Another tenant sees none of it.
        self.assertEqual(self.request("GET", f"/v1/campaigns/{cid}", key=OTHER_KEY).status, 404)
        self.assertEqual(self.ok("GET", "/v1/campaigns", key=OTHER_KEY)["items"], [])


class OneClickOverHttps(CampaignTestCase):
    def test_an_https_link_gets_list_unsubscribe_post_and_one_post_unsubscribes(self):
        cert, key = certificate()
        with socket.socket() as probe:  # a port for the HTTPS listener, named in public_url
            probe.bind(("127.0.0.1", 0))
            tls_port = probe.getsockname()[1]
        self.inst = self.http_install(
            http_extra=f'tls_listen = ["127.0.0.1:{tls_port}"]\npublic_url = "https://127.0.0.1:{tls_port}"',
            extra=f'[tls]\ncertificate = "{cert}"\nprivate_key = "{key}"\n' + policies_config())
        self.server = self.start(self.inst)
        load_shop(self)
        cid = self.ok("POST", "/v1/campaigns", self.campaign(), status=202)["id"]
        self.wait_state(cid, "finished")
        got = self.delivered_to("a2@example.com")[0]
        link = re.fullmatch(rf"<(https://127\.0\.0\.1:{tls_port}/unsubscribe/[^>]+)>", got["List-Unsubscribe"]).group(1)
        self.assertEqual(got["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
        # What a mailbox provider does for RFC 8058: one POST with that body, no cookies, no page.
        context = ssl.create_default_context(cafile=str(cert))
        request = urllib.request.Request(link, data=b"List-Unsubscribe=One-Click", method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=10, context=context) as page:
            self.assertEqual(page.status, 200)
        self.assertTrue(self.ok("GET", "/v1/contacts?search=a2@")["items"][0]["unsubscribed"])
        self.assertNotIn("one-click unsubscribe (RFC 8058) needs an HTTPS link", self.server.log())


class ActivityWindowPerRoute(CampaignTestCase):
    def test_a_lifted_route_reaches_contacts_outside_the_window(self):
        # The tenant sends its marketing mail through a route of its own (its own Mailgun
        # domain, say), for which the window is lifted: c, last seen 400 days ago, stays in.
        own_route = ('[policies.activity_window]\nlifted_routes = ["shop-own"]\n'
                     '[[delivery.routes]]\nname = "shop-own"\ntenant = "shop"\nstream = "marketing"\n'
                     'transports = ["file"]\n')
        self.inst = self.http_install(extra=policies_config() + own_route)
        self.server = self.start(self.inst)
        load_shop(self)
        report = self.ok("POST", "/v1/campaigns", self.campaign(dry_run=True, list_recipients=True))
        self.assertEqual({(d["policy"], d["reason"]): d["count"] for d in report["drops"]},
                         {("consent", "unsubscribed"): 1, ("consent", "contact not allowed"): 1})
        self.assertIn("c@example.com", [r["email"] for r in report["recipients"]])
        cid = self.ok("POST", "/v1/campaigns", self.campaign(), status=202)["id"]
        self.wait_state(cid, "finished")
        self.assertEqual(len(self.delivered_to("c@example.com")), 1)


class Refusals(CampaignTestCase):
    def test_credits(self):
        self.begin(grant=10)
        prospects = self.campaign(name="Z for carts", audience={"prospects": True})
        report = self.ok("POST", "/v1/campaigns", dict(prospects, dry_run=True))
        self.assertEqual((report["selected"], report["remaining"], report["cost"]), (4, 4, 12))
        refused = self.request("POST", "/v1/campaigns", prospects)
        self.assertEqual(refused.status, 422, refused)
        self.assertEqual(refused.json()["policy"], "credits")
        self.assertIn("costs 12 credits; tenant shop has 10 left", refused.json()["message"])
        self.assertEqual(self.ok("GET", "/v1/campaigns")["items"], [], "a refused campaign leaves nothing")
        # Three prospects cost 9: paid, and what is left (1) shows in the next refusal.
        three = dict(prospects, audience={"prospects": True}, name="three")
        self.ok("POST", "/v1/contacts", {"contacts": [{"email": "p4@example.com", "unsubscribed": True}]})
        paid = self.ok("POST", "/v1/campaigns", three, status=202)
        self.assertEqual(paid["report"]["cost"], 9)
        self.wait_state(paid["id"], "finished")
        again = self.request("POST", "/v1/campaigns", dict(three, resend=True))
        self.assertEqual(again.status, 422, again)
        self.assertIn("has 1 left", again.json()["message"])

    def test_link_guard_and_frequency_cap(self):
        self.begin(cap=1)
        # link_guard reads the decoded bodies: a quoted-printable link is found too.
        evil = dict(MESSAGE, html='<p>Deal: <a href="https://evil.example/x?q=1">here</a> ' + "é" * 80 + "</p>")
        r = self.request("POST", "/v1/campaigns", self.campaign(message=evil))
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["policy"], "link_guard")
        self.assertIn("https://evil.example/x?q=1", r.json()["message"])

        # frequency_cap at 1: the first campaign passes, the second (resend) drops them all.
        first = self.ok("POST", "/v1/campaigns", self.campaign(), status=202)
        self.wait_state(first["id"], "finished")
        second = self.ok("POST", "/v1/campaigns", self.campaign(resend=True), status=202)
        self.assertEqual(second["report"]["remaining"], 0)
        self.assertEqual({d["policy"] for d in second["report"]["drops"]}, {"activity_window", "consent", "frequency_cap"})
        self.wait_state(second["id"], "finished")
        self.assertEqual(len(self.delivered_to("a2@example.com")), 1)

    def test_bad_requests_are_refused_by_field(self):
        self.begin()
        for body, needle in [
            ({"audience": AUDIENCE, "message": MESSAGE}, "name"),
            ({"name": "n", "message": MESSAGE}, "audience"),
            ({"name": "n", "audience": {"bought_all": "X", "colour": 1}, "message": MESSAGE}, "audience.colour"),
            ({"name": "n", "audience": AUDIENCE}, "message"),
            ({"name": "n", "audience": AUDIENCE, "message": dict(MESSAGE, to=["x@example.com"])}, "message.to"),
            ({"name": "n", "audience": AUDIENCE, "message": {"from": "news@shop.example", "subject": "s"}}, "message.text"),
            ({"name": "n", "audience": AUDIENCE, "message": MESSAGE, "when": "now"}, "when"),
            ({"name": "n", "audience": AUDIENCE, "message": dict(MESSAGE, tags=["t"])}, "message.tags"),
            ({"name": "n", "audience": AUDIENCE, "message": dict(MESSAGE, stream="transactional")}, "message.stream"),
            ({"name": "n", "audience": AUDIENCE, "message": MESSAGE, "stream": "transactional"}, "stream"),
            ({"name": "n", "audience": AUDIENCE, "message": MESSAGE, "from": "news@shop.example"}, "from"),
        ]:
            r = self.request("POST", "/v1/campaigns", body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertIn(needle, r.json()["message"])
        self.assertEqual(self.request("POST", "/v1/campaigns", "{not json").status, 400)
        # The sender and the stream may also stand beside the message, as in the shape.
        beside = {k: v for k, v in MESSAGE.items() if k != "from"}
        report = self.ok("POST", "/v1/campaigns", {"name": "n", "audience": AUDIENCE, "from": MESSAGE["from"],
                                                   "stream": "marketing", "message": beside, "dry_run": True})
        self.assertEqual(report["remaining"], 6)
        self.assertEqual(self.request("POST", "/v1/campaigns", self.campaign(
            message=dict(MESSAGE, **{"from": "x@other.example"}))).status, 403)
        self.assertEqual(self.request("POST", "/v1/campaigns", self.campaign(audience="nobody")).status, 404)
        self.assertEqual(self.request("GET", "/v1/campaigns/C0000").status, 404)
        self.assertEqual(self.request("POST", "/v1/campaigns/C0000/pause").status, 404)
        done = self.ok("POST", "/v1/campaigns", self.campaign(), status=202)
        self.wait_state(done["id"], "finished")
        r = self.request("POST", f"/v1/campaigns/{done['id']}/pause")
        self.assertEqual(r.status, 409, r)
        self.assertIn("finished", r.json()["message"])
        self.assertEqual(self.request("POST", f"/v1/campaigns/{done['id']}/send").status, 409)
        self.assertEqual(self.request("POST", f"/v1/campaigns/{done['id']}/test", {"to": []}).status, 400)
        self.assertEqual(self.request("GET", f"/v1/campaigns/{done['id']}/recipients?state=lost").status, 400)
        for method, path, status in [
            ("GET", "/v1/campaigns?limit=0", 400), ("GET", "/v1/campaigns?limit=10abc", 400),
            ("GET", "/v1/campaigns?limit=", 400), ("GET", "/v1/campaigns?before=yesterday", 400),
            ("GET", "/v1/campaigns?colour=red", 400), ("PUT", "/v1/campaigns", 405),
            ("GET", "/v1/campaigns/C0000/recipients", 404), ("GET", f"/v1/campaigns/{done['id']}/pause", 405),
            ("POST", f"/v1/campaigns/{done['id']}/launch", 404),
            ("GET", f"/v1/campaigns/{done['id']}/recipients?limit=5000", 400),
            ("GET", f"/v1/campaigns/{done['id']}/recipients?limit=2x", 400),
            ("DELETE", "/v1/audiences/nobody", 404), ("PUT", "/v1/audiences", 405),
        ]:
            self.assertEqual(self.request(method, path).status, status, (method, path))


class ListCampaignFromATemplate(CampaignTestCase):
    def test_csv_contacts_a_template_and_a_list_scoped_unsubscribe(self):
        self.inst = self.http_install(extra=policies_config())
        self.server = self.start(self.inst)
        # Contacts from a shop's CSV export, then their orders.
        csv = ("email,first_name,lists,unsubscribed_lists\n"
               "gus@example.com,Gus,news;offers,\n"
               "hal@example.com,Hal,news,\n"
               "ivy@example.com,Ivy,,news\n")
        r = self.request("POST", "/v1/contacts/import", csv, content_type="text/csv")
        self.assertEqual((r.status, r.json()), (200, {"created": 3, "updated": 0}))
        events = [{"email": a, "type": "order", "products": ["X"], "time": days_ago(5)}
                  for a in ("gus@example.com", "hal@example.com", "ivy@example.com")]
        self.assertEqual(self.request("POST", "/v1/activity", {"events": events}).status, 200)
        r = self.request("PUT", "/v1/templates/newsletter",
                         {"subject": "{{ company_name }} news for {{ month }}",
                          "text": "This month: {{ headline }}. https://shop.example/news\n"})
        self.assertEqual(r.status, 201, r)
        body = {"name": "November news", "audience": {"bought_any": ["X"]}, "list": "news",
                "message": {"from": "Shop <news@shop.example>", "template": "newsletter",
                            "variables": {"company_name": "Shop", "month": "November", "headline": "Z is back"}}}
        report = self.ok("POST", "/v1/campaigns", dict(body, dry_run=True, list_recipients=True))
        # ivy left the list: consent drops her for a campaign to it.
        self.assertEqual([(d["policy"], d["reason"]) for d in report["drops"]],
                         [("consent", "unsubscribed from list news")])
        cid = self.ok("POST", "/v1/campaigns", body, status=202)["id"]
        self.wait_state(cid, "finished")
        got = self.delivered_to("gus@example.com")[0]
        self.assertEqual(got["Subject"], "Shop news for November")
        self.assertIn("This month: Z is back.", got.get_content())
        self.assertEqual(len(self.delivered_to("hal@example.com")), 1)
        self.assertEqual(self.delivered_to("ivy@example.com"), [])
        # The link leaves the campaign's list only: gus stays on offers and subscribed overall.
        link = re.fullmatch(r"<(http://[^>]+)>", got["List-Unsubscribe"]).group(1)
        with urllib.request.urlopen(urllib.request.Request(link, data=b"List-Unsubscribe=One-Click", method="POST"),
                                    timeout=10) as page:
            self.assertEqual(page.status, 200)
        gus = self.ok("GET", "/v1/contacts?search=gus@")["items"][0]
        self.assertEqual((gus["unsubscribed"], gus["lists"], gus["unsubscribed_lists"]), (False, ["offers"], ["news"]))


class SavedAudiences(CampaignTestCase):
    def test_save_list_use_and_delete(self):
        self.begin()
        saved = self.ok("POST", "/v1/audiences", {"name": "xy-not-z", "audience": {"bought_none": ["Z"], "bought_all": ["Y", "X", "X"]}})
        self.assertEqual(saved["audience"]["bought_all"], ["X", "Y"])
        self.assertEqual([a["name"] for a in self.ok("GET", "/v1/audiences")["items"]], ["xy-not-z"])
        self.assertEqual(self.ok("GET", "/v1/audiences/xy-not-z")["count"], 9)
        report = self.ok("POST", "/v1/campaigns", self.campaign(audience="xy-not-z", dry_run=True))
        self.assertEqual(report["selected"], 9)
        self.assertEqual(self.request("POST", "/v1/audiences", {"name": "bad name!", "audience": {}}).status, 400)
        self.assertEqual(self.request("POST", "/v1/audiences", {"name": "preview", "audience": {}}).status, 400)
        self.assertEqual(self.request("GET", "/v1/audiences/xy-not-z", key=OTHER_KEY).status, 404)
        self.ok("DELETE", "/v1/audiences/xy-not-z")
        self.assertEqual(self.request("GET", "/v1/audiences/xy-not-z").status, 404)


class PausedAndCancelled(CampaignTestCase):
    def add_many(self, n):
        events = [{"email": f"m{i:03d}@example.com", "type": "order", "products": ["X", "Y"], "time": days_ago(1)}
                  for i in range(n)]
        self.ok("POST", "/v1/activity", {"events": events})

    def test_pause_resume_and_cancel(self):
        self.begin(per_second=5)
        self.add_many(40)
        cid = self.ok("POST", "/v1/campaigns", self.campaign(), status=202)["id"]
        wait_until(lambda: self.ok("GET", f"/v1/campaigns/{cid}")["progress"]["queued"] >= 3)
        self.assertEqual(self.ok("POST", f"/v1/campaigns/{cid}/pause")["state"], "paused")
        held = self.ok("GET", f"/v1/campaigns/{cid}")["progress"]["queued"]
        self.server.log_since_start()
        wait_until(lambda: len(self.inst.all_delivered()) >= held)
        import time
        time.sleep(1.0)  # a paused campaign feeds nothing more: over a second at 5/s, none
        self.assertEqual(self.ok("GET", f"/v1/campaigns/{cid}")["progress"]["queued"], held)
        self.assertEqual(self.ok("POST", f"/v1/campaigns/{cid}/resume")["state"], "sending")
        wait_until(lambda: self.ok("GET", f"/v1/campaigns/{cid}")["progress"]["queued"] >= held + 3)
        self.assertEqual(self.ok("POST", f"/v1/campaigns/{cid}/cancel")["state"], "cancelled")
        status = self.wait_state(cid, "cancelled")
        p = status["progress"]
        self.assertGreater(p["cancelled"], 0)
        self.assertEqual(p["queued"] + p["cancelled"] + p["dropped"], p["selected"])
        wait_until(lambda: self.notices(), describe=lambda: self.inst.tree())
        self.assertIn("cancelled", self.notices()[0]["Subject"])
        self.assertEqual(self.request("POST", f"/v1/campaigns/{cid}/resume").status, 409)
        self.inst.wait_for_queue_empty()
        for path in self.inst.all_delivered():
            self.assertLessEqual(len(list(path.parent.iterdir())), 1, path)

    def test_kill_9_in_the_middle_sends_each_recipient_once(self):
        self.begin(per_second=10)
        self.add_many(40)
        cid = self.ok("POST", "/v1/campaigns", self.campaign(), status=202)["id"]
        wait_until(lambda: self.ok("GET", f"/v1/campaigns/{cid}")["progress"]["queued"] >= 10)
        self.server.kill()
        self.start(self.inst)
        status = self.wait_state(cid, "finished", timeout=120)
        self.assertEqual(status["progress"]["queued"], 46)
        for i in range(40):
            self.assertEqual(len(self.inst.maildir_files(f"m{i:03d}@example.com")), 1, i)
        wait_until(lambda: self.notices())
        self.assertEqual(len(self.notices()), 1)


if __name__ == "__main__":
    unittest.main()

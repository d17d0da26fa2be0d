"""Contacts and activity over the REST API, with the real binary: JSON and CSV upserts,
activity that creates contacts and keeps them active, listing with filters, paging and masking,
subscriptions, and every refusal."""

import json
import unittest
from datetime import datetime, timedelta, timezone

from http_harness import OTHER_KEY, HttpTestCase


def days_ago(n):
    return (datetime.now(timezone.utc) - timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Contacts(HttpTestCase):
    def setUp(self):
        super().setUp()
        self.inst = self.http_install()
        self.start(self.inst)

    def ok(self, *args, **kw):
        r = self.request(*args, **kw)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def listing(self, query=""):
        return self.ok("GET", "/v1/contacts" + query)["items"]

    def test_upserts_activity_and_listing(self):
        r = self.ok("POST", "/v1/contacts", {"contacts": [
            {"email": "Ann@Example.com", "first_name": "Ann", "last_name": "Lee", "lists": ["news"]},
            {"email": "bob@example.com", "first_name": "Bob", "consent": {"show_name": False, "show_address": False}},
        ]})
        self.assertEqual((r["created"], r["updated"]), (2, 0))
        r = self.ok("POST", "/v1/contacts", {"contacts": [{"email": "ann@example.com", "last_name": "Li"}]})
        self.assertEqual((r["created"], r["updated"]), (0, 1))
        r = self.ok("POST", "/v1/activity", {"events": [
            {"email": "carl@example.com", "type": "order", "products": ["p1", "p2"], "order_id": "1001",
             "time": days_ago(400)},
            {"email": "ann@example.com", "type": "cart", "products": ["p3"]},
            {"email": "dora@example.com", "type": "signup", "time": days_ago(10)},
        ]})
        self.assertEqual((r["recorded"], r["contacts_created"]), (3, 2))
        everyone = self.listing()
        self.assertEqual([c["email"] for c in everyone][0], "ann@example.com")
        ann = everyone[0]
        self.assertEqual((ann["first_name"], ann["last_name"], ann["lists"], ann["status"]), ("Ann", "Li", ["news"], "active"))
        bob = next(c for c in everyone if c["email"].endswith("@example.com") and c["email"].startswith("b"))
        self.assertEqual((bob["email"], bob["first_name"]), ("b***@example.com", "B***"))
        self.assertEqual([c["email"] for c in self.listing("?status=inactive")], ["carl@example.com"])
        self.assertEqual([c["email"] for c in self.listing("?list=news")], ["ann@example.com"])
        self.assertEqual([c["email"] for c in self.listing("?search=dora")], ["dora@example.com"])
        # bob hides his address and name: a search must not tell that they match.
        self.assertEqual(self.listing("?search=bob"), [])
        self.assertEqual(self.listing("?search=%25"), [], "% is a character, not a wildcard")
        first = self.ok("GET", "/v1/contacts?limit=2")
        second = self.ok("GET", f"/v1/contacts?limit=2&page={first['next_page']}")
        self.assertEqual(len(first["items"]) + len(second["items"]), 4)
        self.assertNotIn("next_page", second)
        for bad in ("garbage", "12", "1.x", "-1.2", "", "99999999999999999999.1"):
            r = self.request("GET", f"/v1/contacts?page={bad}")
            self.assertEqual((r.status, r.json()["message"]), (400, "page: unknown parameter, or a bad value"), bad)
        for bad in ("2x", "", "-1", "0", "1001"):
            r = self.request("GET", f"/v1/contacts?limit={bad}")
            self.assertEqual((r.status, r.json()["message"]), (400, "limit: 1 to 1000"), bad)
        self.assertEqual(self.request("GET", "/v1/contacts", key=OTHER_KEY).json()["items"], [])

    def test_csv_import_names_the_line_of_a_problem(self):
        csv = ("email,first_name,last_name,lists,unsubscribed\r\n"
               "ann@example.com,Ann,\"Lee, Jr.\",news;offers,false\r\n"
               "bob@example.com,Bob,,,\r\n")
        r = self.request("POST", "/v1/contacts/import", csv, content_type="text/csv")
        self.assertEqual((r.status, r.json()), (200, {"created": 2, "updated": 0}))
        ann = self.listing("?search=ann")[0]
        self.assertEqual((ann["last_name"], ann["lists"]), ("Lee, Jr.", ["news", "offers"]))
        r = self.request("POST", "/v1/contacts/import", "email,unsubscribed_lists\nann@example.com,offers;tips\n",
                         content_type="text/csv")
        self.assertEqual((r.status, r.json()), (200, {"created": 0, "updated": 1}))
        ann = self.listing("?search=ann")[0]
        self.assertEqual((ann["lists"], ann["unsubscribed_lists"]), (["news"], ["offers", "tips"]))
        # A list both joined and left in one row is left: an opt-out wins.
        r = self.request("POST", "/v1/contacts/import", "email,lists,unsubscribed_lists\nann@example.com,news,news\n",
                         content_type="text/csv")
        self.assertEqual(r.status, 200, r)
        ann = self.listing("?search=ann")[0]
        self.assertEqual((ann["lists"], ann["unsubscribed_lists"]), ([], ["news", "offers", "tips"]))
        excel = "\ufeffemail,unsubscribed\r\ncarl@example.com,TRUE\r\n"
        r = self.request("POST", "/v1/contacts/import", excel.encode(), content_type="text/csv")
        self.assertEqual((r.status, r.json()["created"]), (200, 1), r)
        self.assertTrue(self.listing("?search=carl")[0]["unsubscribed"])
        bad = self.request("POST", "/v1/contacts/import", "email,first_name\nann@example.com,Ann\nnot-an-address,X\n",
                           content_type="text/csv")
        self.assertEqual(bad.status, 400)
        self.assertEqual(bad.json()["message"], "line 3: email: not an address")
        bad = self.request("POST", "/v1/contacts/import", "email,colour\na@example.com,red\n", content_type="text/csv")
        self.assertIn('line 1: unknown column "colour"', bad.json()["message"])
        bad = self.request("POST", "/v1/contacts/import", 'email\n"a@example.com\n', content_type="text/csv")
        self.assertIn("not closed", bad.json()["message"])

    def test_subscriptions(self):
        self.ok("POST", "/v1/contacts", {"contacts": [{"email": "ann@example.com", "lists": ["news", "offers"]}]})
        c = self.ok("PUT", "/v1/contacts/ann@example.com/subscriptions", {"lists": {"offers": False}})
        self.assertEqual((c["lists"], c["unsubscribed_lists"], c["unsubscribed"]), (["news"], ["offers"], False))
        c = self.ok("PUT", "/v1/contacts/ann%40example.com/subscriptions", {"unsubscribed": True})
        self.assertTrue(c["unsubscribed"])
        self.assertEqual(self.request("PUT", "/v1/contacts/nobody@example.com/subscriptions", {}).status, 404)
        self.assertEqual(self.request("PUT", "/v1/contacts/ann@example.com/subscriptions", {},
                                      key=OTHER_KEY).status, 404)

    def test_bad_input_is_named(self):
        cases = [
            ({"contacts": [{"email": "x"}]}, "contacts[0].email: not an address"),
            ({"contacts": [{"email": "a@example.com", "colour": 1}]}, "contacts[0].colour: unknown field"),
            ({"contacts": [{"email": "a@example.com", "consent": {"contact": "no"}}]}, "contacts[0].consent.contact"),
            ({"contacts": {}}, "contacts: expected a list"),
            ({"contacts": [{"email": "a@example.com", "consent": {"contact": None}}]},
             "contacts[0].consent.contact: expected true or false"),
        ]
        for body, needle in cases:
            r = self.request("POST", "/v1/contacts", body)
            self.assertEqual(r.status, 400, r)
            self.assertIn(needle, r.json()["message"])
        for body, needle in [
            ({"events": [{"email": "a@example.com", "type": "visit"}]}, "events[0].type"),
            ({"events": [{"email": "a@example.com", "type": "order"}]}, "events[0].products"),
            ({"events": [{"email": "a@example.com", "type": "order", "products": ["x"], "time": "now"}]}, "events[0].time"),
            ({"events": [{"email": "a@example.com", "type": "order", "products": ["x"], "time": days_ago(-3)}]},
             "events[0].time: in the future"),
        ]:
            r = self.request("POST", "/v1/activity", body)
            self.assertEqual(r.status, 400, r)
            self.assertIn(needle, r.json()["message"])
        # An unknown field is named once, with its whole path, at any depth.
        for path, body, message in [
            ("/v1/contacts", {"contacts": [{"email": "a@example.com", "colour": 1}]}, "contacts[0].colour: unknown field"),
            ("/v1/contacts", {"contacts": [{"email": "a@example.com", "consent": {"spam": True}}]},
             "contacts[0].consent.spam: unknown field"),
            ("/v1/contacts", {"contacts": [], "contact": [{"email": "a@example.com"}]}, "contact: unknown field"),
            ("/v1/activity", {"events": [{"email": "a@example.com", "type": "signup", "referrer": "x"}]},
             "events[0].referrer: unknown field"),
            ("/v1/activity", {"events": [], "event": []}, "event: unknown field"),
        ]:
            r = self.request("POST", path, body)
            self.assertEqual((r.status, r.json()["message"]), (400, message))
        self.assertEqual(self.listing(""), [], "nothing of a refused request is stored")
        self.assertEqual(self.request("GET", "/v1/contacts?status=dormant").status, 400)


class Audiences(HttpTestCase):
    def test_rules_select_who_a_campaign_is_for(self):
        inst = self.http_install()
        self.start(inst)
        events = [
            # ann bought X and Y; bob bought X, Y and Z; carl bought X only; dora has Z in her cart
            # and X in her wishlist, bought nothing; erin bought X and has Y in her cart.
            {"email": "ann@example.com", "type": "order", "products": ["X", "Y"], "time": days_ago(30)},
            {"email": "bob@example.com", "type": "order", "products": ["X"], "time": days_ago(20)},
            {"email": "bob@example.com", "type": "order", "products": ["Y", "Z"], "time": days_ago(10)},
            {"email": "carl@example.com", "type": "order", "products": ["X"], "time": days_ago(500)},
            {"email": "dora@example.com", "type": "cart", "products": ["Z"]},
            {"email": "dora@example.com", "type": "wishlist", "products": ["X"]},
            {"email": "erin@example.com", "type": "order", "products": ["X"], "time": days_ago(5)},
            {"email": "erin@example.com", "type": "cart", "products": ["Y"]},
            {"email": "fred@example.com", "type": "order", "products": ["Y"], "time": days_ago(5)},
            {"email": "fred@example.com", "type": "cart", "products": ["Y"]},
        ]
        self.assertEqual(self.request("POST", "/v1/activity", {"events": events}).status, 200)
        self.request("POST", "/v1/contacts", {"contacts": [{"email": "dora@example.com", "lists": ["news"]}]})

        def selected(rule):
            r = self.request("POST", "/v1/audiences/preview", rule)
            self.assertEqual(r.status, 200, r)
            body = r.json()
            emails = [c["email"] for c in body["sample"]]
            self.assertEqual(body["count"], len(emails))
            return emails

        self.assertEqual(selected({"bought_all": ["X", "Y"], "bought_none": ["Z"]}), ["ann@example.com"])
        self.assertEqual(selected({"bought_any": ["Y", "Z"]}),
                         ["ann@example.com", "bob@example.com", "fred@example.com"])
        self.assertEqual(selected({"any_purchase": True, "active_within_days": 365}),
                         ["ann@example.com", "bob@example.com", "erin@example.com", "fred@example.com"])
        # Prospects: something in the cart or wishlist never ordered (fred ordered his Y).
        self.assertEqual(selected({"prospects": True}), ["dora@example.com", "erin@example.com"])
        self.assertEqual(selected({"lists": ["news"]}), ["dora@example.com"])
        self.assertEqual(selected({"bought_all": ["X"], "active_within_days": 100}),
                         ["ann@example.com", "bob@example.com", "erin@example.com"])
        self.assertEqual(self.request("POST", "/v1/audiences/preview", {}, key=OTHER_KEY).json()["count"], 0)
        # Once dora orders what she had in her cart and wishlist she is a buyer, not a prospect.
        self.request("POST", "/v1/activity", {"events": [{"email": "dora@example.com", "type": "order",
                                                          "products": ["Z", "X"]}]})
        self.assertEqual(selected({"prospects": True}), ["erin@example.com"])
        self.request("POST", "/v1/activity", {"events": [{"email": "dora@example.com", "type": "wishlist",
                                                          "products": ["W"]}]})
        self.assertEqual(selected({"prospects": True}), ["dora@example.com", "erin@example.com"])
        bad = self.request("POST", "/v1/audiences/preview", {"bought": ["X"]})
        self.assertEqual((bad.status, bad.json()["message"]), (400, "bought: unknown field"))
        bad = self.request("POST", "/v1/audiences/preview", {"active_within_days": 0})
        self.assertIn("active_within_days", bad.json()["message"])


class ContactsCli(HttpTestCase):
    def test_import_and_list_from_the_command_line(self):
        inst = self.http_install()
        csv = inst.root / "contacts.csv"
        csv.write_text("email,first_name,last_name,show_address\nann@example.com,Ann,Lee,true\n"
                       "bob@example.com,Bob,Ray,false\n")
        out = inst.check_run("contacts", "import", "--tenant", "shop", str(csv))
        self.assertIn("2 contacts created, 0 updated for tenant shop", out.stdout)
        listed = inst.check_run("contacts", "list", "--tenant", "shop").stdout.splitlines()
        self.assertEqual(sorted(l.split("\t")[0] for l in listed), ["ann@example.com", "b***@example.com"])
        self.assertEqual(inst.check_run("contacts", "list", "--tenant", "other").stdout, "")
        # The server sees what the command line wrote (the same database).
        self.start(inst)
        self.assertEqual(len(self.request("GET", "/v1/contacts").json()["items"]), 2)
        csv.write_text("email\nnot an address\n")
        bad = inst.run("contacts", "import", "--tenant", "shop", str(csv))
        self.assertEqual(bad.returncode, 65)
        self.assertIn("line 2: email: not an address", bad.stderr)
        self.assertEqual(inst.run("contacts", "list", "--tenant", "nobody").returncode, 64)

    def test_json_import_and_list_filters_from_the_command_line(self):
        inst = self.http_install()
        upsert = inst.root / "contacts.json"
        upsert.write_text(json.dumps({"contacts": [
            {"email": "ann@example.com", "first_name": "Ann", "lists": ["news"], "unsubscribed_lists": ["offers"]},
            {"email": "bob@example.com", "first_name": "Bob", "consent": {"contact": False}, "lists": ["news"]}]}))
        out = inst.check_run("contacts", "import", "--tenant", "shop", str(upsert))
        self.assertIn("2 contacts created, 0 updated for tenant shop", out.stdout)
        events = inst.root / "events.json"
        events.write_text(json.dumps({"events": [
            {"email": "ann@example.com", "type": "order", "products": ["X"], "time": days_ago(3)},
            {"email": "carl@example.com", "type": "order", "products": ["X"], "time": days_ago(400)}]}))
        inst.check_run("contacts", "activity", "--tenant", "shop", str(events))

        def listed(*args):
            lines = inst.check_run("contacts", "list", "--tenant", "shop", *args).stdout.splitlines()
            return sorted(line.split("\t")[0] for line in lines)
        # carl is known only from an order of 400 days ago: inactive. An import is an
        # interaction, so ann and bob are active.
        self.assertEqual(listed("--list", "news"), ["ann@example.com", "bob@example.com"])
        self.assertEqual(listed("--status", "active"), ["ann@example.com", "bob@example.com"])
        self.assertEqual(listed("--status", "inactive"), ["carl@example.com"])
        self.assertEqual(listed("--search", "car"), ["carl@example.com"])
        self.assertEqual(listed("--list", "news", "--search", "bob"), ["bob@example.com"])
        self.assertEqual(listed("--list", "offers"), [])
        bob = inst.check_run("contacts", "list", "--tenant", "shop", "--search", "bob").stdout
        self.assertIn("\tno contact", bob)

        self.start(inst)
        ann = self.request("GET", "/v1/contacts?search=ann").json()["items"][0]
        self.assertEqual((ann["lists"], ann["unsubscribed_lists"]), (["news"], ["offers"]))
        upsert.write_text(json.dumps({"contacts": [{"email": "dan@example.com", "consent": {"contact": "yes"}}]}))
        bad = inst.run("contacts", "import", "--tenant", "shop", str(upsert))
        self.assertEqual(bad.returncode, 65)
        self.assertIn("contacts[0].consent.contact: expected true or false", bad.stderr)
        upsert.write_text('{"contacts": [')
        bad = inst.run("contacts", "import", "--tenant", "shop", str(upsert))
        self.assertEqual(bad.returncode, 65)
        self.assertEqual(len(self.request("GET", "/v1/contacts").json()["items"]), 3, "nothing of a bad file is stored")

    def test_activity_and_subscriptions_from_the_command_line(self):
        inst = self.http_install()
        events = inst.root / "events.json"
        events.write_text(json.dumps({"events": [
            {"email": "ann@example.com", "type": "order", "products": ["X"], "time": days_ago(3)},
            {"email": "dora@example.com", "type": "cart", "products": ["Z"]}]}))
        out = inst.check_run("contacts", "activity", "--tenant", "shop", str(events))
        self.assertIn("2 events recorded, 2 contacts created for tenant shop", out.stdout)
        out = inst.check_run("contacts", "subscriptions", "--tenant", "shop", "ann@example.com",
                             "--join", "news", "--join", "offers", "--leave", "offers")
        self.assertIn("ann@example.com\tsubscribed\tlists=news\tleft=offers", out.stdout)
        out = inst.check_run("contacts", "subscriptions", "--tenant", "shop", "ann@example.com", "--unsubscribe")
        self.assertIn("\tunsubscribed\t", out.stdout)
        self.start(inst)
        ann = self.request("GET", "/v1/contacts?search=ann").json()["items"][0]
        self.assertEqual((ann["unsubscribed"], ann["lists"], ann["unsubscribed_lists"]), (True, ["news"], ["offers"]))
        prospects = self.request("POST", "/v1/audiences/preview", {"prospects": True}).json()
        self.assertEqual([c["email"] for c in prospects["sample"]], ["dora@example.com"])

        events.write_text(json.dumps({"events": [{"email": "x@example.com", "type": "visit"}]}))
        bad = inst.run("contacts", "activity", "--tenant", "shop", str(events))
        self.assertEqual(bad.returncode, 65)
        self.assertIn("events[0].type: expected order, cart, wishlist or signup", bad.stderr)
        events.write_text("{not json")
        self.assertEqual(inst.run("contacts", "activity", "--tenant", "shop", str(events)).returncode, 65)
        missing = inst.run("contacts", "subscriptions", "--tenant", "shop", "nobody@example.com", "--unsubscribe")
        self.assertEqual(missing.returncode, 65)
        self.assertIn("has no contact nobody@example.com", missing.stderr)
        both = inst.run("contacts", "subscriptions", "--tenant", "shop", "ann@example.com", "--unsubscribe",
                        "--resubscribe")
        self.assertEqual(both.returncode, 64)


if __name__ == "__main__":
    unittest.main()

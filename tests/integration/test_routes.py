"""Delivery routes and limits, with the real binary: mail is sent over the REST API (which can
set the stream and tags) and lands in the file sink or in the test plugin "scripted", which
writes what it accepts to data/scripted/."""

import re
import time
import unittest

from http_harness import HttpTestCase
from postern_harness import wait_until

ROUTES = """
[transports.scripted]
{scripted}

[[delivery.routes]]
name = "campaigns"
stream = "marketing"
transports = ["scripted"]

[[delivery.routes]]
name = "vip"
recipient_domain = ["vip.example", "VIP2.example"]
transports = ["scripted"]
"""


class Routes(HttpTestCase):
    def routed_install(self, scripted="", **kw):
        return self.http_install(test_plugins=True, extra=ROUTES.format(scripted=scripted), **kw)

    def send(self, to, **fields):
        body = {"from": "orders@shop.example", "to": to, "subject": "s", "text": "t"}
        body.update(fields)
        r = self.request("POST", "/v1/messages", body)
        self.assertEqual(r.status, 202, r)
        return r.json()["id"]

    def scripted_files(self, inst):
        d = inst.scripted_dir
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []

    def test_the_first_matching_route_chooses_and_the_rest_takes_the_default(self):
        inst = self.routed_install()
        self.start(inst)
        marketing = self.send(["ann@example.com"], stream="marketing")
        mixed = self.send(["bob@example.com", "carl@vip.example", "dora@vip2.EXAMPLE"])
        wait_until(lambda: len(self.scripted_files(inst)) == 3, describe=lambda: inst.tree())
        files = self.scripted_files(inst)
        self.assertIn(f"{marketing}.0.eml", files)
        self.assertIn(f"{mixed}.1.eml", files)
        self.assertIn(f"{mixed}.2.eml", files)
        [data] = inst.wait_for_maildir("bob@example.com")  # the default route: the file sink
        self.assertEqual(inst.maildir_files("ann@example.com"), [])
        status = self.request("GET", f"/v1/messages/{mixed}").json()
        self.assertEqual([r["transport"] for r in status["recipients"]], ["file", "scripted", "scripted"])

    def test_a_route_whose_transports_are_down_keeps_its_mail_waiting(self):
        inst = self.routed_install(scripted='unavailable = "switched off for the test"')
        self.start(inst)
        marketing = self.send(["ann@example.com"], stream="marketing")
        plain = self.send(["bob@example.com"])
        inst.wait_for_maildir("bob@example.com")
        deferred = wait_until(lambda: (lambda s: s if s["recipients"][0]["state"] == "deferred" else None)(
            self.request("GET", f"/v1/messages/{marketing}").json()))
        self.assertIn("route campaigns: none of its transports is available",
                      deferred["recipients"][0]["last_response"]["text"])
        self.assertEqual(inst.maildir_files("ann@example.com"), [], "never sent through another route")
        self.assertEqual(self.request("GET", f"/v1/messages/{plain}").json()["recipients"][0]["state"], "delivered")

    def test_postern_routes_prints_the_table_with_availability(self):
        inst = self.routed_install(scripted='unavailable = "switched off for the test"')
        out = inst.check_run("routes").stdout
        self.assertRegex(out, r"campaigns\s+stream=marketing\s+scripted \(no: switched off for the test\)"
                              r"\s+-> none available: mail waits")
        self.assertRegex(out, r"vip\s+recipient_domain=vip.example,VIP2.example\s+scripted \(no: ")
        self.assertRegex(out, r"default\s+everything else\s+file \(yes\)\s+-> file")

    def test_bad_routes_are_configuration_errors(self):
        inst = self.http_install(extra='[[delivery.routes]]\nname = "x"\nstream = "bulk"\n')
        out = inst.run("config", "check")
        self.assertEqual(out.returncode, 78, out.stdout + out.stderr)
        self.assertIn("delivery.routes[0].stream", out.stderr)
        self.assertIn("delivery.routes[0].transports: a route needs at least one transport", out.stderr)
        inst = self.http_install(extra='[[delivery.routes]]\ntenant = "shopp"\ntransports = ["file"]\n')
        out = inst.run("config", "check")
        self.assertEqual(out.returncode, 78)
        self.assertIn("delivery.routes[0].tenant: no tenant named shopp", out.stderr)
        inst = self.http_install(extra='[[delivery.limits]]\nrate = 5\n')
        out = inst.run("config", "check")
        self.assertEqual(out.returncode, 78)
        self.assertIn("names either a transport or a domain", out.stderr)


class Limits(HttpTestCase):
    def test_a_domain_rate_limit_spaces_deliveries_and_loses_nothing(self):
        inst = self.http_install(extra='[[delivery.limits]]\ndomain = "slow.example"\nrate = 2\n')
        self.start(inst)
        ids = [self.request("POST", "/v1/messages", {"from": "o@shop.example", "to": f"u{i}@slow.example",
                                                      "subject": "s", "text": "t"}).json()["id"] for i in range(6)]
        fast = self.request("POST", "/v1/messages", {"from": "o@shop.example", "to": "x@fast.example",
                                                     "subject": "s", "text": "t"}).json()["id"]
        inst.wait_for_maildir("x@fast.example")
        for i in range(6):
            inst.wait_for_maildir(f"u{i}@slow.example")
        times = []
        for queue_id in ids:
            events = self.request("GET", f"/v1/messages/{queue_id}").json()["events"]
            times.append(next(e["time"] for e in events if e["type"] == "delivered"))
            # Held back in memory, not deferred: one attempt each.
            self.assertEqual(self.request("GET", f"/v1/messages/{queue_id}").json()["recipients"][0]["attempts"], 1)
        times.sort()
        # Two at once (a second's worth), then two a second: the last at least 1.5 s after the first.
        first, last = (time.mktime(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + float("0." + t[20:23])
                       for t in (times[0], times[-1]))
        self.assertGreaterEqual(last - first, 1.5, times)
        self.assertTrue(fast)


if __name__ == "__main__":
    unittest.main()

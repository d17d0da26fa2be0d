"""REST API test helpers: a postern with an HTTP listener on an ephemeral loopback port,
tenants with API keys, and a small HTTP client on the standard library."""

import base64
import hashlib
import http.client
import http.server
import json
import re
import threading

from postern_harness import PosternTestCase, wait_until

LISTENING = re.compile(r"\[http\] listening on (\S+):(\d+)")

SHOP_KEY = "pk_shop_0123456789abcdef0123456789abcdef"
OTHER_KEY = "pk_other_fedcba9876543210fedcba9876543210"


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def webhook_receiver(testcase):
    """A webhook endpoint on loopback, stopped at the end of the test: its URL, and the list
    of JSON bodies POSTed to it (each answered 200)."""
    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    testcase.addCleanup(server.shutdown)
    return f"http://127.0.0.1:{server.server_address[1]}/hook", received


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class HttpTestCase(PosternTestCase):
    """Starts postern with [http] on 127.0.0.1:0, tenant "shop" (key SHOP_KEY, sending domain
    shop.example) and tenant "other" (key OTHER_KEY, sending domain other.example)."""

    def http_install(self, http_extra="", shop_extra="", transports=("file",), delivery=None, extra="", **kw):
        """`extra` goes at the end of the file (after [delivery], so [[delivery.routes]] may follow)."""
        text = '[http]\nlisten = ["127.0.0.1:0"]\n' + http_extra + "\n"
        text += ('[tenants.shop]\nsending_domains = ["shop.example"]\n'
                 f'api_keys = [{{ name = "backend", sha256 = "{sha256(SHOP_KEY)}" }}]\n' + shop_extra + "\n"
                 '[tenants.other]\nsending_domains = ["other.example"]\n'
                 f'api_keys = [{{ name = "backend", sha256 = "{sha256(OTHER_KEY)}" }}]\n')
        return self.install(transports=transports, delivery=delivery, extra=text + extra, **kw)

    def start(self, inst):
        server = inst.start_server()
        found = wait_until(lambda: LISTENING.findall(server.log_since_start()),
                           describe=lambda: "no 'listening on' line:\n" + server.log_since_start())
        self.port = int(found[0][1])
        return server

    def request(self, method, path, body=None, key=SHOP_KEY, headers=None, scheme="basic", content_type=None):
        """One request on a fresh connection. `body` may be a dict (sent as JSON), str or bytes."""
        h = dict(headers or {})
        if key is not None:
            if scheme == "basic":
                h["Authorization"] = "Basic " + base64.b64encode(f"api:{key}".encode()).decode()
            else:
                h["Authorization"] = f"Bearer {key}"
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        if content_type:
            h["Content-Type"] = content_type
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode(errors="replace"))
        finally:
            conn.close()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

"""A local stand-in for Mailgun's sending API, for the mailgun transport's integration tests.

The real service cannot be reached from the machines these tests run on, so this server
behaves as Mailgun's API documentation describes the calls the transport makes:

- ``POST /v3/{domain}/messages.mime``, multipart/form-data with one or more ``to`` fields, the
  raw message as the file part ``message`` and options such as ``o:testmode``. HTTP Basic
  authentication with the user ``api`` and the API key as password.
  200 ``{"id": "<...@domain>", "message": "Queued. Thank you."}`` when accepted;
  400 ``{"message": ...}`` for a missing or invalid parameter; 401 for a wrong key;
  404 ``{"message": "Domain not found: ..."}`` for a domain the account does not have;
  413 when the request is larger than the size limit (25 MB at Mailgun, smaller here).
- ``GET /v3/domains/{domain}``: 200 with the domain, 401 or 404 as above.

Tests can also script answers per recipient (``on_recipient``): any status with a JSON body
and header fields (429 with Retry-After, 500, 503, 403, ...), or a hang that answers nothing
for a while (a time-out on the client's side). Everything received is recorded with its
arrival time and the connection it came on (keep-alive checks). Standard library only.
"""

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAILGUN_MAX_SIZE = 25 * 1024 * 1024


class Answer:
    """A scripted answer: a status, a JSON body (dict) and header fields; or, with `hang`,
    nothing for that many seconds, then the connection is closed."""

    def __init__(self, status=200, body=None, headers=None, hang=0.0, delay=0.0):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.hang = hang
        self.delay = delay


class Received:
    """One request as the fake saw it."""

    def __init__(self, method, path, headers, body, connection, started):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.connection = connection
        self.time = started
        self.fields = parse_form(headers.get("Content-Type", ""), body) if method == "POST" else []
        self.status = None

    def values(self, name):
        return [value for field, value, _ in self.fields if field == name]

    @property
    def to(self):
        return self.values("to")

    @property
    def message(self):
        parts = self.values("message")
        return parts[0] if parts else None

    def filename(self, name):
        for field, _, filename in self.fields:
            if field == name:
                return filename
        return None

    def auth(self):
        """(user, password) of the Basic credentials, or None."""
        value = self.headers.get("Authorization", "")
        if not value.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        except ValueError:
            return None
        return user, password


def parse_form(content_type, body):
    """multipart/form-data (RFC 7578) → [(name, value bytes, filename or None)]. Parts are kept
    byte for byte (the email package would parse a message/rfc822 part instead)."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or not m:
        return []
    delimiter = b"--" + m.group(1).encode()
    out = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, _, value = chunk[2:].partition(b"\r\n\r\n")  # past the CRLF after the delimiter
        value = value[:-2] if value.endswith(b"\r\n") else value
        disposition = next((line for line in head.decode("latin-1").split("\r\n")
                            if line.lower().startswith("content-disposition:")), "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name:
            out.append((name.group(1), value, filename.group(1) if filename else None))
    return out


class FakeMailgun:
    """The server, on 127.0.0.1 and a free port, running in a thread until `stop()`."""

    def __init__(self, domain, api_key, max_size=MAILGUN_MAX_SIZE):
        self.domain = domain
        self.api_key = api_key
        self.max_size = max_size
        self.requests = []
        self.rules = {}  # recipient address -> [Answer, ...] (used in turn, the last one repeats)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()
        self._ids = 0
        self._connections = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Mailgun's front end does

            def setup(self):
                super().setup()
                with fake.lock:
                    fake._connections += 1
                    self.connection_id = fake._connections

            def log_message(self, *args):  # quiet: failures print the records instead
                pass

            def do_GET(self):
                fake._handle(self, b"")

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                fake._handle(self, self.rfile.read(length) if length else b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-mailgun", daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    # --- scripting ----------------------------------------------------------------------------

    def on_recipient(self, address, *answers):
        """Answers requests that name `address` in `to` with `answers` in turn (the last repeats;
        None stands for the answer Mailgun itself would give)."""
        with self.lock:
            self.rules[address] = list(answers)

    # --- what was seen --------------------------------------------------------------------------

    def sent_to(self, address):
        """The requests whose `to` fields include `address`, oldest first."""
        with self.lock:
            return [r for r in self.requests if address.encode() in r.to]

    @property
    def connections(self):
        with self.lock:
            return self._connections

    def describe(self):
        with self.lock:
            return "\n".join(f"  {r.time:.3f} conn {r.connection} {r.method} {r.path} to={r.to} -> {r.status}"
                             for r in self.requests) or "  (no requests)"

    # --- the API ----------------------------------------------------------------------------------

    def _handle(self, handler, body):
        received = Received(handler.command, handler.path, handler.headers, body, handler.connection_id, time.time())
        with self.lock:
            self.requests.append(received)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            answer = self._decide(received)
            if answer.hang:
                self.stopping.wait(answer.hang)
                handler.close_connection = True
                received.status = "hung"
                return
            if answer.delay:
                self.stopping.wait(answer.delay)
            received.status = answer.status
            payload = json.dumps(answer.body).encode() if answer.body is not None else b""
            handler.send_response(answer.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            for k, v in answer.headers.items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(payload)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _decide(self, r):
        """Mailgun's documented behaviour, checked in the order its API does."""
        if r.auth() != ("api", self.api_key):
            return Answer(401, {"message": "Invalid private key"})
        if r.method == "GET":
            m = re.fullmatch(r"/v3/domains/([^/?]+)", r.path)
            if not m:
                return Answer(404, {"message": "Not Found"})
            if m.group(1) != self.domain:
                return Answer(404, {"message": f"Domain not found: {m.group(1)}"})
            return Answer(200, {"domain": {"name": self.domain, "state": "active"}})
        m = re.fullmatch(r"/v3/([^/?]+)/messages\.mime", r.path)
        if r.method != "POST" or not m:
            return Answer(404, {"message": "Not Found"})
        if m.group(1) != self.domain:
            return Answer(404, {"message": f"Domain not found: {m.group(1)}"})
        if len(r.body) > self.max_size:
            return Answer(413, {"message": "request entity too large"})
        if not r.to:
            return Answer(400, {"message": "'to' parameter is missing"})
        if r.message is None:
            return Answer(400, {"message": "'message' parameter is missing"})
        for address in r.to:
            if not re.fullmatch(rb"[^@\s,]+@[^@\s,]+\.[^@\s,]+", address):
                return Answer(400, {"message": "'to' parameter is not a valid address. please check documentation"})
        with self.lock:
            for address in r.to:
                answers = self.rules.get(address.decode())
                if answers:
                    answer = answers.pop(0) if len(answers) > 1 else answers[0]
                    if answer is not None:  # None: Mailgun's own answer
                        return answer
                    break
            self._ids += 1
            message_id = f"<{time.strftime('%Y%m%d%H%M%S')}.{self._ids}.{id(r) & 0xffff:04X}@{self.domain}>"
        return Answer(200, {"id": message_id, "message": "Queued. Thank you."})

"""SMTP test helpers: a postern with an SMTP listener on an ephemeral loopback port, a TLS
certificate made for the test, tenants with hashed passwords, and raw-socket dialogues."""

import functools
import re
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

from postern_harness import POSTERN_BIN, PosternTestCase, wait_until

LISTENING = re.compile(r"\[smtp\] listening on (\S+):(\d+)( \(implicit TLS\))?")


@functools.lru_cache(maxsize=None)
def certificate():
    """A self-signed certificate and key for CN=localhost (made once per test process)."""
    d = Path(tempfile.mkdtemp(prefix="postern-tls-"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")], check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


@functools.lru_cache(maxsize=None)
def password_hash(password):
    proc = subprocess.run([POSTERN_BIN, "hash-password"], input=password + "\n", capture_output=True, text=True,
                          check=True)
    return proc.stdout.strip()


def client_context():
    ctx = ssl.create_default_context(cafile=str(certificate()[0]))
    return ctx


class SmtpTestCase(PosternTestCase):
    """Starts postern with [smtp] on 127.0.0.1:0 (and :0 implicit TLS), tenant "shop" with
    login shop/s3cret, tenant "local" for trusted 127.0.0.1 unless `trusted` says otherwise."""

    def smtp_install(self, trusted=("127.0.0.1/32",), smtp_extra="", transports=("file",), delivery=None,
                     extra="", **kw):
        cert, key = certificate()
        smtp = ['listen = ["127.0.0.1:0"]', 'tls_listen = ["127.0.0.1:0"]', 'trusted_tenant = "local"',
                f"trusted_networks = [{', '.join(repr(t).replace(chr(39), chr(34)) for t in trusted)}]",
                'auth_failure_delay = "10ms"']
        text = "[smtp]\n" + "\n".join(smtp) + "\n" + smtp_extra + "\n"
        text += f'[tls]\ncertificate = "{cert}"\nprivate_key = "{key}"\n'
        text += ('[tenants.shop]\nsmtp_users = [{ user = "shop", password_hash = "%s" }]\n'
                 "[tenants.local]\n" % password_hash("s3cret"))
        inst = self.install(transports=transports, delivery=delivery, extra=text + extra, **kw)
        return inst

    def open_transaction(self, recipient="t@example.com", sender="a@shop.example", mail_params=""):
        """A raw dialogue past EHLO, MAIL and RCPT, ready for DATA or BDAT."""
        d = Dialogue(self.port)
        d.reply()
        d.command("EHLO c")
        d.command(f"MAIL FROM:<{sender}>{mail_params}")
        d.command(f"RCPT TO:<{recipient}>")
        return d

    def start(self, inst):
        server = inst.start_server()
        found = wait_until(lambda: LISTENING.findall(server.log_since_start()),
                           describe=lambda: "no 'listening on' line:\n" + server.log_since_start())
        self.port = next(int(p) for _, p, tls in found if not tls)
        self.tls_port = next((int(p) for _, p, tls in found if tls), None)
        return server


class Dialogue:
    """A raw SMTP conversation on a socket: send bytes, read complete replies."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """One reply (possibly multi-line): (code, text with lines joined by newlines)."""
        lines = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"connection closed; got so far: {lines!r} {self.buffer!r}")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line.decode(errors="replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), "\n".join(l[4:] for l in lines)

    def command(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self):
        """True if the server closed the connection (after any pending data)."""
        try:
            self.sock.settimeout(5)
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False

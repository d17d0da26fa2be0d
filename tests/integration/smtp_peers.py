"""SMTP servers for postern's smtp transport to deliver to, on loopback only.

- ScriptedSmtpServer: a small threaded SMTP server (standard library only) that records every
  connection, command and transaction, and answers as the test scripts it: STARTTLS with a
  certificate, AUTH PLAIN/LOGIN with one user, chosen replies per RCPT, a dropped connection
  after DATA, no PIPELINING, and so on.
- SmtpSink: Postfix's smtp-sink(1), dumping each transaction into a file, its -v output kept to
  count connections and commands.

Both are stopped in the test's cleanups.
"""

import base64
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from postern_harness import wait_until


def free_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_listener(port, timeout=10.0):
    def listening():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(listening, timeout, describe=lambda: f"nothing listens on 127.0.0.1:{port}")


class Transaction:
    """One mail transaction the scripted server took part in."""

    def __init__(self, connection):
        self.connection = connection  # number of the connection, from 1
        self.mail = ""                # the MAIL command line
        self.rcpts = []               # RCPT command lines, accepted or not
        self.data = b""               # the content as received, dot-stuffing undone
        self.accepted = 0             # RCPTs answered 2xx
        self.pipelined = False        # RCPTs had arrived before MAIL was answered
        self.tls = False
        self.user = None              # the authenticated user, if any

    def __repr__(self):
        return f"<Transaction #{self.connection} {self.mail!r} {self.rcpts!r} tls={self.tls} user={self.user!r}>"


class ScriptedSmtpServer:
    """An SMTP server on 127.0.0.1:<ephemeral port>, one thread per connection.

    certificate: (cert.pem, key.pem) to offer STARTTLS with.
    user, password: credentials AUTH accepts (offered only after STARTTLS when a certificate
                    is set); with them, MAIL needs authentication.
    auth_mechanisms: what AUTH offers.
    auth_failure: the reply to wrong credentials.
    pipelining: offer PIPELINING.
    rcpt_replies: {address: reply line} for RCPT; others get 250.
    drop_after_data: close the connection once the content has arrived, without a reply.
    """

    def __init__(self, testcase, certificate=None, user=None, password=None, auth_mechanisms=("PLAIN", "LOGIN"),
                 auth_failure="535 5.7.8 Error: authentication failed", pipelining=True, rcpt_replies=None,
                 drop_after_data=False, final_reply="250 2.0.0 Ok: queued as SCRIPTED{n}"):
        self.certificate = certificate
        self.user = user
        self.password = password
        self.auth_mechanisms = auth_mechanisms
        self.auth_failure = auth_failure
        self.pipelining = pipelining
        self.rcpt_replies = dict(rcpt_replies or {})
        self.drop_after_data = drop_after_data
        self.final_reply = final_reply
        self.lock = threading.Lock()
        self.connections = 0
        self.transactions = []
        self.commands = []           # (connection number, line), AUTH payloads hidden
        self.auth_attempts = []      # (connection number, mechanism, user, ok)
        self.server_names = []       # SNI names seen in TLS handshakes
        self._threads = []
        self._sockets = []
        self._stopping = False
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(50)
        self.port = self.listener.getsockname()[1]
        if certificate:
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(str(certificate[0]), str(certificate[1]))
            self.tls_context.sni_callback = self._sni
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()
        testcase.addCleanup(self.stop)

    @property
    def relay(self):
        return f"127.0.0.1:{self.port}"

    def _sni(self, sslobj, name, ctx):
        with self.lock:
            self.server_names.append(name)

    def stop(self):
        self._stopping = True
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            sockets = list(self._sockets)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(5)

    def _accept_loop(self):
        while not self._stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
                self._sockets.append(conn)
            t = threading.Thread(target=self._session, args=(conn, number), daemon=True)
            self._threads.append(t)
            t.start()

    def _session(self, sock, number):
        session = _Session(self, sock, number)
        try:
            session.run()
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            for s in {sock, session.sock}:  # the TLS wrapper too, after STARTTLS
                try:
                    s.close()
                except OSError:
                    pass

    def wait_for_transactions(self, count, timeout=20.0):
        return wait_until(lambda: (lambda t: t if len(t) >= count else None)(list(self.transactions)), timeout,
                          describe=lambda: f"waiting for {count} transaction(s); commands so far: {self.commands!r}")


class _Session:
    def __init__(self, server, sock, number):
        self.server = server
        self.sock = sock
        self.number = number
        self.buffer = b""
        self.tls = False
        self.user = None
        self.transaction = None

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def readline(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def record(self, line):
        with self.server.lock:
            self.server.commands.append((self.number, line))

    def run(self):
        srv = self.server
        self.send("220 scripted.test ESMTP")
        while True:
            line = self.readline()
            if line is None:
                return
            verb = line.split(" ", 1)[0].upper()
            self.record("AUTH " + line.split(" ")[1] + " (hidden)" if verb == "AUTH" and " " in line else line)
            if verb in ("EHLO", "HELO"):
                self.ehlo(verb)
            elif verb == "STARTTLS" and srv.certificate and not self.tls:
                self.send("220 2.0.0 Ready to start TLS")
                self.sock = srv.tls_context.wrap_socket(self.sock, server_side=True)
                self.tls = True
                self.buffer = b""
            elif verb == "AUTH":
                self.auth(line)
            elif verb == "MAIL":
                if srv.user and not self.user:
                    self.send("530 5.7.0 Authentication required")
                    continue
                self.transaction = Transaction(self.number)
                self.transaction.mail = line
                self.transaction.tls = self.tls
                self.transaction.user = self.user
                # With PIPELINING the RCPTs come in the same write as MAIL.
                self.transaction.pipelined = b"RCPT" in self.buffer
                self.send("250 2.1.0 Ok")
            elif verb == "RCPT":
                if not self.transaction:
                    self.send("503 5.5.1 Error: need MAIL command")
                    continue
                self.transaction.rcpts.append(line)
                m = re.search(r"<([^>]*)>", line)
                address = m.group(1) if m else ""
                reply = srv.rcpt_replies.get(address, "250 2.1.5 Ok")
                if reply.startswith("2"):
                    self.transaction.accepted += 1
                self.send(reply)
            elif verb == "DATA":
                if not self.transaction or not self.transaction.accepted:
                    self.send("554 5.5.1 Error: no valid recipients")
                    continue
                self.send("354 End data with <CR><LF>.<CR><LF>")
                if not self.data():
                    return
                if srv.drop_after_data:
                    self.sock.close()
                    return
                with srv.lock:
                    srv.transactions.append(self.transaction)
                    n = len(srv.transactions)
                self.transaction = None
                self.send(srv.final_reply.format(n=n))
            elif verb == "RSET":
                self.transaction = None
                self.send("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.send("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 Bye")
                return
            else:
                self.send("502 5.5.2 Error: command not recognized")

    def ehlo(self, verb):
        srv = self.server
        if verb == "HELO":
            self.send("250 scripted.test")
            return
        keywords = ["SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN", "SMTPUTF8"]
        if srv.pipelining:
            keywords.insert(0, "PIPELINING")
        if srv.certificate and not self.tls:
            keywords.append("STARTTLS")
        if srv.user and (self.tls or not srv.certificate):
            keywords.append("AUTH " + " ".join(srv.auth_mechanisms))
        lines = ["scripted.test"] + keywords
        for i, k in enumerate(lines):
            self.send(("250 " if i == len(lines) - 1 else "250-") + k)

    def auth(self, line):
        srv = self.server
        parts = line.split()
        mechanism = parts[1].upper() if len(parts) > 1 else ""
        if mechanism not in srv.auth_mechanisms:
            self.send("504 5.5.4 Unrecognized authentication type")
            return
        try:
            if mechanism == "PLAIN":
                if len(parts) > 2:
                    response = parts[2]
                else:
                    self.send("334 ")
                    response = self.readline()
                _, user, password = base64.b64decode(response).decode().split("\0")
            else:
                self.send("334 VXNlcm5hbWU6")
                user = base64.b64decode(self.readline()).decode()
                self.send("334 UGFzc3dvcmQ6")
                password = base64.b64decode(self.readline()).decode()
        except (ValueError, TypeError, AttributeError):
            self.send("501 5.5.2 Cannot decode response")
            return
        ok = user == srv.user and password == srv.password
        with srv.lock:
            srv.auth_attempts.append((self.number, mechanism, user, ok))
        if ok:
            self.user = user
            self.send("235 2.7.0 Authentication successful")
        else:
            self.send(srv.auth_failure)

    def data(self):
        lines = []
        while True:
            while b"\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return False
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\n", 1)
            if raw in (b".\r", b"."):
                break
            if raw.startswith(b"."):
                raw = raw[1:]
            lines.append(raw + b"\n")
        self.transaction.data = b"".join(lines)
        return True


class SmtpSink:
    """Postfix's smtp-sink on 127.0.0.1:<free port>, each transaction dumped into a file of
    `directory` (with X-Mail-Args / X-Rcpt-Args lines before the message), its -v
    conversation log kept in `log_path`."""

    def __init__(self, testcase, extra_args=()):
        self.port = free_port()
        # smtp-sink drops root for the postfix user, who must be able to write the dumps.
        self.root = Path(tempfile.mkdtemp(prefix="postern-sink-"))
        testcase.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        os.chmod(self.root, 0o777)
        self.directory = self.root / "dump"
        self.directory.mkdir()
        os.chmod(self.directory, 0o777)
        self.log_path = self.root / "smtp-sink.log"
        cmd = [shutil.which("smtp-sink") or "/usr/sbin/smtp-sink", "-v", "-h", "sink.test"]
        if os.geteuid() == 0:
            cmd += ["-u", "postfix"]
        cmd += list(extra_args) + ["-d", f"{self.directory}/%M.", f"127.0.0.1:{self.port}", "100"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        testcase.addCleanup(self.stop)
        self._baseline = 0
        wait_for_listener(self.port)
        # That check was a connection too: it does not count.
        wait_until(lambda: re.search(r"^\S*smtp-sink: disconnect", self.log(), re.M), 10,
                   describe=lambda: "smtp-sink never logged the check's disconnect:\n" + self.log())
        self._baseline = self.connections()

    @property
    def relay(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

    def log(self):
        return self.log_path.read_text(errors="replace")

    def connections(self):
        """Connections smtp-sink accepted since it was ready."""
        return len(re.findall(r"^\S*smtp-sink: connect ", self.log(), re.M)) - self._baseline

    def commands(self, verb):
        """How many times the clients sent `verb` (MAIL, RCPT, RSET, DATA, …)."""
        return len(re.findall(rf"^\S*smtp-sink: {verb}\b", self.log(), re.M | re.I))

    def dumps(self):
        """The dumped transactions: one bytes object per file."""
        return [p.read_bytes() for p in sorted(self.directory.iterdir()) if p.is_file()]

    @staticmethod
    def envelope(dump):
        """(MAIL args, [RCPT args]) of one dump."""
        text = dump.decode(errors="replace")
        mail = re.search(r"^X-Mail-Args: (.*)$", text, re.M)
        rcpts = re.findall(r"^X-Rcpt-Args: (.*)$", text, re.M)
        return (mail.group(1) if mail else None), rcpts

    def wait_for_dumps(self, count, timeout=30.0):
        return wait_until(lambda: (lambda d: d if len(d) >= count else None)(self.dumps()), timeout,
                          describe=lambda: f"waiting for {count} dump(s) in {self.directory}; smtp-sink log:\n"
                          + self.log()[-3000:])

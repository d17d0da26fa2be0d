"""Helpers for postern's integration tests: a temporary installation (config + data dir),
a server under control, the CLI, sendmail, and bounded waits on what they produce.

Every test gets its own temporary directory, removed at the end; every server started is
stopped in a cleanup (SIGTERM, then SIGKILL). Every wait has a deadline and fails with what it
saw. Standard library only.
"""

import email
import email.policy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path


def _required_env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run these tests through ctest, or set it by hand "
                           f"(see tests/CMakeLists.txt)")
    return value


POSTERN_BIN = _required_env("POSTERN_BIN")
PLUGIN_DIR = _required_env("POSTERN_PLUGIN_DIR")
TEST_PLUGIN_DIR = _required_env("POSTERN_TEST_PLUGIN_DIR")
BAD_PLUGIN_DIR = _required_env("POSTERN_BAD_PLUGIN_DIR")
SOURCE_DIR = _required_env("POSTERN_SOURCE_DIR")
BUILD_DIR = os.environ.get("POSTERN_BUILD_DIR", "")

HOSTNAME = "test.example"
DEFAULT_TIMEOUT = 20.0
# The login name sendmail uses for the default sender; the tests run as root, but do not rely on it.
try:
    import pwd

    LOGIN = pwd.getpwuid(os.getuid()).pw_name
except (ImportError, KeyError):  # pragma: no cover
    LOGIN = "unknown"
DEFAULT_SENDER = f"{LOGIN}@{HOSTNAME}"

QUEUE_ID_LINE = re.compile(r"^([0-9A-Z]{16})(!?)\s")


def toml_value(value):
    """Renders a Python value as TOML (enough for the settings the tests use)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for the ASCII the tests use
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot render {value!r} as TOML")


def wait_until(predicate, timeout=DEFAULT_TIMEOUT, interval=0.05, describe=None):
    """Polls `predicate` until it returns something truthy, which is returned. Past the
    deadline, raises AssertionError with `describe()` (what was seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            seen = describe() if describe else ""
            raise AssertionError(f"timed out after {timeout:.0f} s\n{seen}")
        time.sleep(interval)


def parse_message(data):
    """Parses a delivered message (bytes) with the standard email package."""
    return email.message_from_bytes(data, policy=email.policy.compat32)


def header_lines(data):
    """The header section's lines of a message (bytes), unfolded, as str."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    head = text.split("\n\n", 1)[0]
    lines = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def header_names(data):
    return [line.split(":", 1)[0].strip().lower() for line in header_lines(data) if ":" in line]


class Server:
    """A running `postern serve`, its stderr kept in a file."""

    def __init__(self, install, log_path):
        self.install = install
        self.log_path = log_path
        self.proc = None

    def start(self, timeout=DEFAULT_TIMEOUT):
        self._log_file = open(self.log_path, "ab")
        self._log_start = self._log_file.tell()
        self.proc = subprocess.Popen([POSTERN_BIN, "-c", str(self.install.config), "serve"],
                                     stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=self._log_file,
                                     cwd=self.install.cwd)
        self._log_file.close()

        def ready():
            if "postern ready" in self.log_since_start():
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"postern serve exited with {self.proc.returncode} before it was ready:\n"
                                     f"{self.log_since_start()}")
            return False

        wait_until(ready, timeout, describe=lambda: "no 'postern ready' in its log:\n" + self.log_since_start())
        return self

    def log(self):
        try:
            return Path(self.log_path).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_since_start(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace=5.0):
        """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit status (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(grace)
        return self.proc.returncode

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Install:
    """A temporary directory holding a config file and the data directory it names.

    transports: the [delivery] transports list (None: leave the key out).
    delivery:   more [delivery] settings, as a dict (poll_interval defaults to 250ms).
    plugin_dirs: directories to scan; default: the real plugins, plus the test plugins when
                 test_plugins is true.
    extra:      TOML text appended to the file ([transports.NAME] sections and the like).
    """

    def __init__(self, testcase, transports=("file",), delivery=None, extra="", plugin_dirs=None,
                 test_plugins=False, data_dir="data", server=None):
        self.testcase = testcase
        self.root = Path(tempfile.mkdtemp(prefix="postern-it-"))
        testcase.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        self.servers = []
        testcase.addCleanup(self._stop_servers)
        testcase.addCleanup(self._report_on_failure)
        self.config = self.root / "postern.toml"
        # Commands run from a directory of their own, so that a relative path taken from the
        # working directory rather than from the config file's lands somewhere visible.
        self.cwd = self.root / "cwd"
        self.cwd.mkdir()
        self.data = (self.root / data_dir).resolve() if not os.path.isabs(data_dir) else Path(data_dir)
        if plugin_dirs is None:
            plugin_dirs = [PLUGIN_DIR] + ([TEST_PLUGIN_DIR] if test_plugins else [])
        self.plugin_dirs = [str(d) for d in plugin_dirs]
        settings = {"poll_interval": "250ms"}
        if transports is not None:
            settings["transports"] = list(transports)
        settings.update(delivery or {})
        server_settings = {"data_dir": data_dir, "hostname": HOSTNAME, "log_level": "info",
                           "plugin_dirs": self.plugin_dirs}
        server_settings.update(server or {})
        text = "[server]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in server_settings.items())
        text += "\n[delivery]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in settings.items())
        text += "\n" + extra
        self.config.write_text(text)

    # --- places ---------------------------------------------------------------------------

    @property
    def outbox(self):
        return self.data / "outbox"

    @property
    def maildrop(self):
        return self.data / "maildrop"

    @property
    def scripted_dir(self):
        return self.data / "scripted"

    def maildir(self, address):
        return self.outbox / address.lower() / "new"

    def maildir_files(self, address):
        d = self.maildir(address)
        return sorted(d.iterdir()) if d.is_dir() else []

    def all_delivered(self):
        """Every file in every Maildir's new/ under the outbox."""
        if not self.outbox.is_dir():
            return []
        return sorted(p for p in self.outbox.glob("*/new/*") if p.is_file())

    def maildrop_waiting(self):
        d = self.maildrop / "new"
        return sorted(d.iterdir()) if d.is_dir() else []

    def tree(self):
        if not self.root.exists():
            return "(gone)"
        lines = []
        for p in sorted(self.root.rglob("*")):
            rel = p.relative_to(self.root)
            if len(lines) > 200:
                lines.append("…")
                break
            lines.append(f"  {rel}{'/' if p.is_dir() else ''}")
        return "\n".join(lines)

    # --- commands ---------------------------------------------------------------------------

    def run(self, *args, input=None, env=None, timeout=60, config=True):
        """Runs `postern [-c CONFIG] ARGS…`; returns the CompletedProcess (text)."""
        cmd = [POSTERN_BIN] + (["-c", str(self.config)] if config else []) + [str(a) for a in args]
        full_env = dict(os.environ)
        full_env.pop("POSTERN_CONFIG", None)
        full_env.update(env or {})
        return subprocess.run(cmd, input=input, capture_output=True, text=True, env=full_env, timeout=timeout,
                              cwd=self.cwd)

    def sendmail(self, *args, message="", config=True, env=None, timeout=60, binary=None):
        """`postern sendmail [-C CONFIG] ARGS…` with `message` (str or bytes) on stdin."""
        cmd = [binary] if binary else [POSTERN_BIN, "sendmail"]
        if config:
            cmd += ["-C", str(self.config)]
        cmd += [str(a) for a in args]
        full_env = dict(os.environ)
        full_env.pop("POSTERN_CONFIG", None)
        full_env.update(env or {})
        data = message.encode() if isinstance(message, str) else message
        proc = subprocess.run(cmd, input=data, capture_output=True, env=full_env, timeout=timeout, cwd=self.cwd)
        proc.stdout = proc.stdout.decode(errors="replace")
        proc.stderr = proc.stderr.decode(errors="replace")
        return proc

    def check_sendmail(self, *args, message="", **kw):
        proc = self.sendmail(*args, message=message, **kw)
        self.testcase.assertEqual(proc.returncode, 0, f"sendmail {' '.join(map(str, args))} failed:\n{proc.stderr}")
        return proc

    def check_run(self, *args, **kw):
        proc = self.run(*args, **kw)
        self.testcase.assertEqual(proc.returncode, 0,
                                  f"postern {' '.join(map(str, args))} exited {proc.returncode}:\n"
                                  f"{proc.stdout}\n{proc.stderr}")
        return proc

    def queue_list(self):
        return self.check_run("queue", "list").stdout

    def queue_ids(self):
        """(id, held) for every message `queue list` shows."""
        out = []
        for line in self.queue_list().splitlines():
            m = QUEUE_ID_LINE.match(line)
            if m:
                out.append((m.group(1), m.group(2) == "!"))
        return out

    def queue_show(self, queue_id):
        return self.check_run("queue", "show", queue_id).stdout

    def recipient_line(self, queue_id, address):
        """The `queue show` line of one recipient, e.g. "<a@x> deferred, attempts 2, …"."""
        for line in self.queue_show(queue_id).splitlines():
            if line.strip().startswith(f"<{address}>") and "attempts" in line:
                return line.strip()
        return None

    def attempts(self, queue_id, address):
        line = self.recipient_line(queue_id, address)
        m = re.search(r"attempts (\d+)", line or "")
        return int(m.group(1)) if m else None

    # --- servers ----------------------------------------------------------------------------

    def start_server(self, timeout=DEFAULT_TIMEOUT):
        server = Server(self, self.root / f"serve-{len(self.servers)}.log")
        self.servers.append(server)
        return server.start(timeout)

    def _stop_servers(self):
        for s in self.servers:
            s.stop()

    def server_logs(self):
        out = []
        for s in self.servers:
            out.append(f"--- {s.log_path.name} ---\n{s.log()}")
        return "\n".join(out)

    def diagnostics(self):
        text = f"=== files under {self.root} ===\n{self.tree()}\n=== server logs ===\n{self.server_logs()}"
        try:
            q = self.run("queue", "list", timeout=20)
            text += f"\n=== queue list ===\n{q.stdout}{q.stderr}"
        except Exception as e:  # the diagnostics must not hide the failure
            text += f"\n(queue list failed: {e})"
        return text

    def _report_on_failure(self):
        # Prints what the servers logged when this test failed (cleanups run before the report).
        result = getattr(getattr(self.testcase, "_outcome", None), "result", None)
        failed = [t for t, _ in getattr(result, "failures", []) + getattr(result, "errors", [])]
        if any(t is self.testcase or getattr(t, "test_case", None) is self.testcase for t in failed):
            sys.stderr.write(f"\n[{self.testcase.id()}] diagnostics:\n{self.diagnostics()}\n")

    # --- waits ------------------------------------------------------------------------------

    def wait_for_maildir(self, address, count=1, timeout=DEFAULT_TIMEOUT):
        """Waits until `address`'s Maildir holds at least `count` messages; returns them (bytes)."""
        files = wait_until(lambda: (lambda f: f if len(f) >= count else None)(self.maildir_files(address)),
                           timeout, describe=lambda: f"waiting for {count} message(s) in {self.maildir(address)}\n"
                           + self.diagnostics())
        return [f.read_bytes() for f in files]

    def wait_for_queue_id(self, timeout=DEFAULT_TIMEOUT, count=1):
        """Waits until `queue list` shows `count` message(s); returns their ids, oldest first."""
        ids = wait_until(lambda: (lambda q: q if len(q) >= count else None)(self.queue_ids()), timeout,
                         describe=self.diagnostics)
        return [i for i, _ in ids]

    def queued_ids(self):
        """Ids the servers logged as queued by the submission service, in order."""
        return re.findall(r"\[submission\] ([0-9A-Z]{16}): from=<[^>]*>, .*\(queued\)", self.server_logs())

    def wait_for_queued(self, count=1, timeout=DEFAULT_TIMEOUT):
        """Waits until the servers have logged `count` submissions; returns their queue ids."""
        return wait_until(lambda: (lambda ids: ids if len(ids) >= count else None)(self.queued_ids()), timeout,
                          describe=lambda: f"waiting for {count} queued message(s)\n" + self.diagnostics())

    def wait_for_queue_empty(self, timeout=DEFAULT_TIMEOUT):
        wait_until(lambda: "Mail queue is empty" in self.queue_list(), timeout, interval=0.1,
                   describe=lambda: "the queue never emptied\n" + self.diagnostics())

    def wait_for_recipient(self, queue_id, address, pattern, timeout=DEFAULT_TIMEOUT):
        """Waits until the recipient's `queue show` line matches the regex `pattern`; returns it."""
        rx = re.compile(pattern)

        def matching():
            line = self.recipient_line(queue_id, address)
            return line if line and rx.search(line) else None

        return wait_until(matching, timeout, interval=0.1,
                          describe=lambda: f"<{address}> of {queue_id} never matched {pattern!r}; "
                          f"queue show:\n{self.run('queue', 'show', queue_id).stdout}\n{self.diagnostics()}")


def files_containing(directory, needle):
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_file() and needle in p.read_bytes())


class PosternTestCase(unittest.TestCase):
    """Base class: `self.install(...)` makes a temporary installation cleaned up after the test."""

    maxDiff = None

    def install(self, **kw):
        return Install(self, **kw)

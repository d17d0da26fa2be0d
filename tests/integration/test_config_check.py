"""`postern config check`: exit 0 and "configuration is valid", or exit 78 (EX_CONFIG) with one
"file:line:column: key: message" line per problem."""

import os
import re
import unittest

from postern_harness import PosternTestCase, SOURCE_DIR

EX_USAGE, EX_CONFIG = 64, 78

GOOD = """\
[server]
data_dir = "data"
log_level = "info"

[delivery]
transports = ["file"]
retry_schedule = ["1m", "5m"]
max_age = "5d"
max_parallel = 8
"""


class ConfigCheck(PosternTestCase):
    def setUp(self):
        self.inst = self.install()

    def write(self, text, name="check.toml"):
        path = self.inst.root / name
        path.write_text(text)
        return path

    def check(self, path):
        return self.inst.run("-c", path, "config", "check", config=False)

    def assert_invalid(self, text, *patterns):
        """Checks that `text` is refused with 78 and that stderr matches every regex (with
        {file} standing for the file's path). Returns stderr."""
        path = self.write(text)
        proc = self.check(path)
        self.assertEqual(proc.returncode, EX_CONFIG, f"{text}\n---\n{proc.stdout}{proc.stderr}")
        self.assertNotIn("configuration is valid", proc.stdout)
        for p in patterns:
            self.assertRegex(proc.stderr, p.replace("{file}", re.escape(str(path))))
        return proc.stderr

    def test_shipped_config_is_valid(self):
        shipped = os.path.join(SOURCE_DIR, "config", "postern.toml")
        proc = self.check(shipped)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, f"{os.path.normpath(shipped)}: configuration is valid\n")
        self.assertEqual(proc.stderr, "")

    def test_good_config_via_environment(self):
        path = self.write(GOOD)
        proc = self.inst.run("config", "check", config=False, env={"POSTERN_CONFIG": str(path)})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("configuration is valid", proc.stdout)

    def test_option_after_the_subcommand(self):
        path = self.write(GOOD)
        proc = self.inst.run("config", "check", "-c", path, config=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(f"{path}: configuration is valid", proc.stdout)

    def test_syntax_error(self):
        # Line 5: an unterminated string.
        self.assert_invalid('[server]\ndata_dir = "data"\n\n[delivery]\nmax_age = "5d\nmax_parallel = 8\n',
                            r"(?m)^{file}:5:\d+: ")
        # Line 3: a section header that is never closed.
        self.assert_invalid("[server]\ndata_dir = \"data\"\n[delivery\n", r"(?m)^{file}:3:\d+: ")

    def test_wrong_type(self):
        text = GOOD.replace("max_parallel = 8", 'max_parallel = "x"')
        line = text.splitlines().index('max_parallel = "x"') + 1
        self.assert_invalid(text, rf"(?m)^{{file}}:{line}:\d+: delivery\.max_parallel: expected an integer$")
        self.assert_invalid("[server]\nlog_level = 3\n", r"(?m)^{file}:2:\d+: server\.log_level: expected a string$")
        self.assert_invalid("[delivery]\ntransports = \"file\"\n",
                            r"(?m)^{file}:2:\d+: delivery\.transports: expected a list of strings$")
        self.assert_invalid("delivery = 5\n", r"(?m)^{file}:1:\d+: delivery: expected a table")

    def test_unknown_key_and_section(self):
        text = GOOD + "retry_shedule = [\"1m\"]\n"
        line = len(text.splitlines())
        self.assert_invalid(text, rf"(?m)^{{file}}:{line}:\d+: delivery\.retry_shedule: unknown setting$")
        self.assert_invalid(GOOD + "\n[bogus]\nx = 1\n", r"(?m)^{file}:\d+:\d+: bogus: unknown section$")
        self.assert_invalid("[server]\ndata_dri = \"data\"\n", r"(?m)^{file}:2:\d+: server\.data_dri: unknown setting$")

    def test_bad_durations(self):
        text = GOOD.replace('max_age = "5d"', 'max_age = "5 fortnights"')
        line = text.splitlines().index('max_age = "5 fortnights"') + 1
        self.assert_invalid(text, rf"(?m)^{{file}}:{line}:\d+: delivery\.max_age: not a duration")
        self.assert_invalid(GOOD.replace('["1m", "5m"]', '["1m", "soon"]'),
                            r"(?m)^{file}:\d+:\d+: delivery\.retry_schedule: not a duration: \"soon\"$")
        self.assert_invalid(GOOD.replace('["1m", "5m"]', '[]'),
                            r"(?m)^{file}:\d+:\d+: delivery\.retry_schedule: needs at least one step$")
        self.assert_invalid(GOOD + 'poll_interval = "-1s"\n', r"delivery\.poll_interval: not a duration")

    def test_every_problem_is_reported(self):
        text = "[server]\nlog_level = \"loud\"\n\n[delivery]\nmax_parallel = \"x\"\nmax_age = \"later\"\nfoo = 1\n"
        err = self.assert_invalid(text,
                                  r"(?m)^{file}:2:\d+: server\.log_level: expected one of ",
                                  r"(?m)^{file}:5:\d+: delivery\.max_parallel: expected an integer$",
                                  r"(?m)^{file}:6:\d+: delivery\.max_age: not a duration",
                                  r"(?m)^{file}:7:\d+: delivery\.foo: unknown setting$")
        self.assertEqual(len(err.strip().splitlines()), 4, err)

    def test_missing_file(self):
        missing = self.inst.root / "absent.toml"
        proc = self.check(missing)
        self.assertEqual(proc.returncode, EX_CONFIG)
        self.assertIn(f"{missing}: cannot read the file", proc.stderr)

    def test_other_commands_refuse_a_bad_config_too(self):
        path = self.write(GOOD.replace("max_parallel = 8", 'max_parallel = "x"'))
        for args in (("serve",), ("plugins",), ("queue", "list")):
            with self.subTest(args=args):
                proc = self.inst.run("-c", path, *args, config=False, timeout=20)
                self.assertEqual(proc.returncode, EX_CONFIG, proc.stdout + proc.stderr)
                self.assertIn("delivery.max_parallel: expected an integer", proc.stderr)
        self.assertFalse((self.inst.root / "data").exists(), "nothing is created from a bad config")


if __name__ == "__main__":
    unittest.main()

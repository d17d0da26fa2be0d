"""`postern plugins`, and `serve` among broken, foreign, refusing and missing plugins."""

import os
import re
import shutil
import unittest

from postern_harness import BAD_PLUGIN_DIR, PLUGIN_DIR, TEST_PLUGIN_DIR, PosternTestCase

BAD_PLUGINS = ("postern-foreign.so", "postern-refusing.so", "postern-wrong_abi.so")


def plugin_rows(output):
    """Parses the table of `postern plugins` into {file path: row dict}. Column starts come
    from the header; REASON runs to the FILE path (it may be wider than its column)."""
    lines = output.splitlines()
    header = lines[0]
    names = ["NAME", "KIND", "VERSION", "AVAILABLE", "REASON", "FILE"]
    assert header.split() == names, header
    starts = [header.index(n) for n in names]
    rows = {}
    for line in lines[1:]:
        if not line.strip():
            break
        m = re.search(r"  (/\S+\.so)$", line)
        assert m, f"no FILE at the end of: {line!r}"
        row = {n.lower(): line[starts[i]:starts[i + 1]].strip() for i, n in enumerate(names[:4])}
        row["reason"] = line[starts[4]:m.start()].strip()
        row["file"] = m.group(1)
        rows[row["file"]] = row
    return rows


class Plugins(PosternTestCase):
    def bad_plugin_dir(self, inst):
        bad = inst.root / "bad-plugins"
        bad.mkdir()
        for name in BAD_PLUGINS:
            shutil.copy(os.path.join(BAD_PLUGIN_DIR, name), bad / name)
        (bad / "postern-corrupt.so").write_bytes(os.urandom(4096))
        (bad / "not-a-plugin-name.so").write_bytes(b"ignored: the name does not start with postern-")
        # A second plugin named "file": the first directory's wins.
        shutil.copy(os.path.join(PLUGIN_DIR, "postern-file.so"), bad / "postern-file.so")
        return bad

    def file_plugin_only(self, inst):
        """The built-in plugin directory holds every transport, and which of them work depends
        on the machine (a sendmail binary, say): a directory with only the file transport."""
        builtin = inst.root / "builtin"
        builtin.mkdir()
        shutil.copy(os.path.join(PLUGIN_DIR, "postern-file.so"), builtin / "postern-file.so")
        return builtin

    def test_table_lists_good_and_bad_plugins_and_serve_still_delivers(self):
        # No [delivery] transports: the built-in order. A relative plugin dir is taken from the
        # config file's directory.
        inst = self.install(transports=None, plugin_dirs=["builtin", "bad-plugins"])
        builtin = self.file_plugin_only(inst)
        bad = self.bad_plugin_dir(inst)

        proc = inst.run("plugins")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        rows = plugin_rows(proc.stdout)
        real_file = str(builtin / "postern-file.so")
        self.assertEqual(sorted(rows), sorted([real_file] + [str(bad / n) for n in
                                                             ("postern-file.so", "postern-corrupt.so") + BAD_PLUGINS]),
                         proc.stdout)

        file_row = rows[real_file]
        self.assertEqual((file_row["name"], file_row["kind"], file_row["available"]), ("file", "transport", "yes"))
        self.assertIn(str(inst.outbox), file_row["reason"])

        copy = rows[str(bad / "postern-file.so")]
        self.assertEqual(copy["available"], "no")
        self.assertIn(f"another plugin named file was found first, in {real_file}", copy["reason"])

        wrong = rows[str(bad / "postern-wrong_abi.so")]
        self.assertEqual(wrong["available"], "no")
        self.assertRegex(wrong["reason"], r"\b999\b")
        abi = re.search(r"#define POSTERN_SDK_ABI_VERSION (\d+)",
                        open(os.path.join(os.environ["POSTERN_SOURCE_DIR"], "core/sdk/postern/abi.hpp")).read()).group(1)
        self.assertRegex(wrong["reason"], rf"this postern has ABI version {abi}\b")

        foreign = rows[str(bad / "postern-foreign.so")]
        self.assertEqual(foreign["available"], "no")
        self.assertIn("not a postern plugin", foreign["reason"])

        refusing = rows[str(bad / "postern-refusing.so")]
        self.assertEqual((refusing["name"], refusing["kind"], refusing["available"]), ("refusing", "transport", "no"))
        self.assertIn("setting 'relay' is required", refusing["reason"])

        corrupt = rows[str(bad / "postern-corrupt.so")]
        self.assertEqual(corrupt["available"], "no")
        self.assertIn("cannot load", corrupt["reason"])

        self.assertIn(f"plugin directories: {builtin} {bad}", proc.stdout)
        self.assertIn("delivery order: first available of", proc.stdout)

        # The same directories: serve starts, says what it skipped, and delivers with file.
        server = inst.start_server()
        log = server.log()
        for name in ("postern-corrupt.so", "postern-foreign.so", "postern-wrong_abi.so"):
            self.assertRegex(log, rf"skipped {re.escape(str(bad / name))}: ", log)
        self.assertIn("transport refusing 0.1.0: not available", log)
        inst.check_sendmail("survivor@example.com", message="Subject: among bad plugins\n\ndelivered anyway\n")
        [data] = inst.wait_for_maildir("survivor@example.com")
        self.assertIn(b"delivered anyway", data)
        inst.wait_for_queue_empty()
        self.assertRegex(server.log(), r"to=<survivor@example\.com>, transport=file, .*status=delivered")
        self.assertEqual(server.stop(), 0, server.log())

    def test_unavailable_transport_shows_its_reason(self):
        inst = self.install(transports=["scripted"], plugin_dirs=[TEST_PLUGIN_DIR],
                            extra='[transports.scripted]\nunavailable = "no relay configured"\n')
        proc = inst.run("plugins")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        rows = plugin_rows(proc.stdout)
        scripted = rows[os.path.join(TEST_PLUGIN_DIR, "postern-scripted.so")]
        self.assertEqual((scripted["name"], scripted["kind"], scripted["version"]), ("scripted", "transport", "0.1.0"))
        self.assertEqual(scripted["available"], "no")
        self.assertEqual(scripted["reason"], "no relay configured")
        self.assertIn("delivery order: scripted (from [delivery] transports)", proc.stdout)

        # Without the setting it is available: the column follows the probe.
        inst2 = self.install(transports=["scripted"], plugin_dirs=[TEST_PLUGIN_DIR])
        rows2 = plugin_rows(inst2.check_run("plugins").stdout)
        self.assertEqual(rows2[os.path.join(TEST_PLUGIN_DIR, "postern-scripted.so")]["available"], "yes")

    def test_policies_show_their_place_in_the_chain_and_their_settings(self):
        inst = self.install(extra='[policies]\norder = ["consent", "credits", "frequency_cap", "campaign_pacing", '
                                  '"activity_window", "no_resend"]\n'
                                  '[policies.credits]\nprospect_cost = 4\n[policies.credits.grants]\nshop = 100\n'
                                  '[policies.campaign_pacing]\nper_minute = 30\n')
        proc = inst.check_run("plugins")
        rows = plugin_rows(proc.stdout)
        by_name = {r["name"]: r for r in rows.values()}
        self.assertEqual(by_name["consent"]["reason"], "in the chain, position 1")
        self.assertEqual(by_name["credits"]["reason"], "in the chain, position 2")
        self.assertEqual(by_name["link_guard"]["reason"], "loaded; not in [policies] order")
        self.assertIn("policy chain: consent -> credits -> frequency_cap -> campaign_pacing -> activity_window -> "
                      "no_resend", proc.stdout)
        # Each policy's settings in effect, the defaults marked, then the config's own tables.
        self.assertIn('[policies.consent]\nlist_unsubscribe = true  # default\nmailto = ""  # default\n', proc.stdout)
        self.assertIn("[policies.credits]\nprospect_cost = 4\nbuyer_cost = 0  # default\nother_cost = 0  # default\n",
                      proc.stdout)
        self.assertRegex(proc.stdout, r"\[policies\.credits\.grants\]\s+shop = 100")
        self.assertIn('[policies.frequency_cap]\nmax = 3  # default\nwindow = "7d"  # default\n', proc.stdout)
        # The rate as it was given; the burst's default follows from it.
        self.assertIn("[policies.campaign_pacing]\nper_minute = 30\nburst = 1  # default\n", proc.stdout)
        self.assertIn("[policies.activity_window]\ndays = 365  # default\nlifted_routes = []  # default\n", proc.stdout)
        self.assertIn("[policies.no_resend]\n# no settings\n", proc.stdout)

        bad = self.install(extra='[policies]\norder = ["frequency_cap"]\n[policies.frequency_cap]\nwindow = "soon"\n')
        proc = bad.run("plugins")
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertIn('policy chain error: plugin frequency_cap refused to start', proc.stdout)
        self.assertIn("[policies.frequency_cap]: window: expected a duration", proc.stdout)

    def test_a_policy_whose_settings_throw_is_listed_with_the_error(self):
        inst = self.install(plugin_dirs=[PLUGIN_DIR, TEST_PLUGIN_DIR],
                            extra='[policies]\norder = ["stamp", "no_resend"]\n'
                                  '[policies.stamp]\nsettings_fail = "the stamp table is unreadable"\n')
        proc = inst.run("plugins")
        # The chain itself was created: the table, the chain and the other policy are all there.
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        by_name = {r["name"]: r for r in plugin_rows(proc.stdout).values()}
        self.assertEqual(by_name["stamp"]["reason"], "in the chain, position 1")
        self.assertIn("policy chain: stamp -> no_resend\n", proc.stdout)
        self.assertIn("[policies.stamp]\n# settings() failed: the stamp table is unreadable\n"
                      "settings_fail = 'the stamp table is unreadable'\n", proc.stdout)
        self.assertIn("[policies.no_resend]\n# no settings\n", proc.stdout)

    def test_missing_transport_keeps_mail_queued(self):
        # The file plugin is there, but the configuration names only a transport that is not.
        inst = self.install(transports=["nosuch"], plugin_dirs=[PLUGIN_DIR])
        rows = plugin_rows(inst.check_run("plugins").stdout)
        self.assertEqual(rows[os.path.join(PLUGIN_DIR, "postern-file.so")]["available"], "yes")
        server = inst.start_server()
        self.assertIn("no transport plugin named nosuch was found in the plugin directories", server.log())
        self.assertIn("no transport is available", server.log())

        inst.check_sendmail("waiting@example.com", message="Subject: no transport\n\nkept\n")
        [queue_id] = inst.wait_for_queued(1)
        inst.wait_for_recipient(queue_id, "waiting@example.com", r"deferred, attempts 1\b")
        listing = inst.queue_list()
        self.assertIn(queue_id, listing)
        self.assertIn("(451 4.3.5 no transport is available)", listing)
        self.assertRegex(listing, r"(?m)^ +waiting@example\.com$")
        self.assertTrue(server.running, "serve keeps running without a transport")
        self.assertEqual(inst.all_delivered(), [], "the file transport is not used when not listed")


if __name__ == "__main__":
    unittest.main()

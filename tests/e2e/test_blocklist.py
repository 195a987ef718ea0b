"""The shared blocklist (blocklist_file): listed sources get verdict -5 from
sipguard_check() (no answer in the test config) or are dropped before
parsing with early_drop; sipguard.reload_blocklist in one process changes
what every worker sees; a bad line refuses the reload (old list kept) or
the start, naming file:line; more than blocklist_max entries is refused;
the APIBAN converter's output loads.

Everything on loopback; every loop bounded."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import sipg

CONVERTER = sipg.REPO / "scripts" / "apiban-to-blocklist.py"
LO = "127.0.0.1"


def _kam(kam_factory, path, name, early_drop=0, max_entries=None):
    extra = f'modparam("sipguard", "blocklist_file", "{path}")\n'
    if max_entries is not None:
        extra += f'modparam("sipguard", "blocklist_max", {max_entries})\n'
    return kam_factory(name=name, extra=extra, early_drop=str(early_drop))


def _answered(k, src: str, n: int = 12) -> int:
    """How many of n OPTIONS from src (each from its own source port, so
    they reach various workers) are answered."""
    got = 0
    for _ in range(n):
        with sipg.UdpClient(src, LO, k.port) as c:
            got += c.run(1, wait=0.3).answered
    return got


def test_listed_sources_are_refused_and_a_reload_reaches_every_worker(kam_factory, tmp_path):
    path = tmp_path / "blocklist.txt"
    path.write_text("# a shared list\n127.0.0.60\n127.0.1.0/24   # a network\n"
                    "2001:db8::/32\n127.0.0.250\n")
    k = _kam(kam_factory, path, "bl")
    assert _answered(k, "127.0.0.60") == 0
    assert _answered(k, "127.0.1.9", 3) == 0
    assert _answered(k, "127.0.0.61") == 12
    # its own verdict, IPv6 too; the allowlist wins over the list
    assert sipg.check_ip(k.port, "127.0.0.60") == -5
    assert sipg.check_ip(k.port, "2001:db8::5") == -5
    assert sipg.check_ip(k.port, "2001:db9::5") == 1
    assert sipg.check_ip(k.port, "127.0.0.250") == 2
    # its own log line (one a second at most), no ban
    k.wait_log(lambda: "sipguard: BLOCKLISTED src=127.0.0.60" in k.log_text(),
               what="BLOCKLISTED line")
    assert k.bans() == []
    info = sipg.parse_kamcmd(k.kamcmd("sipguard.blocklist").stdout)[0]
    assert [int(info[f]) for f in ("entries", "generation", "max")] == [4, 1, 100000], info
    st = k.stats()
    assert st["blocklist_entries"] == 4 and st["blocklisted"] >= 17, st

    # a reload in the RPC's process: every worker sees the new list
    path.write_text("127.0.0.61\n")
    out = k.kamcmd("sipguard.reload_blocklist").stdout
    assert "Ok. 1 entries, generation 2" in out, out
    assert "sipguard: BLOCKLIST loaded file=" in k.log_text()
    assert _answered(k, "127.0.0.60") == 12
    assert _answered(k, "127.0.0.61") == 0

    # a bad line: refused with file:line, the old list stays
    path.write_text("127.0.0.62\n# fine\nbogus-address\n")
    out = k.kamcmd("sipguard.reload_blocklist").stdout
    assert out.startswith("error: 500 - reload failed, old list kept:"), out
    assert f"{path}:3:" in out and "bogus-address" in out, out
    assert _answered(k, "127.0.0.61", 4) == 0
    assert _answered(k, "127.0.0.62", 4) == 4
    assert k.stop() == 0


def test_more_entries_than_blocklist_max_are_refused(kam_factory, tmp_path):
    path = tmp_path / "blocklist.txt"
    path.write_text("127.0.0.70\n127.0.0.71\n")
    k = _kam(kam_factory, path, "blmax", max_entries=2)
    path.write_text("127.0.0.70\n127.0.0.71\n127.0.0.72\n")
    out = k.kamcmd("sipguard.reload_blocklist").stdout
    assert out.startswith("error: 500") and "blocklist_max (2)" in out, out
    assert _answered(k, "127.0.0.71", 3) == 0
    assert _answered(k, "127.0.0.72", 3) == 3
    assert k.stop() == 0


def test_early_drop_discards_listed_sources(kam_factory, tmp_path):
    path = tmp_path / "blocklist.txt"
    path.write_text("127.0.0.80\n")
    k = _kam(kam_factory, path, "bldrop", early_drop=1)
    assert _answered(k, "127.0.0.80") == 0
    assert _answered(k, "127.0.0.81") == 12
    assert k.stats()["blocklisted"] == 12
    # dropped before the script: sipguard_check() never saw them
    assert "BLOCKLISTED src=127.0.0.80" not in k.log_text()
    assert k.stop() == 0


def test_a_bad_list_refuses_start_naming_the_parameter(kam_factory, tmp_path):
    path = tmp_path / "blocklist.txt"
    for text, want in [("127.0.0.1\n10.0.0.0/33\n", f"{path}:2:"),
                       ("127.0.0.1\n127.0.0.2\n127.0.0.3\n", "blocklist_max (2)")]:
        path.write_text(text)
        k = kam_factory(name="blbad", start=False, early_drop="0",
                        extra=f'modparam("sipguard", "blocklist_file", "{path}")\n'
                              'modparam("sipguard", "blocklist_max", 2)\n')
        failed, out = sipg.start_fails(k)
        assert failed, out[-2000:]
        assert "parameter blocklist_file" in out and want in out, out[-2000:]
    k = kam_factory(name="blmissing", start=False,
                    extra=f'modparam("sipguard", "blocklist_file", "{tmp_path}/nope.txt")\n')
    failed, out = sipg.start_fails(k)
    assert failed and "parameter blocklist_file" in out and "nope.txt" in out, out[-2000:]


def test_apiban_answer_converted_and_reloaded(kam_factory, tmp_path):
    path = tmp_path / "blocklist.txt"
    path.write_text("# empty to start with\n")
    k = _kam(kam_factory, path, "blapiban")
    assert _answered(k, "127.0.0.90", 3) == 3
    answer = tmp_path / "apiban.json"
    answer.write_text(json.dumps({"ipaddress": ["127.0.0.90", "127.0.2.0/24", "2001:db8::7",
                                                "no new bans"], "ID": "1700000123"}))
    r = subprocess.run([sys.executable, str(CONVERTER), str(answer), str(path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "1700000123", r
    assert "skipped 'no new bans'" in r.stderr, r.stderr
    lines = [x for x in path.read_text().splitlines() if not x.startswith("#")]
    assert lines == ["127.0.0.90", "127.0.2.0/24", "2001:db8::7"], lines
    out = k.kamcmd("sipguard.reload_blocklist").stdout
    assert "Ok. 3 entries" in out, out
    assert _answered(k, "127.0.0.90", 3) == 0
    assert _answered(k, "127.0.2.5", 3) == 0
    # the next answer holds only new bans: --append keeps the old ones;
    # --max refuses a file larger than blocklist_max, leaving it as it was
    answer.write_text(json.dumps({"ipaddress": ["127.0.0.91"], "ID": "1700000200"}))
    r = subprocess.run([sys.executable, str(CONVERTER), "--append", "--max", "3",
                        str(answer), str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "more than --max 3" in r.stderr, r
    r = subprocess.run([sys.executable, str(CONVERTER), "--append", str(answer), str(path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    assert "Ok. 4 entries" in k.kamcmd("sipguard.reload_blocklist").stdout
    assert _answered(k, "127.0.0.91", 3) == 0
    # not JSON of APIBAN's form: nothing written
    answer.write_text('{"error": "unauthorized"}')
    before = path.read_text()
    r = subprocess.run([sys.executable, str(CONVERTER), str(answer), str(path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and path.read_text() == before, r
    assert re.search(r"generation\D+3", k.kamcmd("sipguard.blocklist").stdout)
    assert k.stop() == 0


def test_example_config_takes_a_blocklist(kam_factory, tmp_path):
    """kamailio-cfg/sipguard.cfg as shipped with SG_BLOCKLIST: listed
    sources dropped early, others answered; reloaded by RPC."""
    path = tmp_path / "blocklist.txt"
    path.write_text("127.0.0.95\n")
    k = sipg.start_example(kam_factory, tmp_path, sipg.REPO / "kamailio-cfg" / "sipguard.cfg",
                           SG_BLOCKLIST=f'"{path}"')
    assert _answered(k, "127.0.0.95", 3) == 0
    assert _answered(k, "127.0.0.96", 3) == 3
    path.write_text("127.0.0.96\n")
    assert "Ok. 1 entries" in k.kamcmd("sipguard.reload_blocklist").stdout
    assert _answered(k, "127.0.0.95", 3) == 3
    assert _answered(k, "127.0.0.96", 3) == 0

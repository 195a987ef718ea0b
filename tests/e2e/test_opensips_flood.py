"""The flood defence in a real OpenSIPS 3.6 (built from source, loading the
sipguard OpenSIPS module): a burst gets the configured allowance and then a
ban that drops early, a many-source flood leaves memory flat, MI
ban/unban/list/stats, statistics, bans across a restart, bad parameters.

Config: tests/e2e/cfg/opensips-test.cfg (rate 30/2s, early_drop on).
"""
import os
import re
import signal
import subprocess
import time

import pytest

import sipg
from osips import OSIPS_CFG_DIR, MiError, OpenSIPS, opensips_built, osips_factory  # noqa: F401

DST = "127.0.0.1"


def wait_stats(o, pred, timeout=5.0, what="statistics"):
    last = []

    def check():
        last[:] = [o.stats()]
        return last[0] if pred(last[0]) else None

    try:
        return o.wait_log(check, timeout=timeout, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}\nlast statistics: {last}") from None


def test_burst_gets_its_allowance_then_a_ban_that_drops_early(osips_factory):
    # one request back per 2 s: a 300-request burst refills nothing
    o = osips_factory(name="burst", rate="30/60s", ban_time="30s")
    src = "127.0.0.2"
    r = sipg.udp_run(src, DST, o.port, 300, wait=1.0)
    assert r.sent == 300
    assert r.answered == 30, r
    # the first ones, give or take the order 4 UDP workers took them in
    assert max(r.answered_idx) < 34, sorted(r.answered_idx)
    assert r.verdicts == {1: 30}, r
    bans = o.wait_log(lambda: o.bans(src=src), timeout=3, what="BAN line")
    time.sleep(0.3)
    bans = o.bans(src=src)
    assert len(bans) == 1, bans
    assert bans[0]["reason"] == "flood" and bans[0]["duration"] == "30", bans
    # and the event, for event_route[E_SIPGUARD_BAN]
    ev = o.wait_log(lambda: re.findall(r"sgtest: BANEVENT (.*)$", o.log_text(), re.M),
                    timeout=3, what="E_SIPGUARD_BAN")
    assert ev == [f"source={src} reason=flood duration=30 offences=1"], ev
    # every request after the 31st is rejected by the check or dropped
    # before the script; the ones after the ban is visible are dropped
    s = wait_stats(o, lambda s: s["limited"] + s["rejected"] + s["dropped"] == 270,
                   what="300 requests counted")
    assert s["limited"] == 1 and s["passed"] == 30, s
    more = sipg.udp_run(src, DST, o.port, 100, wait=0.5)
    assert more.answered == 0, more
    s2 = wait_stats(o, lambda x: x["dropped"] - s["dropped"] == 100, what="100 dropped")
    assert s2["rejected"] == s["rejected"], (s, s2)
    # TCP from the banned source is dropped too, a neighbour is answered
    with sipg.TcpClient(src, DST, o.port) as t:
        tr = t.run(3, wait=1.5)
    assert tr.sent == 3 and tr.codes == {}, tr
    assert sipg.udp_run("127.0.0.3", DST, o.port, 10, wait=0.5).answered == 10
    with sipg.TcpClient("127.0.0.3", DST, o.port) as t:
        assert t.run(3, wait=1.5).answered == 3
    e = o.sg_list()["bans"][src]
    assert e["reason"] == "flood" and e["offences"] == 1 and 20 <= e["remaining"] <= 30, e
    assert e["hits"] >= 100, e


def test_without_early_drop_the_script_sees_the_ban(osips_factory):
    o = osips_factory(name="noedrop", early_drop=0, ban_time="30s")
    src = "127.0.0.2"
    r = sipg.udp_run(src, DST, o.port, 60, wait=0.5)
    assert 30 <= r.answered <= 32, r
    o.wait_log(lambda: o.bans(src=src), timeout=3, what="BAN line")
    sipg.udp_run(src, DST, o.port, 20, wait=0.5)
    s = o.stats()
    assert s["dropped"] == 0 and s["rejected"] >= 20, s


def test_mi_ban_unban_list_stats(osips_factory):
    o = osips_factory(name="mi")
    assert o.mi("sipguard_ban", addr="127.0.0.5", duration="600") == "OK"
    assert o.mi("sipguard_ban", "2001:db8:9::1", "permanent") == "OK"
    assert o.mi("sipguard_ban", addr="127.0.0.6", duration="5m") == "OK"
    o.wait_log(lambda: len(o.bans()) == 3, timeout=3, what="3 BAN lines")
    assert {b["reason"] for b in o.bans()} == {"manual"}
    ev = o.wait_log(lambda: re.findall(r"sgtest: BANEVENT (.*)$", o.log_text(), re.M),
                    timeout=3, what="E_SIPGUARD_BAN")
    assert ev[0] == "source=127.0.0.5 reason=manual duration=600 offences=0", ev
    assert ev[1] == "source=2001:db8:9::1 reason=manual duration=permanent offences=0", ev
    lst = o.sg_list()
    assert lst["bans_total"] == 3 and lst["bans_listed"] == 3, lst
    assert 590 <= lst["bans"]["127.0.0.5"]["remaining"] <= 600, lst
    assert lst["bans"]["2001:db8:9::/64"]["remaining"] == "permanent", lst
    assert lst["bans"]["127.0.0.6"]["reason"] == "manual", lst
    assert sipg.udp_run("127.0.0.5", DST, o.port, 3, wait=0.5).answered == 0
    assert sipg.check_ip(o.port, "2001:db8:9::7") == -2
    assert o.sg_list(max_bans=1)["bans_listed"] == 1
    # the top list: the busiest unbanned sources
    sipg.udp_run("127.0.0.7", DST, o.port, 5, wait=0.5)
    top = o.sg_list(top=5)["top"]
    assert [t["key"] for t in top] == ["127.0.0.7"], top

    assert o.mi("sipguard_unban", addr="127.0.0.5") == "OK"
    assert o.unbans(key="127.0.0.5") or o.wait_log(lambda: o.unbans(key="127.0.0.5"), 3)
    assert sipg.udp_run("127.0.0.5", DST, o.port, 2, wait=0.5).answered == 2
    with pytest.raises(MiError) as e:
        o.mi("sipguard_unban", addr="127.0.0.5")
    assert e.value.code == 404, e.value
    with pytest.raises(MiError) as e:
        o.mi("sipguard_ban", addr="127.0.0.8", duration="5x")
    assert e.value.code == 400, e.value
    with pytest.raises(MiError) as e:
        o.mi("sipguard_ban", addr="not-an-address")
    assert e.value.code == 400, e.value
    with pytest.raises(MiError) as e:
        o.mi("sipguard_list", top="101")
    assert e.value.code == 400, e.value

    # active_bans: recounted by the once-a-second sweep
    o.wait_log(lambda: o.sg_stats()["active_bans"] == 2, timeout=3, what="active_bans 2")
    sg = o.sg_stats()
    st = o.stats()
    assert sg["bans"] == 3 and sg["unbans"] == 1, sg
    assert sg["table_size"] == 4096 and sg["region_bytes"] > 0, sg
    for k in ("checked", "passed", "bans", "unbans", "dropped", "table_size"):
        assert st[k] == sg[k], (k, st, sg)


def test_check_ip_and_allowlist(osips_factory):
    o = osips_factory(name="checkip", rate="5/s")
    assert sipg.check_ip(o.port, "192.0.2.1") == 1
    assert sipg.check_ip(o.port, "nonsense") == -10
    # the allowlisted source is never limited
    r = sipg.udp_run("127.0.0.250", DST, o.port, 40, wait=0.5)
    assert r.answered == 40 and r.verdicts == {2: 40}, r
    # IPv6: counted and banned per /64
    r6 = sipg.udp_run("::1", "::1", o.port, 20, wait=0.5)
    assert 5 <= r6.answered <= 7, r6
    o.wait_log(lambda: o.bans(key="::/64"), timeout=3, what="BAN ::/64")


def test_many_sources_leave_memory_flat_and_the_ban_in_place(osips_factory):
    o = osips_factory(name="spray", table_size=4096, ban_time="300s")
    fl = sipg.udp_run("127.0.0.2", DST, o.port, 60, wait=0.5)
    assert 30 <= fl.answered <= 32, fl
    o.mi("sipguard_ban", "127.0.0.3", "600")
    o.wait_log(lambda: len(o.bans()) == 2, timeout=3, what="2 BAN lines")
    sp = sipg.Sprayer(DST, o.port)
    try:
        # warm up: fill the table and touch every page once
        warm = sp.spray(sipg.source_addresses(5_000, first_octet2=200), rate=10_000,
                        max_seconds=10)
        s1 = wait_stats(o, lambda s: s["checked"] >= 0.95 * warm["sent"], what="warm-up")
        rss1, pss1, shm1 = o.rss_kb(), o.pss_kb(), o.shm_used()
        sp.replies = 0
        res = sp.spray(sipg.source_addresses(20_000, first_octet2=10), rate=10_000,
                       max_seconds=15)
    finally:
        sp.close()
    s2 = wait_stats(o, lambda s: s["checked"] - s1["checked"] >= 0.95 * 20_000
                    and s["active_bans"] == 2, what="the spray checked")
    rss2, pss2, shm2 = o.rss_kb(), o.pss_kb(), o.shm_used()
    print(f"\nspray {res} rss_kb {rss1}->{rss2} pss_kb {pss1}->{pss2} shm {shm1}->{shm2} "
          f"entries_used {s2['entries_used']} evictions {s2['evictions']}")
    assert res["sent"] == 20_000 and not res["stopped_early"], res
    assert res["replies"] >= 0.95 * 20_000, res
    assert s2["entries_used"] <= s2["table_size"] == 4096, s2
    assert abs(shm2 - shm1) <= 64 * 1024, (shm1, shm2)
    assert rss2 - rss1 <= 4 * 1024, f"RSS grew {rss2 - rss1} kB"
    assert pss2 - pss1 <= 2 * 1024, f"PSS grew {pss2 - pss1} kB"
    bans = o.sg_list()["bans"]
    assert "127.0.0.2" in bans and "127.0.0.3" in bans, bans
    assert sipg.udp_run("127.0.0.2", DST, o.port, 2, wait=0.5).answered == 0
    assert sipg.udp_run("127.0.0.3", DST, o.port, 2, wait=0.5).answered == 0


def test_bans_survive_a_restart(osips_factory, tmp_path):
    state = tmp_path / "sipguard.state"
    o = osips_factory(name="state", ban_time="60s", state_file=str(state),
                      save_interval="600s")
    fl = sipg.udp_run("127.0.0.2", DST, o.port, 60, wait=0.5)
    assert 30 <= fl.answered <= 32, fl
    o.mi("sipguard_ban", "127.0.0.4", "permanent")
    o.mi("sipguard_ban", "2001:db8:5::1", "1000")
    o.wait_log(lambda: len(o.bans()) == 3, timeout=3, what="3 BAN lines")
    rc = o.stop()
    assert rc == 0, f"opensips exited with {rc}\n{o.log_tail()}"
    assert state.stat().st_size > 0, "state file not written on shutdown"
    n_before = len(o.bans())
    o.start()
    restored = [b for b in o.bans()[n_before:] if b["reason"] == "restored"]
    assert {b["key"] for b in restored} == {"127.0.0.2", "127.0.0.4", "2001:db8:5::/64"}, restored
    bans = o.sg_list()["bans"]
    assert 50 <= bans["127.0.0.2"]["remaining"] <= 60, bans
    assert bans["127.0.0.4"]["remaining"] == "permanent", bans
    assert sipg.udp_run("127.0.0.2", DST, o.port, 3, wait=0.5).answered == 0
    assert sipg.udp_run("127.0.0.4", DST, o.port, 3, wait=0.5).answered == 0
    assert sipg.udp_run("127.0.0.9", DST, o.port, 3, wait=0.5).answered == 3


def test_periodic_save_survives_a_kill(osips_factory, tmp_path):
    state = tmp_path / "sipguard.state"
    o = osips_factory(name="kill", state_file=str(state), save_interval="1s")
    o.mi("sipguard_ban", "127.0.0.4", "600")
    o.wait_log(lambda: "127.0.0.4" in state.read_text(), timeout=5, what="periodic save")
    o.kill()
    o.start()
    assert "127.0.0.4" in o.sg_list()["bans"]


@pytest.mark.parametrize("param,value,needle", [
    ("rate", "30/x", "rate"),
    ("ban_time", "soon", "ban_time"),
    ("table_size", "0", "table_size"),
    ("allow", "300.1.1.1", "allow"),
])
def test_bad_parameter_refuses_start_naming_it(osips_factory, param, value, needle):
    o = osips_factory(name=f"bad-{param}", start=False, **{param: value})
    with pytest.raises(RuntimeError) as e:
        o.start(timeout=10)
    assert needle in str(e.value) and "invalid modparam" in str(e.value), str(e.value)[-2000:]


def test_unwritable_state_file_refuses_start(osips_factory, tmp_path):
    o = osips_factory(name="unwritable", start=False,
                      state_file=str(tmp_path / "missing-dir" / "sg.state"))
    with pytest.raises(RuntimeError) as e:
        o.start(timeout=10)
    assert "state_file" in str(e.value), str(e.value)[-2000:]


def test_example_bundle_as_shipped(osips_factory):
    o = osips_factory(name="example", cfg=OSIPS_CFG_DIR / "sipguard.cfg")
    r = sipg.udp_run("127.0.0.2", DST, o.port, 60, wait=0.5)
    assert 30 <= r.answered <= 32, r
    o.wait_log(lambda: o.bans(src="127.0.0.2"), timeout=3, what="BAN line")
    assert o.sg_list()["bans"]["127.0.0.2"]["remaining"] > 250
    # its 404 leaves as a challenge (reply normalization is on by default)
    assert sipg.udp_run("127.0.0.3", DST, o.port, 1, wait=0.5, method="INVITE").codes == {407: 1}


def test_run_sh_opensips(tmp_path):
    """bash scripts/run.sh opensips: the example answers, the MI works."""
    rundir = tmp_path / "run"
    port = sipg.free_port()
    env = dict(os.environ, SIPGUARD_SKIP_DEPS="1", SIPGUARD_SKIP_BUILD="1",
               SIPGUARD_RUNDIR=str(rundir), SIPGUARD_PORT=str(port))
    log = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen(["bash", str(sipg.REPO / "scripts" / "run.sh"), "opensips"],
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        r = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None and r is None:
            r = sipg.udp_request("OPTIONS", port, src="127.0.0.31", timeout=0.5)
        assert r is not None and r.code == 200, (tmp_path / "run.log").read_text()[-3000:]
        o = OpenSIPS(cfg=rundir / "opensips" / "sipguard.cfg", workdir=tmp_path, name="probe")
        o.fifo = rundir / "opensips" / "fifo"
        o.rundir = rundir / "opensips"
        assert o.mi("sipguard_ban", "127.0.0.32", "60") == "OK"
        assert sipg.udp_request("OPTIONS", port, src="127.0.0.32", timeout=1) is None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)
        log.close()


@pytest.mark.parametrize("src", ["127.0.0.1", "::1"])
def test_reply_normalized_to_the_via_address(osips_factory, src):
    """The outgoing-message callback is not told the destination: it reads
    the reply's top Via (received, else host), IPv4 and IPv6 alike, and the
    reply that would leak (404) leaves as a challenge."""
    o = osips_factory(name="via6" if ":" in src else "via4")
    r = sipg.udp_request("INVITE", o.port, src=src, dst=src)
    assert r is not None and r.code == 407, r
    assert o.sg_stats()["normalized"] == 1
    o2 = osips_factory(name="via-off", normalize_replies=0)
    r = sipg.udp_request("INVITE", o2.port, src=src, dst=src)
    assert r is not None and r.code == 404, r

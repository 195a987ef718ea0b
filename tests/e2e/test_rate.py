"""Rate limiting against a real Kamailio: flood, normal rate, window
boundaries, allowlist, IPv6, TCP and sipp. One Kamailio for the module;
each test uses its own source addresses, so tests do not disturb each other.

Config: rate 30/2s, burst 30 => 30 back to back, then one per 66.7 ms.
"""
import time

import pytest

import sipg

DST = "127.0.0.1"


@pytest.fixture(scope="module")
def kam(kam_module_factory):
    # ban_time long enough to outlast each test's checks
    return kam_module_factory(name="rate", ban_time='"20s"')


def assert_one_flood_ban(kam, src, key=None, offences=1, duration="20"):
    key = key or src
    bans = kam.wait_log(lambda: kam.bans(src=src), timeout=3, what=f"BAN line for {src}")
    time.sleep(0.3)  # a second line, if the module wrongly logs per process, arrives now
    bans = kam.bans(src=src)
    assert len(bans) == 1, f"expected exactly one BAN line for {src}, got {bans}"
    b = bans[0]
    assert b["key"] == key, b
    assert b["reason"] == "flood", b
    assert b["offences"] == str(offences), b
    assert b["duration"] == duration, b


def assert_flood_verdicts(v):
    """30 pass (+ the few the rate refills while sending), then one -1
    (banned now), then only -2."""
    i = v.index(-1)
    assert 30 <= i <= 33, v
    assert v[:i] == [1] * i, v
    assert v[i + 1:] == [-2] * (len(v) - i - 1), v


def test_flood_above_rate_is_blocked(kam):
    src = "127.0.0.2"
    r = sipg.udp_run(src, DST, kam.port, 60)
    assert r.sent == 60
    assert 30 <= r.answered <= 32, r
    # the answered ones are the first ones: nothing passes after the ban
    assert max(r.answered_idx) < 33, sorted(r.answered_idx)
    assert r.verdicts == {1: r.answered}, r
    assert_one_flood_ban(kam, src)
    # still banned: nothing answered
    later = sipg.udp_run(src, DST, kam.port, 5, interval=0.1, wait=0.5)
    assert later.answered == 0, later
    assert len(kam.bans(src=src)) == 1, "a rejected request must not log another BAN"
    entry = kam.sg_list()["bans"].get(src)
    assert entry is not None, kam.last_list_raw
    assert entry["reason"] == "flood" and entry["offences"] == 1, entry
    assert 10 <= entry["remaining"] <= 20, entry


def test_normal_rate_never_affected(kam):
    src = "127.0.0.3"
    r = sipg.udp_run(src, DST, kam.port, 50, interval=0.1, wait=0.5)  # 10/s for 5 s
    assert r.answered == 50, (r, sorted(r.answered_idx), kam.stats(), kam.kamcmd("sipguard.list").stdout)
    assert r.verdicts == {1: 50}, r
    assert kam.bans(src=src) == []


def test_near_limit_rate_never_affected(kam):
    """14/s for 4 s: 56 requests, well above the burst of 30, but under the
    rate (15/s): a GCRA never bans it."""
    src = "127.0.0.4"
    r = sipg.udp_run(src, DST, kam.port, 56, interval=1 / 14, wait=0.5)
    assert r.answered == 56, r
    assert kam.bans(src=src) == []


def test_burst_straddling_window_boundaries_gets_no_double_allowance(kam):
    """A fixed 2 s window (pike style) lets 30 just before and 30 just after a
    boundary through. Four sources start at phases 0, 0.5, 1.0, 1.5 s, so
    at least one straddles any 2 s boundary: each sends 30 back to back,
    then 30 more 0.2 s later. A GCRA lets through 30 + 0.2 s / 66.7 ms (3)
    at most (+1 for timing)."""
    t0 = time.monotonic()
    results = {}
    for i, src in enumerate(["127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"]):
        time.sleep(max(0.0, t0 + 0.5 * i - time.monotonic()))
        sched = [0.0] * 30 + [0.2] * 30
        with sipg.UdpClient(src, DST, kam.port) as c:
            results[src] = c.run_schedule(sched, wait=0.25)
    for src, r in results.items():
        assert 30 <= r.answered <= 34, (src, r)
        assert len(kam.bans(src=src)) == 1, (src, kam.bans(src=src))


def test_allowlisted_source_never_blocked(kam):
    src = "127.0.0.250"
    before = kam.stats()
    r = sipg.udp_run(src, DST, kam.port, 300, wait=1.5)
    assert r.answered == 300, r
    assert r.verdicts == {2: 300}, r
    # and again right after: still not limited
    r2 = sipg.udp_run(src, DST, kam.port, 100, wait=1.0)
    assert r2.answered == 100, r2
    assert kam.bans(src=src) == []
    after = kam.stats()
    assert after["allowlisted"] - before["allowlisted"] == 400, (before, after)
    assert after["limited"] == before["limited"]
    assert src not in kam.sg_list()["bans"]


def test_ipv6_source_limited_and_banned(kam):
    r = sipg.udp_run("::1", "::1", kam.port, 60)
    assert 30 <= r.answered <= 32, r
    assert_one_flood_ban(kam, "::1", key="::/64")
    assert "::/64" in kam.sg_list()["bans"], kam.last_list_raw
    later = sipg.udp_run("::1", "::1", kam.port, 3, wait=0.5)
    assert later.answered == 0, later


def test_ipv6_keyed_per_prefix_with_check_ip(kam):
    """sipguard_check_ip(): the 64-bit prefix is the key; a neighbour /64 is
    independent."""
    verdicts = [sipg.check_ip(kam.port, "2001:db8:aa::1") for _ in range(40)]
    assert_flood_verdicts(verdicts)
    assert sipg.check_ip(kam.port, "2001:db8:aa::ffff:1") == -2
    assert sipg.check_ip(kam.port, "2001:db8:aa:0:1:2:3:4") == -2
    assert sipg.check_ip(kam.port, "2001:db8:aa:1::1") == 1
    bans = kam.wait_log(lambda: kam.bans(key="2001:db8:aa::/64"), timeout=3, what="v6 BAN")
    assert len(bans) == 1 and bans[0]["src"] == "2001:db8:aa::1", bans
    # IPv4 via check_ip: key is the address itself
    v4 = [sipg.check_ip(kam.port, "192.0.2.77") for _ in range(40)]
    assert_flood_verdicts(v4)
    assert sipg.check_ip(kam.port, "192.0.2.78") == 1
    assert len(kam.bans(src="192.0.2.77", key="192.0.2.77")) == 1


def test_tcp_flood_is_blocked(kam):
    src = "127.0.0.5"
    with sipg.TcpClient(src, DST, kam.port) as t:
        r = t.run(60, wait=1.5)
    assert 30 <= r.answered <= 32, r
    assert_one_flood_ban(kam, src)
    # a new connection from the banned source: accepted, and each message
    # rejected by the check (counted), with no reply of any kind within the
    # wait; a control source on the same transport is answered
    before = kam.stats()
    with sipg.TcpClient(src, DST, kam.port) as t:
        r2 = t.run(3, wait=1.5)
    assert r2.sent == 3 and r2.codes == {}, r2
    s = kam.wait_log(lambda: (s := kam.stats())["rejected"] - before["rejected"] >= 3 and s,
                     timeout=3, what="3 TCP messages rejected")
    assert s["rejected"] - before["rejected"] == 3, (before, s)
    with sipg.TcpClient("127.0.0.55", DST, kam.port) as t:
        ctl = t.run(3, wait=1.5)
    assert ctl.answered == 3, ctl


def test_tcp_normal_rate_never_affected(kam):
    src = "127.0.0.6"
    with sipg.TcpClient(src, DST, kam.port) as t:
        r = t.run(40, interval=0.05, wait=1.0)  # 20/s for 2 s: 40 > burst, < 30 + 2*15
    assert r.answered == 40, r
    assert kam.bans(src=src) == []


def test_sipp_options_flood_is_blocked(kam, tmp_path):
    sipg.require_tools(sipg.SIPP)
    src = "127.0.0.7"
    r = sipg.sipp_options(DST, kam.port, src, count=60, rate=2000, workdir=tmp_path,
                          recv_timeout_ms=1500)
    assert r["successful"] + r["failed"] == 60, r
    assert 30 <= r["successful"] <= 33, {k: r[k] for k in ("successful", "failed", "rc")}
    assert r["rc"] != 0  # sipp reports the failed calls
    assert_one_flood_ban(kam, src)


def test_sipp_options_normal_rate_passes(kam, tmp_path):
    sipg.require_tools(sipg.SIPP)
    src = "127.0.0.8"
    r = sipg.sipp_options(DST, kam.port, src, count=40, rate=10, workdir=tmp_path)
    assert r["successful"] == 40 and r["failed"] == 0, {k: r[k] for k in ("successful", "failed")}
    assert r["rc"] == 0
    assert kam.bans(src=src) == []


def test_sipp_from_allowlisted_source_at_flood_rate(kam, tmp_path):
    sipg.require_tools(sipg.SIPP)
    r = sipg.sipp_options(DST, kam.port, "127.0.0.250", count=500, rate=2000, workdir=tmp_path)
    assert r["successful"] == 500 and r["failed"] == 0, {k: r[k] for k in ("successful", "failed")}
    assert kam.bans(src="127.0.0.250") == []


def test_ban_lines_logged_once_per_event(kam):
    """All BAN lines so far: one per banned source, never duplicated."""
    lines = kam.bans()
    keys = [b["key"] for b in lines]
    assert len(keys) == len(set(keys)), lines

"""100 000 distinct sources: the table stays the same size and keeps its bans."""
import re
import time

import sipg

DST = "127.0.0.1"
SOURCES = 100_000
RATE = 20_000        # packets/s sent by the sprayer
MAX_SECONDS = 20     # hard bound on the spray


def wait_stats(kam, pred, timeout=5.0, what="statistics", sg=False):
    """Poll the statistics (`sipguard.stats` if sg) until pred(stats) holds,
    within `timeout`; returns them. For what the once-a-second sweep
    recounts: polled instead of sleeping past a sweep."""
    last = []

    def check():
        last[:] = [kam.sg_stats() if sg else kam.stats()]
        return last[0] if pred(last[0]) else None

    try:
        return kam.wait_log(check, timeout=timeout, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}\nlast statistics: {last}") from None


def test_many_sources_memory_bounded_and_bans_intact(kam_factory):
    kam = kam_factory(name="table", table_size=4096, ban_time='"300s"')
    # existing bans: one by flood, one by RPC, one IPv6 by RPC
    fl = sipg.udp_run("127.0.0.2", DST, kam.port, 60, wait=0.5)
    assert 30 <= fl.answered <= 32, fl
    kam.kamcmd("sipguard.ban", "127.0.0.3", "600")
    kam.kamcmd("sipguard.ban", "2001:db8:9::1", "600")
    kam.wait_log(lambda: len(kam.bans()) == 3, timeout=3, what="3 BAN lines")

    sg0 = kam.sg_stats()
    shm0 = kam.shm_used()
    # warm up: fill the table and touch every page once (10 000 sources)
    sp = sipg.Sprayer(DST, kam.port)
    try:
        warm = sp.spray(sipg.source_addresses(10_000, first_octet2=200), rate=RATE,
                        max_seconds=MAX_SECONDS)
        # the warm-up handled (the statistics count what was checked)
        sg1 = wait_stats(kam, lambda g: g["checked"] - sg0["checked"] >= 0.95 * warm["sent"],
                         what="the warm-up checked", sg=True)
        rss1, pss1, shm1 = kam.rss_kb(), kam.pss_kb(), kam.shm_used()

        sp.replies = 0
        res = sp.spray(sipg.source_addresses(SOURCES, first_octet2=10), rate=RATE,
                       max_seconds=MAX_SECONDS)
    finally:
        sp.close()
    # the spray handled, and a sweep after it (it recounts the active bans:
    # the 3 bans are still there)
    sg2 = wait_stats(kam, lambda g: g["checked"] - sg1["checked"] >= 0.95 * SOURCES
                     and g["active_bans"] == 3, what="the spray checked", sg=True)
    rss2, pss2, shm2 = kam.rss_kb(), kam.pss_kb(), kam.shm_used()
    print(f"\nwarm-up {warm}\nspray {res}\nregion_bytes {sg0['region_bytes']} "
          f"rss_kb {rss1}->{rss2} pss_kb {pss1}->{pss2} shm {shm0}->{shm1}->{shm2} "
          f"entries_used {sg2['entries_used']} evictions {sg2['evictions']} "
          f"untracked {sg2['untracked']}")

    # the spray really happened, and Kamailio answered (nearly) all of it
    assert res["sent"] == SOURCES and not res["stopped_early"], res
    assert res["replies"] >= 0.95 * SOURCES, res
    assert sg2["checked"] - sg1["checked"] >= 0.95 * SOURCES, (sg1, sg2)
    # memory: the region is fixed; no shm or RSS growth with the number of sources
    assert sg2["region_bytes"] == sg1["region_bytes"] == sg0["region_bytes"]
    assert sg2["table_size"] == 4096
    assert sg2["entries_used"] <= sg2["table_size"], sg2
    assert sg2["evictions"] - sg1["evictions"] >= SOURCES * 0.9 - sg2["table_size"], (sg1, sg2)
    assert abs(shm2 - shm1) <= 64 * 1024, (shm1, shm2)
    assert rss2 - rss1 <= 4 * 1024, f"RSS grew {rss2 - rss1} kB over {SOURCES} sources"
    assert pss2 - pss1 <= 2 * 1024, f"PSS grew {pss2 - pss1} kB over {SOURCES} sources"

    # existing bans intact
    bans = kam.sg_list()["bans"]
    for key in ("127.0.0.2", "127.0.0.3", "2001:db8:9::/64"):
        assert key in bans, (key, kam.last_list_raw)
    assert sg2["active_bans"] == 3, sg2
    assert sipg.udp_run("127.0.0.2", DST, kam.port, 2, wait=0.5).answered == 0
    assert sipg.udp_run("127.0.0.3", DST, kam.port, 2, wait=0.5).answered == 0
    assert sipg.check_ip(kam.port, "2001:db8:9::7") == -2
    # and the table still limits new floods
    fl2 = sipg.udp_run("127.0.0.4", DST, kam.port, 60, wait=0.5)
    assert 30 <= fl2.answered <= 32, fl2
    kam.wait_log(lambda: kam.bans(src="127.0.0.4"), timeout=3, what="BAN after spray")
    assert len(kam.bans()) == 4, kam.bans()


def test_list_with_many_bans(kam_factory):
    """2000 flooding sources, all banned: `sipguard.list` still answers (all
    bans, or a capped list), it does not fail with "reply too big"."""
    # prefix bans off: 2000 addresses of eight /24s would otherwise make
    # eight prefix bans after the 16th ban of each
    kam = kam_factory(name="manybans", table_size=16384, ban_time='"300s"', ban_prefix_threshold=0)
    sp = sipg.Sprayer(DST, kam.port)
    srcs = sipg.source_addresses(2000, first_octet2=50)
    t0 = time.monotonic()
    try:
        for i, src in enumerate(srcs):       # 40 back to back from each: a ban each
            for j in range(40):
                for _ in range(1000):
                    if sp.send_from(src, sp.packet(src, i * 100 + j)):
                        break
                    time.sleep(0.001)
            while time.monotonic() < t0 + i / 500:   # 500 sources/s, 20 000 packets/s
                sp.drain()
                time.sleep(0.001)
            assert time.monotonic() - t0 < 30
    finally:
        sp.close()
    s = wait_stats(kam, lambda s: s["active_bans"] >= 1900, what="1900 active bans")
    r = kam.kamcmd("sipguard.list", check=False)
    assert r.returncode == 0, f"sipguard.list with {s['active_bans']} bans: {r.stdout[-300:]}{r.stderr}"
    lst = kam.sg_list()
    # Capped at 500 by default, with the full count alongside.
    assert len(lst["bans"]) == 500 == lst["bans_listed"], kam.last_list_raw[-500:]
    assert lst["bans_total"] >= 1900, kam.last_list_raw[-500:]
    # A larger cap on request.
    assert kam.sg_list("0", "1000")["bans_listed"] == 1000


# ----------------------------------------------------------------------------
# No exhaustion: bans made one packet per address cannot crowd out tracking,
# make the table refuse a ban, or (through prefix bans) cost a slot each.

UNBAN_ANY_RE = re.compile(r"sipguard: UNBAN key=(?P<key>\S+) reason=(?P<reason>\w+)\s*$")


def unbans_any(kam, reason=None) -> list:
    """UNBAN lines of any reason (sipg.UNBAN_RE knows expired|rpc only)."""
    out = []
    for line in kam.log_text().splitlines():
        m = UNBAN_ANY_RE.search(line)
        if m and (reason is None or m["reason"] == reason):
            out.append(m.groupdict())
    return out


def scanner_spray(kam, sources, rate=2000, max_seconds=20):
    """One OPTIONS with a scanner User-Agent from each source (a ban each,
    at the first packet). Returns the sprayer's counts."""
    sp = sipg.Sprayer(DST, kam.port)
    sent = 0
    t0 = time.monotonic()
    try:
        for i, src in enumerate(sources):
            pkt = sp.packet(src, i + 1).replace(b"Content-Length: 0",
                                                b"User-Agent: friendly-scanner\r\nContent-Length: 0")
            for _ in range(1000):            # bounded retry on a full socket buffer
                if sp.send_from(src, pkt):
                    sent += 1
                    break
                time.sleep(0.001)
            while time.monotonic() < t0 + (i + 1) / rate:
                sp.drain()
                time.sleep(0.001)
            assert time.monotonic() - t0 < max_seconds, "spray took too long"
        sp.drain()
    finally:
        sp.close()
    return {"sent": sent, "seconds": time.monotonic() - t0}


def new_flooder_is_limited_and_rpc_ban_works(kam, flooder, rpc_addr):
    """A source outside the sprayed addresses: 30 of 60 answered, then its
    BAN line; `sipguard.ban` works and bans."""
    fl = sipg.udp_run(flooder, DST, kam.port, 60, wait=0.5)
    assert 30 <= fl.answered <= 32, (fl, kam.sg_stats())
    assert fl.verdicts.get(3) is None, fl                      # never untracked
    kam.wait_log(lambda: kam.bans(src=flooder), timeout=3, what=f"BAN of {flooder}")
    assert kam.bans(src=flooder)[0]["reason"] == "flood"
    r = kam.kamcmd("sipguard.ban", rpc_addr, "600", check=False)
    assert r.returncode == 0 and "banned" in r.stdout, r
    b = kam.wait_log(lambda: kam.bans(src=rpc_addr), timeout=3, what=f"BAN of {rpc_addr}")
    assert b[0]["key"] in kam.sg_list()["bans"], kam.last_list_raw


def test_bans_from_many_addresses_of_one_network(kam_factory):
    """table_size 64 (8 buckets of 8): 200 addresses of 127.1.2.0/24 each
    send ONE packet with a scanner User-Agent, i.e. 200 bans, more than the
    table's 64 entries. The 8th ban in the /24 bans the /24 (one prefix
    ban, ban_prefix_threshold 8), which refuses the other addresses without
    a slot each. A new flooder elsewhere is still limited and banned,
    `sipguard.ban` still works, an allowlisted address in the /24 is still
    served, and the prefix ban is listed and lifted by `sipguard.unban
    <cidr>`. (Before prefix bans and the ban cap, the bans filled every
    bucket: new sources passed untracked and `sipguard.ban` failed.)"""
    kam = kam_factory(name="netbans", table_size=64, ban_time='"300s"', ban_prefix_threshold=8,
                      allow='"127.0.0.250/32, 127.1.2.250/32"')
    srcs = [f"127.1.2.{i}" for i in range(1, 201)]
    sp = scanner_spray(kam, srcs)
    assert sp["sent"] == 200, sp
    kam.wait_log(lambda: kam.stats()["scanners"] + kam.stats()["rejected"] >= 200, timeout=5,
                 what="200 scanner packets handled")

    new_flooder_is_limited_and_rpc_ban_works(kam, "127.9.0.1", "127.9.0.2")
    s = kam.stats()
    assert s["untracked"] == 0, s

    # One prefix ban; a handful of own bans before it (2 workers may each
    # start one while the 8th is being counted); the rest refused by it.
    pbans = kam.bans(key="127.1.2.0/24")
    assert len(pbans) == 1, kam.bans()
    assert pbans[0]["reason"] == "scanner" and pbans[0]["duration"] == "300", pbans
    assert pbans[0]["src"] in srcs, pbans
    own = [b for b in kam.bans() if b["src"] in srcs and b["key"] != "127.1.2.0/24"]
    assert 8 <= len(own) <= 12, own
    # (a source checked just before the prefix ban, banned just after it,
    # counts as a scanner without an own ban: it is covered already)
    assert len(own) <= s["scanners"] <= 12 and s["rejected"] >= 200 - s["scanners"], s
    lst = kam.sg_list()
    e = lst["bans"].get("127.1.2.0/24")
    assert e is not None and e["reason"] == "scanner" and 290 <= e["remaining"] <= 300, \
        kam.last_list_raw
    wait_stats(kam, lambda s: s["active_bans"] == len(own) + 1 + 2,
               what="active_bans (the sweep recounts)")

    # Covered: any address of the /24 gets no answer; the allowlist wins.
    assert sipg.udp_run("127.1.2.222", DST, kam.port, 2, wait=0.5).answered == 0
    ok = sipg.udp_run("127.1.2.250", DST, kam.port, 3, wait=0.5)
    assert ok.answered == 3 and ok.verdicts == {2: 3}, ok
    assert sipg.udp_run("127.1.3.1", DST, kam.port, 1, wait=0.5).answered == 1

    # Lifted by CIDR: the /24 is served again (the own bans stay).
    r = kam.kamcmd("sipguard.unban", "127.1.2.0/24", check=False)
    assert r.returncode == 0 and "unbanned" in r.stdout, r
    kam.wait_log(lambda: unbans_any(kam, "rpc"), timeout=3, what="UNBAN of the /24")
    assert unbans_any(kam, "rpc") == [{"key": "127.1.2.0/24", "reason": "rpc"}]
    assert sipg.udp_run("127.1.2.222", DST, kam.port, 1, wait=1.0).answered == 1
    assert sipg.udp_run(own[0]["src"], DST, kam.port, 1, wait=0.5).answered == 0


def test_bans_from_many_networks_never_fill_a_bucket(kam_factory):
    """table_size 64, no prefix bans (ban_prefix_threshold 0): 300 scanner
    packets from 300 addresses in distinct /24s make 300 bans. Bans take at
    most 6 of a bucket's 8 ways: each ban past that lifts the lowest-ranked
    one (UNBAN reason=evicted) instead of being refused, and new sources
    are always tracked: a new flooder is limited and banned, `sipguard.ban`
    works. (Before: the table refused bans and passed sources untracked.)"""
    kam = kam_factory(name="capbans", table_size=64, ban_time='"300s"', ban_prefix_threshold=0)
    srcs = [f"127.{1 + i // 250}.{i % 250}.1" for i in range(300)]
    sp = scanner_spray(kam, srcs)
    assert sp["sent"] == 300, sp
    kam.wait_log(lambda: kam.stats()["scanners"] >= 300, timeout=5, what="300 scanner packets")

    new_flooder_is_limited_and_rpc_ban_works(kam, "127.9.0.1", "127.9.0.2")
    # the sweep recounts active_bans (0 until its first run): bans less
    # those lifted
    s = wait_stats(kam, lambda s: s["bans"] == 302 and 0 < s["active_bans"] == s["bans"] - s["unbans"],
                   what="active_bans recounted")
    assert s["untracked"] == 0, s
    assert s["bans"] == 300 + 2, s                # every ban recorded, none refused
    assert s["active_bans"] <= 6 * 8, s           # at most 6 of 8 ways
    evicted = unbans_any(kam, "evicted")
    assert len(evicted) == s["bans"] - s["active_bans"] == s["unbans"], (len(evicted), s)
    assert len(kam.sg_list()["bans"]) == s["active_bans"], kam.last_list_raw
    assert "127.9.0.1" in kam.sg_list()["bans"] and "127.9.0.2" in kam.sg_list()["bans"]


def test_ipv6_network_cannot_exhaust_the_table(kam_factory):
    """table_size 64: 100 /64s of 2001:db8:5::/48 flood (31 checks each, by
    sipguard_check_ip via X-Check-IP; only ::1 is on loopback). The 8th /64
    banned bans the /48 (ban_prefix_threshold 8), after which every /64 of
    it is refused at its first request, without a slot. A new flooder in
    another /48 is limited and banned, `sipguard.ban` works, the /48 is
    listed and `sipguard.unban 2001:db8:5::/48` lifts it."""
    kam = kam_factory(name="v6net", table_size=64, ban_time='"300s"', ban_prefix_threshold=8)
    verdicts = []
    t0 = time.monotonic()
    with sipg.UdpClient("127.0.0.1", DST, kam.port) as c:
        for n in range(100):
            r = c.run(31, wait=2.0, headers=f"X-Check-IP: 2001:db8:5:{n:x}::1\r\n")
            assert r.answered == 31, (n, r)
            verdicts.append(r.verdicts)
            assert time.monotonic() - t0 < 60
    assert all(v.get(3) is None for v in verdicts), verdicts   # never untracked
    assert verdicts[:8] == [{1: 30, -1: 1}] * 8, verdicts[:8]
    assert verdicts[8:] == [{-2: 31}] * 92, verdicts[8:]

    # a new flooder outside the /48, by the same check
    with sipg.UdpClient("127.0.0.1", DST, kam.port) as c:
        r = c.run(32, wait=2.0, headers="X-Check-IP: 2001:db8:6::1\r\n")
    assert r.verdicts == {1: 30, -1: 1, -2: 1}, r
    new_flooder_is_limited_and_rpc_ban_works(kam, "127.9.0.1", "2001:db8:7::1")
    assert sipg.check_ip(kam.port, "2001:db8:7::99") == -2

    b = kam.bans(key="2001:db8:5::/48")
    assert b == [{"src": "2001:db8:5:7::1", "key": "2001:db8:5::/48", "reason": "flood",
                  "duration": "300", "offences": "1"}], kam.bans()
    assert len(kam.bans()) == 8 + 1 + 1 + 2, kam.bans()
    assert "2001:db8:5::/48" in kam.sg_list()["bans"], kam.last_list_raw
    r = kam.kamcmd("sipguard.unban", "2001:db8:5::/48", check=False)
    assert r.returncode == 0 and "unbanned" in r.stdout, r
    assert sipg.check_ip(kam.port, "2001:db8:5:ffff::1") == 1
    assert sipg.check_ip(kam.port, "2001:db8:5:7::2") == -2    # its own ban stays

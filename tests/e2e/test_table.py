"""100 000 distinct sources: the table stays the same size and keeps its bans."""
import time

import sipg

DST = "127.0.0.1"
SOURCES = 100_000
RATE = 20_000        # packets/s sent by the sprayer
MAX_SECONDS = 20     # hard bound on the spray


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
        time.sleep(1.2)
        rss1, pss1, shm1 = kam.rss_kb(), kam.pss_kb(), kam.shm_used()
        sg1 = kam.sg_stats()

        sp.replies = 0
        res = sp.spray(sipg.source_addresses(SOURCES, first_octet2=10), rate=RATE,
                       max_seconds=MAX_SECONDS)
    finally:
        sp.close()
    time.sleep(1.5)  # sweep recounts
    rss2, pss2, shm2 = kam.rss_kb(), kam.pss_kb(), kam.shm_used()
    sg2 = kam.sg_stats()
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
    kam = kam_factory(name="manybans", table_size=16384, ban_time='"300s"')
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
    time.sleep(1.5)
    s = kam.stats()
    assert s["active_bans"] >= 1900, s
    r = kam.kamcmd("sipguard.list", check=False)
    assert r.returncode == 0, f"sipguard.list with {s['active_bans']} bans: {r.stdout[-300:]}{r.stderr}"
    lst = kam.sg_list()
    # Capped at 500 by default, with the full count alongside.
    assert len(lst["bans"]) == 500 == lst["bans_listed"], kam.last_list_raw[-500:]
    assert lst["bans_total"] >= 1900, kam.last_list_raw[-500:]
    # A larger cap on request.
    assert kam.sg_list("0", "1000")["bans_listed"] == 1000

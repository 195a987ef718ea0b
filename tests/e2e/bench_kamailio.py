"""Kamailio-level benchmark: kamailio-cfg/nocheck.cfg vs pike.cfg vs
sipguard.cfg, side by side, on loopback. Figures are printed, not asserted.
Run by scripts/bench-kamailio.sh (make bench). Every loop is bounded.

1. throughput: OPTIONS answered per second at saturation
   a) the sprayer: one UDP socket, each request from the next of 20 000
      source addresses (127.x.y.z, IP_PKTINFO), at most WINDOW in flight:
      no source comes near 15 req/s, so neither pike nor sipguard bans;
      this measures the cost of the check;
      the Kamailio CPU time per answered request (all its processes,
      utime+stime) is the steadier figure: the load generator shares the
      two cores, so requests/s also depends on scheduling;
   b) sipp from one source (-i 127.0.0.250) at a high rate, bounded count:
      nocheck and sipguard with rate "1000000/s" (pike would ban it: n/a).
2. memory after 100 000 distinct sources (one request each): shm used
   (core.shmmem real_used), RSS and PSS summed over all Kamailio processes.
3. CPU (utime+stime of all Kamailio processes) spent on a banned source
   flooding 40 000 req/s for 5 s: pike (drops in the script) vs sipguard
   (early_drop: before parsing); nocheck (answers all) for scale.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sipg  # noqa: E402

CFGS = ["nocheck", "pike", "sipguard"]
CHILDREN = "2"
DURATION = float(os.environ.get("BENCH_SECONDS", "5"))
WINDOW = 256
SOURCES_TPUT = 20_000
SOURCES_MEM = 100_000
FLOOD_RATE = 40_000
FLOOD_SECONDS = 5.0
HZ = os.sysconf("SC_CLK_TCK")
ROUNDS = 2


def kam(tmp: Path, name: str, **defines) -> sipg.Kamailio:
    rundir = tmp / f"{name}-run"
    d = {"SG_CHILDREN": CHILDREN}
    d.update(defines)
    k = sipg.Kamailio(cfg=sipg.REPO / "kamailio-cfg" / f"{name}.cfg", workdir=tmp, name=name,
                      defines=d, extra_args=[f"--substdef=!SG_RUNDIR!{rundir}!g"])
    k.no_default_defines = True
    k.rundir = rundir
    rundir.mkdir(exist_ok=True)
    k.ctl = rundir / "kamailio_ctl"
    return k


def closed_loop(port: int, seconds: float) -> dict:
    """At most WINDOW requests in flight, sources rotating; returns replies/s."""
    sp = sipg.Sprayer("127.0.0.1", port)
    srcs = sipg.source_addresses(SOURCES_TPUT, first_octet2=100)
    pkts = [sp.packet(s, i) for i, s in enumerate(srcs)]
    sent = lost = 0
    i = 0
    t0 = time.monotonic()
    end = t0 + seconds
    last_progress = t0
    last_replies = 0
    try:
        while True:
            now = time.monotonic()
            if now >= end:
                break
            inflight = sent - sp.replies - lost
            n = WINDOW - inflight
            for _ in range(max(0, n)):
                if sp.send_from(srcs[i], pkts[i]):
                    sent += 1
                i = (i + 1) % len(srcs)
            sp.drain()
            if sp.replies != last_replies:
                last_replies, last_progress = sp.replies, now
            elif now - last_progress > 0.05 and sent - sp.replies - lost > 0:
                lost += sent - sp.replies - lost  # assume the stalled ones lost
                last_progress = now
        elapsed = time.monotonic() - t0
        replies = sp.replies
    finally:
        sp.close()
    return {"rps": replies / elapsed, "sent": sent, "replies": replies, "lost": lost}


def sipp_rate(port: int, tmp: Path) -> dict:
    r = sipg.sipp_options("127.0.0.1", port, "127.0.0.250", count=60_000, rate=60_000,
                          workdir=tmp, timeout_s=30, limit=2000, recv_timeout_ms=2000)
    return {"rps": r["successful"] / r["elapsed"], "successful": r["successful"],
            "failed": r["failed"]}


def mem(k: sipg.Kamailio) -> dict:
    return {"shm": k.shm_used(), "rss_kb": k.rss_kb(), "pss_kb": k.pss_kb()}


def main() -> int:
    for t in (sipg.KAMAILIO, sipg.KAMCMD, sipg.SIPP):
        if not os.access(t, os.X_OK):
            print(f"bench: {t} missing", file=sys.stderr)
            return 1
    if not sipg.MODULE_SO.is_file():
        print("bench: build/sipguard.so missing: run make", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="sipguard-bench-"))
    res: dict = {c: {} for c in CFGS}
    try:
        # 1. throughput: ROUNDS rounds, the order reversed every other
        # round; the best run of each config is reported
        for rnd in range(ROUNDS):
            for c in (CFGS if rnd % 2 == 0 else CFGS[::-1]):
                extra = {"SG_RATE": '"1000000/s"'} if c == "sipguard" else {}
                k = kam(tmp, c, **extra).start()
                try:
                    closed_loop(k.port, 1.0)  # warm-up
                    c0 = k.cpu_ticks()
                    t = closed_loop(k.port, DURATION)
                    t["cpu_us_per_req"] = (k.cpu_ticks() - c0) / HZ / max(1, t["replies"]) * 1e6
                    if t["rps"] > res[c].get("tput", {}).get("rps", 0):
                        res[c]["tput"] = t
                    if c != "pike":
                        sp = sipp_rate(k.port, tmp)
                        if sp["rps"] > res[c].get("sipp", {}).get("rps", 0):
                            res[c]["sipp"] = sp
                    else:
                        sp = None
                finally:
                    k.stop()
                print(f"throughput round {rnd + 1} {c}: sprayer {t}, sipp {sp}", flush=True)

        # 2. memory after 100 000 sources
        for c in ("pike", "sipguard"):
            k = kam(tmp, c).start()
            try:
                time.sleep(0.5)
                before = mem(k)
                sp = sipg.Sprayer("127.0.0.1", k.port)
                try:
                    spray = sp.spray(sipg.source_addresses(SOURCES_MEM, first_octet2=10),
                                     rate=20_000, max_seconds=20, wait=2.0)
                finally:
                    sp.close()
                time.sleep(1.0)
                after = mem(k)
                res[c]["mem"] = {"before": before, "after": after, "spray": spray}
            finally:
                k.stop()
            print(f"memory {c}: {res[c]['mem']}", flush=True)

        # 3. CPU spent on a banned 40 000 req/s flood
        for c in CFGS:
            k = kam(tmp, c).start()
            try:
                src = "127.0.0.66"
                sipg.udp_run(src, "127.0.0.1", k.port, 60, wait=0.5)  # get banned
                time.sleep(0.3)
                c0 = k.cpu_ticks()
                sp = sipg.Sprayer("127.0.0.1", k.port)
                try:
                    fl = sp.flood(src, FLOOD_RATE, FLOOD_SECONDS)
                    time.sleep(0.5)  # let the queue drain
                    sp.drain()
                    fl["replies"] = sp.replies
                finally:
                    sp.close()
                c1 = k.cpu_ticks()
                fl["cpu_s"] = (c1 - c0) / HZ
                if c == "sipguard":
                    fl["dropped"] = k.stats().get("dropped")
                res[c]["flood"] = fl
            finally:
                k.stop()
            print(f"flood {c}: {res[c]['flood']}", flush=True)
    finally:
        sipg.kill_all()

    # table
    def f(v, fmt="{:,.0f}"):
        return fmt.format(v) if isinstance(v, (int, float)) else str(v)

    rows = [("", *CFGS)]
    rows.append(("OPTIONS/s, 20k rotating sources",
                 *[f(res[c]["tput"]["rps"]) for c in CFGS]))
    rows.append(("  Kamailio CPU us per request",
                 *[f(res[c]["tput"]["cpu_us_per_req"], "{:.1f}") for c in CFGS]))
    rows.append(("OPTIONS/s, sipp, one source",
                 *[f(res[c]["sipp"]["rps"]) if "sipp" in res[c] else "n/a (bans)" for c in CFGS]))
    for label, key, div in (("shm used after 100k sources (KiB)", "shm", 1024),
                            ("RSS sum after 100k sources (MiB)", "rss_kb", 1024),
                            ("PSS sum after 100k sources (MiB)", "pss_kb", 1024)):
        cells = []
        for c in CFGS:
            m = res[c].get("mem")
            if not m:
                cells.append("-")
                continue
            a, b = m["after"][key] / div, m["before"][key] / div
            cells.append(f"{a:,.1f} (+{a - b:,.1f})")
        rows.append((label, *cells))
    rows.append((f"CPU s for banned {FLOOD_RATE // 1000}k/s x {FLOOD_SECONDS:.0f}s flood",
                 *[f(res[c]["flood"]["cpu_s"], "{:.2f}") for c in CFGS]))
    rows.append(("  packets sent (replies)",
                 *[f"{res[c]['flood']['sent']:,} ({res[c]['flood']['replies']:,})" for c in CFGS]))
    w0 = max(len(r[0]) for r in rows)
    w = [max(len(r[i]) for r in rows) for i in range(1, 4)]
    print("\nsipguard Kamailio benchmark ({} children, {} cores, best of {} x {}s throughput "
          "runs)".format(CHILDREN, os.cpu_count(), ROUNDS, DURATION))
    for r in rows:
        print(r[0].ljust(w0) + "  " + "  ".join(r[i + 1].rjust(w[i]) for i in range(3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

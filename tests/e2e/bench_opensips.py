"""OpenSIPS-level benchmark: opensips-cfg/bench/nocheck.cfg vs pike.cfg vs
sipguard.cfg, side by side, on loopback, the rows of the Kamailio
benchmark for OpenSIPS 3.6 built from source. Figures are printed, not
asserted. Run by scripts/bench-opensips.sh (make bench). Every loop is
bounded.

1. throughput: OPTIONS answered per second at saturation, the sprayer of
   bench_kamailio (20 000 rotating sources, a window in flight), and the
   OpenSIPS CPU time per answered request (all its processes);
2. memory after 100 000 distinct sources: shm used, RSS and PSS summed over
   all OpenSIPS processes;
3. CPU spent on a banned source flooding 40 000 req/s for 5 s: pike (drops
   in the script) vs sipguard (early drop: the pre-script callback);
   nocheck (answers all) for scale.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_kamailio as bk  # noqa: E402
import osips  # noqa: E402
import sipg  # noqa: E402

CFGS = ["nocheck", "pike", "sipguard"]
BENCH_DIR = osips.OSIPS_CFG_DIR / "bench"
HZ = os.sysconf("SC_CLK_TCK")


def start(tmp: Path, name: str, **params) -> osips.OpenSIPS:
    return osips.OpenSIPS(cfg=BENCH_DIR / f"{name}.cfg", workdir=tmp, name=name,
                          params=params).start()


def mem(o: osips.OpenSIPS) -> dict:
    return {"shm": o.shm_used(), "rss_kb": o.rss_kb(), "pss_kb": o.pss_kb()}


def main() -> int:
    try:
        osips.require_opensips()
    except AssertionError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="sipguard-bench-opensips-"))
    res: dict = {c: {} for c in CFGS}
    try:
        for rnd in range(bk.ROUNDS):
            for c in (CFGS if rnd % 2 == 0 else CFGS[::-1]):
                extra = {"rate": "1000000/s"} if c == "sipguard" else {}
                o = start(tmp, c, **extra)
                try:
                    bk.closed_loop(o.port, 1.0)  # warm-up
                    c0 = o.cpu_ticks()
                    t = bk.closed_loop(o.port, bk.DURATION)
                    t["cpu_us_per_req"] = (o.cpu_ticks() - c0) / HZ / max(1, t["replies"]) * 1e6
                    if t["rps"] > res[c].get("tput", {}).get("rps", 0):
                        res[c]["tput"] = t
                finally:
                    o.stop()
                print(f"throughput round {rnd + 1} {c}: {t}", flush=True)

        for c in ("pike", "sipguard"):
            o = start(tmp, c)
            try:
                time.sleep(0.5)
                before = mem(o)
                sp = sipg.Sprayer("127.0.0.1", o.port)
                try:
                    spray = sp.spray(sipg.source_addresses(bk.SOURCES_MEM, first_octet2=10),
                                     rate=20_000, max_seconds=20, wait=2.0)
                finally:
                    sp.close()
                time.sleep(1.0)
                res[c]["mem"] = {"before": before, "after": mem(o), "spray": spray}
            finally:
                o.stop()
            print(f"memory {c}: {res[c]['mem']}", flush=True)

        for c in CFGS:
            o = start(tmp, c)
            try:
                src = "127.0.0.66"
                sipg.udp_run(src, "127.0.0.1", o.port, 60, wait=0.5)  # get banned
                time.sleep(0.3)
                c0 = o.cpu_ticks()
                sp = sipg.Sprayer("127.0.0.1", o.port)
                try:
                    fl = sp.flood(src, bk.FLOOD_RATE, bk.FLOOD_SECONDS)
                    time.sleep(0.5)
                    sp.drain()
                    fl["replies"] = sp.replies
                finally:
                    sp.close()
                fl["cpu_s"] = (o.cpu_ticks() - c0) / HZ
                if c == "sipguard":
                    fl["dropped"] = o.stats().get("dropped")
                res[c]["flood"] = fl
            finally:
                o.stop()
            print(f"flood {c}: {res[c]['flood']}", flush=True)
    finally:
        sipg.kill_all()

    def f(v, fmt="{:,.0f}"):
        return fmt.format(v) if isinstance(v, (int, float)) else str(v)

    rows = [("OpenSIPS 3.6", *CFGS)]
    rows.append(("OPTIONS/s, 20k rotating sources", *[f(res[c]["tput"]["rps"]) for c in CFGS]))
    rows.append(("  OpenSIPS CPU us per request",
                 *[f(res[c]["tput"]["cpu_us_per_req"], "{:.1f}") for c in CFGS]))
    for label, key in (("shm used after 100k sources (KiB)", "shm"),
                       ("RSS sum after 100k sources (MiB)", "rss_kb"),
                       ("PSS sum after 100k sources (MiB)", "pss_kb")):
        cells = []
        for c in CFGS:
            m = res[c].get("mem")
            if not m:
                cells.append("-")
                continue
            a, b = m["after"][key] / 1024, m["before"][key] / 1024
            cells.append(f"{a:,.1f} (+{a - b:,.1f})")
        rows.append((label, *cells))
    rows.append((f"CPU s for banned {bk.FLOOD_RATE // 1000}k/s x {bk.FLOOD_SECONDS:.0f}s flood",
                 *[f(res[c]["flood"]["cpu_s"], "{:.2f}") for c in CFGS]))
    rows.append(("  packets sent (replies)",
                 *[f"{res[c]['flood']['sent']:,} ({res[c]['flood']['replies']:,})" for c in CFGS]))
    w0 = max(len(r[0]) for r in rows)
    w = [max(len(r[i]) for r in rows) for i in range(1, 4)]
    print("\nsipguard OpenSIPS benchmark (2 UDP workers, {} cores, best of {} x {}s throughput "
          "runs)".format(os.cpu_count(), bk.ROUNDS, bk.DURATION))
    for r in rows:
        print(r[0].ljust(w0) + "  " + "  ".join(r[i + 1].rjust(w[i]) for i in range(3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cluster benchmark: three nodes of kamailio-cfg/sipguard-cluster.cfg on
127.0.1.1-3 (tests/e2e/cluster.py). Figures are printed, not asserted.
Run by scripts/bench-cluster.sh (make bench). Every loop is bounded.

1. replication lag: a ban made at A (sipguard.ban), then OPTIONS probes
   from the banned address to B and C every 5 ms: the lag is the time from
   the start of the RPC (kamcmd's own few ms included) until the first
   probe that is no longer answered (early drop),
   for BENCH_CLUSTER_BANS bans (default 100); p50 / p99 / max. Also the
   nodes' own figure (sipguard.cluster lag_max_us: receive time minus the
   change's time). Side by side, the same measure of the anchor: three
   nodes of kamailio-cfg/htable-cluster.cfg, an "ipban" htable replicated
   by htable's own dmq replication (a ban: htable.seti ipban <addr> 1).
2. a flood of 20 000 sources at A, each banned on its first packet (a
   scanner's User-Agent): DMQ messages and changes A sent, messages per
   second, changes dropped, whether every node ends with the same ban set,
   and the CPU time (utime+stime, all processes) of each node meanwhile.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sipg  # noqa: E402
from cluster import Cluster, banned_keys, info, wait_until  # noqa: E402

BANS = int(os.environ.get("BENCH_CLUSTER_BANS", "100"))
PROBE_EVERY = 0.005
PROBES = 300
HZ = os.sysconf("SC_CLK_TCK")


class Factory:
    def __init__(self, tmp: str):
        self.tmp = Path(tmp)
        self.started: list = []


def probe(src: str, node, out: dict, key: str):
    with sipg.UdpClient(src, node.addr, node.port) as c:
        out[key + "_t0"] = time.monotonic()
        r = c.run(PROBES, interval=PROBE_EVERY, wait=0.3)
    out[key] = r.answered_idx


HTABLE_CFG = sipg.REPO / "kamailio-cfg" / "htable-cluster.cfg"


def sipguard_ban(k, src: str):
    k.kamcmd("sipguard.ban", src, "600")


def htable_ban(k, src: str):
    k.kamcmd("htable.seti", "ipban", src, "1")


def lag_once(cl: Cluster, i: int, ban=sipguard_ban) -> list:
    a, b, c = cl.nodes
    src = f"127.0.4.{i % 250 + 1}" if i < 250 else f"127.0.5.{i % 250 + 1}"
    got: dict = {}
    threads = [threading.Thread(target=probe, args=(src, k, got, k.name)) for k in (b, c)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    # from the moment the RPC starts (kamcmd's own time is counted in)
    t_ban = time.monotonic()
    ban(a, src)
    for t in threads:
        t.join(10)
    lags = []
    for k in (b, c):
        answered = got.get(k.name) or []
        first_dropped = (max(answered) + 1) if answered else 0
        sent_at = got[k.name + "_t0"] + first_dropped * PROBE_EVERY
        lags.append(max(0.0, sent_at - t_ban))
    return lags


def report(what: str, lags: list, extra: str):
    print(f"replication lag, {what}: ban at A -> dropped at B and C ({len(lags)} samples, "
          f"5 ms probes): p50 {pct(lags, 50) * 1000:.0f} ms, p99 {pct(lags, 99) * 1000:.0f} ms, "
          f"max {max(lags) * 1000:.0f} ms (mean {statistics.mean(lags) * 1000:.0f} ms){extra}")


def pct(v: list, p: float) -> float:
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main() -> int:
    sipg.require_module()
    with tempfile.TemporaryDirectory(prefix="sipguard-bench-cluster-") as tmp:
        f = Factory(tmp)
        try:
            # probes every 5 ms must not be rate limited themselves
            cl = Cluster(f, SG_RATE='"100000/s"').start()
            lags = []
            for i in range(BANS):
                lags += lag_once(cl, i)
            own = max(info(k)["lag_max_us"] for k in cl.nodes[1:]) / 1000
            report("sipguard", lags, f"; nodes' own max {own:.0f} ms")
            for k in cl.nodes:
                k.stop(timeout=10)
            anchor = Cluster(f, cfg=HTABLE_CFG).start(wait=False)
            time.sleep(3)
            hlags = []
            for i in range(BANS):
                hlags += lag_once(anchor, i, ban=htable_ban)
            report("htable ipban (anchor)", hlags, "")
            for k in anchor.nodes:
                k.stop(timeout=10)
            cl = Cluster(f, SG_RATE='"100000/s"').start()

            a = cl.nodes[0]
            before = info(a)
            cpu0 = [k.cpu_ticks() for k in cl.nodes]
            sp = sipg.Sprayer(a.addr, a.port)
            plain = sp.packet
            sp.packet = lambda s, q: plain(s, q).replace(
                b"Content-Length", b"User-Agent: friendly-scanner\r\nContent-Length")
            t0 = time.monotonic()
            try:
                r = sp.spray(sipg.source_addresses(20000, first_octet2=20), rate=8000,
                             max_seconds=20, wait=0.5)
            finally:
                sp.close()

            def same():
                ka = banned_keys(a)
                return info(a)["queue_depth"] == 0 and ka == banned_keys(cl.nodes[1]) \
                    == banned_keys(cl.nodes[2])
            took = wait_until(same, timeout=30.0, step=0.5)
            elapsed = time.monotonic() - t0
            after = info(a)
            cpu = [(k.cpu_ticks() - c0) / HZ for k, c0 in zip(cl.nodes, cpu0)]
            msgs = after["msgs_out"] - before["msgs_out"]
            changes = after["changes_out"] - before["changes_out"]
            print(f"flood of {r['sent']} sources at A in {r['send_time']:.1f}s: {changes} changes "
                  f"in {msgs} DMQ messages ({msgs / max(r['send_time'], 0.1):.1f} messages/s "
                  f"while flooding), dropped {after['dropped'] - before['dropped']}, "
                  f"same ban set on every node: {'yes' if took is not None else 'NO'} "
                  f"({len(banned_keys(a))} bans) after {elapsed:.1f}s")
            print("CPU during the flood (s, all processes): " + ", ".join(
                f"{k.name} {c:.2f}" for k, c in zip(cl.nodes, cpu)))
        finally:
            for k in f.started:
                k.stop(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

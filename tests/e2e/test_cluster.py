"""Cluster replication over DMQ: three real Kamailio nodes on 127.0.1.1-3
(kamailio-cfg/sipguard-cluster.cfg, harness in cluster.py) share their bans.

- a flood at A: its source is answered nowhere within 1 s; sipguard.unban
  at C: answered everywhere again;
- svwar against A, then against B from the same source: B drops it;
- a forged KDMQ (from the nodes' network but not a node, or from outside)
  changes nothing;
- a node killed and restarted (no state file) has the others' bans within
  seconds; a node stopped (SIGSTOP) during changes converges when resumed:
  no expired ban resurrected, no unban lost;
- a password guess spread over the three nodes (registrar + digest auth)
  reaches the cluster's user_maxretry: the user name is throttled on every
  node while its owner still registers;
- an account with a limit of 3 concurrent calls, calls placed one after
  another alternating nodes (the fraud bundle made cluster nodes, sipp
  callers and callee): exactly 3 established, the others refused;
- a spend burst split over the three nodes (one premium call on each)
  suspends the account on all of them though no node alone crosses
  spend_critical, and the event route runs once per node;
- an account suspended at A is suspended on B and C, and lifted everywhere
  by an unsuspend at C; a restarted node has the suspension again;
- a 20 000-source flood at A: DMQ messages stay bounded and every node ends
  with the same ban set;
- cluster=1 without dmq (or with dmq loaded after sipguard) does not start.
"""
from __future__ import annotations

import re
import subprocess
import time

import pytest

import sipg
import auth_tools as at
from cluster import (Cluster, answered, auth_cluster_cfg, banned_keys, fraud_cluster_cfg, info,
                     kdmq, throttled, users, wait_until)
from conftest import q
from test_fraud import DOMESTIC, PREMIUM, RULES


@pytest.fixture
def cluster(kam_factory):
    return Cluster(kam_factory).start()


def flood(src: str, node, n: int = 60):
    with sipg.UdpClient(src, node.addr, node.port) as c:
        return c.run(n, wait=0.3)


def test_a_flood_at_one_node_is_dropped_by_all_and_an_unban_anywhere_lifts_it(cluster):
    a, b, c = cluster.nodes
    src = "127.0.0.77"
    assert all(answered(src, k) for k in (b, c))
    r = flood(src, a)
    assert r.answered == 30, r
    t_ban = time.monotonic()
    # Every node drops it (early drop: no answer) within 1 s of the ban.
    for k in (b, c):
        took = wait_until(lambda: not answered(src, k, wait=0.1), timeout=3.0)
        assert took is not None, f"{k.name} still answers {src}"
    took = time.monotonic() - t_ban
    print(f"ban of {src} at A dropped on B and C after {took:.3f}s")
    assert any(e.startswith("127.0.0.77") for e in banned_keys(b))
    # The ban travels with its reason, remaining time and offence count.
    e = b.sg_list("1", "100")["bans"]["127.0.0.77"]
    assert e["reason"] == "flood" and e["offences"] == 1 and 290 <= e["remaining"] <= 300, e
    # Lifted at C: answered everywhere again.
    c.kamcmd("sipguard.unban", src)
    for k in (a, b, c):
        assert wait_until(lambda: answered(src, k, wait=0.2), timeout=3.0) is not None, k.name
    # Nothing was sent back and forth: each node sent its own change once.
    assert info(a)["changes_out"] == 1 and info(c)["changes_out"] == 1
    assert info(b)["changes_out"] == 0


def test_a_scanner_seen_by_one_node_is_dropped_by_the_next(cluster):
    a, b, _ = cluster.nodes
    # svwar sends from 127.0.0.1 whatever its options say
    src = "127.0.0.1"
    sipg.require_tools("/usr/bin/svwar")

    def svwar(node):
        return subprocess.run(
            ["/usr/bin/svwar", "-m", "REGISTER", "-e", "100-120",
             "--maximumtime", "3", f"udp://{node.addr}:{node.port}"],
            capture_output=True, text=True, timeout=90)

    svwar(a)
    a.wait_log(lambda: re.search(r"BAN src=127\.0\.0\.1 .*reason=scanner", a.log_text()),
               timeout=5, what="scanner ban at A")
    assert wait_until(lambda: "127.0.0.1" in banned_keys(b), timeout=2.0) is not None
    before = b.sg_stats()
    svwar(b)
    after = b.sg_stats()
    # B dropped every packet of the second scan: none reached its script.
    assert after.get("checked", 0) == before.get("checked", 0), (before, after)
    assert after["dropped"] > before["dropped"]
    assert not re.search(r"BAN src=127\.0\.0\.1 .*reason=scanner", b.log_text())


def test_forged_replication_changes_nothing(cluster):
    a, b, _ = cluster.nodes
    until = int(time.time() * 1000) + 600_000
    ts = int(time.time() * 1_000_000)
    forged_ban = f"sipguard-cluster/1 changes\nB 127.0.0.88 {until} 1 2 {ts}\n"
    # From the nodes' network but not a node (From claims node 1): sipguard
    # refuses it (403, which reply normalization sends as a challenge to a
    # source that is no peer); from outside that network the config drops it.
    assert kdmq("127.0.1.99", b, forged_ban) in (403, 407)
    assert kdmq("127.0.0.66", b, forged_ban) is None
    time.sleep(0.5)
    assert "127.0.0.88" not in banned_keys(b)
    assert answered("127.0.0.88", b)
    assert info(b)["refused"] == 1
    # Nor can a forged unban free an attacker banned by the cluster.
    a.kamcmd("sipguard.ban", "127.0.0.89", "600")
    assert wait_until(lambda: "127.0.0.89" in banned_keys(b), timeout=2.0) is not None
    forged_unban = f"sipguard-cluster/1 changes\nU 127.0.0.89 {ts + 10_000_000}\n"
    assert kdmq("127.0.1.99", b, forged_unban) in (403, 407)
    time.sleep(0.3)
    assert "127.0.0.89" in banned_keys(b)
    # The nodes themselves are never limited: a real node's replication
    # arrived meanwhile, and no node address is banned anywhere.
    for k in cluster.nodes:
        assert not any(key.startswith("127.0.1.") for key in banned_keys(k))


def test_a_restarted_node_catches_up_and_a_paused_one_converges(cluster):
    a, b, c = cluster.nodes
    for i in range(20):
        a.kamcmd("sipguard.ban", f"127.0.2.{i + 1}", "600")
    assert wait_until(lambda: len(banned_keys(b)) == 20, timeout=3.0) is not None
    # Killed and restarted, without a state file: it asks for a sync.
    t0 = time.monotonic()
    cluster.restart(1)
    took = wait_until(lambda: len(banned_keys(b)) == 20, timeout=15.0, step=0.1)
    assert took is not None, b.log_tail()
    print(f"restarted node had 20 bans {time.monotonic() - t0:.2f}s after its restart")
    b.wait_log(lambda: re.search(r"sync from \S+ completed", b.log_text_since_start()),
               timeout=5, what="sync completed line")
    cluster.wait_joined(nodes=[a, b, c])
    # C stopped while A bans, unbans and lets a short ban expire.
    a.kamcmd("sipguard.ban", "127.0.3.1", "2")
    assert wait_until(lambda: "127.0.3.1" in banned_keys(c), timeout=2.0) is not None
    cluster.pause(2)
    try:
        a.kamcmd("sipguard.ban", "127.0.3.2", "600")
        a.kamcmd("sipguard.unban", "127.0.2.1")
        a.kamcmd("sipguard.ban", "127.0.3.3", "2")
        time.sleep(3.0)
    finally:
        cluster.resume(2)
    def converged():
        keys = banned_keys(c)
        return "127.0.3.2" in keys and "127.0.2.1" not in keys
    assert wait_until(converged, timeout=10.0, step=0.2) is not None, sorted(banned_keys(c))
    keys = banned_keys(c)
    assert "127.0.3.1" not in keys and "127.0.3.3" not in keys, sorted(keys)
    assert banned_keys(a) == keys == banned_keys(b)


def test_a_guess_spread_over_the_nodes_throttles_the_user_everywhere(kam_factory):
    cl = Cluster(kam_factory, cfg=auth_cluster_cfg(kam_factory.tmp, user_maxretry=6)).start()
    a, b, c = cl.nodes
    user = "1001"
    owner = "127.0.0.60"
    with at.SipClient(owner, a.port, dst=a.addr) as ph:
        assert ph.register(user, at.USERS[user], domain=a.addr) == [401, 200]
    # Six wrong guesses, two per node, each from its own source: no node
    # alone reaches user_maxretry=6; the cluster does. 0.3 s apart: counts
    # travel within the replication lag (~0.1 s); two guesses within it on
    # two nodes may each miss the other.
    for i in range(6):
        time.sleep(0.3)
        k = cl.nodes[i % 3]
        with at.SipClient(f"127.0.3.{i + 1}", k.port, dst=k.addr) as g:
            assert g.register(user, "wrong-guess", domain=k.addr) == [401, 401]
        if i < 5:
            assert not any(throttled(n, user) for n in cl.nodes), (i, users(k))
    for k in cl.nodes:
        assert wait_until(lambda: throttled(k, user), timeout=3.0) is not None, \
            [(n.name, users(n).get(user), info(n)) for n in cl.nodes]
    # Counted per node: two failures each, and every node saw the others'.
    assert all(sipg._num(users(k)[user]["failures"]) == 2 for k in cl.nodes)
    # The owner still registers (at its node); a guess with the right
    # password from elsewhere is not even checked.
    with at.SipClient(owner, a.port, dst=a.addr) as ph:
        assert ph.register(user, at.USERS[user], domain=a.addr) == [401, 200]
    with at.SipClient("127.0.3.20", b.port, dst=b.addr) as g:
        assert g.register(user, at.USERS[user], domain=b.addr) == [401, 401]


def fraud_cluster(kam_factory, tmp_path, **defines):
    """Three nodes of the fraud bundle (test_fraud's rules), calls relayed
    to a callee port of the test's: (cluster, callee port)."""
    rules = tmp_path / "rules.txt"
    rules.write_text(RULES)
    callee_port = sipg.free_port()
    d = {"SG_CALLEE": q(f"sip:127.0.0.1:{callee_port}"), "SG_FRAUD_RULES": q(str(rules)),
         "SG_CPM_WARNING": "200", "SG_CPM_CRITICAL": "1000"}
    d.update(defines)
    return Cluster(kam_factory, cfg=fraud_cluster_cfg(tmp_path), **d).start(), callee_port


def test_concurrent_calls_count_across_the_nodes(kam_factory, tmp_path):
    cl, callee_port = fraud_cluster(kam_factory, tmp_path)
    callee = sipg.sipp_callee("fraud_callee.xml", tmp_path, callee_port, 3)
    callers = []
    seen = []
    try:
        # carol may have 3 calls up; five calls, one every second, on A, B,
        # C, A, B, each held 8 s: the 4th and 5th find 3 up in the cluster
        # (a second: far more than the replication lag, even on a busy host).
        for i in range(5):
            k = cl.nodes[i % 3]
            callers.append(sipg.Sipp("fraud_caller.xml", tmp_path, dst=f"{k.addr}:{k.port}",
                                     port=sipg.free_port(), count=1, duration_ms=8000,
                                     service=DOMESTIC, keys={"account": "carol"}))
            time.sleep(1.0)
            seen.append([sipg.fraud_calls(n, "carol") for n in cl.nodes])
        results = [c.wait() for c in callers]
        c = callee.wait()
    finally:
        callee.kill()
        for p in callers:
            p.kill()
    # One call up on each node, never more than 3 in all.
    assert max(sum(x) for x in seen) == 3, seen
    assert [r["successful"] for r in results] == [1, 1, 1, 0, 0], results
    assert c["successful"] == 3, c
    refusals = [re.findall(r"CALL REFUSED account=carol rc=(-\d) reason=call limit reached: 3 of 3",
                           k.log_text()) for k in cl.nodes]
    assert refusals == [["-1"], ["-1"], []], refusals


def test_a_spend_burst_split_over_the_nodes_suspends_everywhere(kam_factory, tmp_path):
    # spend_critical 4 an hour; premium runs at 30 a minute (0.5/s) a call:
    # one 6 s call alone reaches 3 (never 4), three at once on three nodes
    # reach 4 within 3 s.
    cl, callee_port = fraud_cluster(kam_factory, tmp_path, SG_SPEND_WARNING=q("3"),
                                    SG_SPEND_CRITICAL=q("4"))
    callee = sipg.sipp_callee("fraud_callee.xml", tmp_path, callee_port, 3)
    callers = []
    try:
        for k in cl.nodes:
            callers.append(sipg.Sipp("fraud_caller.xml", tmp_path, dst=f"{k.addr}:{k.port}",
                                     port=sipg.free_port(), count=1, duration_ms=6000,
                                     service=PREMIUM, keys={"account": "payer"}))
        for k in cl.nodes:
            took = wait_until(lambda: suspended_on(k, "payer"), timeout=15.0, step=0.2)
            assert took is not None, (k.name, sipg.fraud_accounts(k))
        for p in callers:
            p.wait()
    finally:
        callee.kill()
        for p in callers:
            p.kill()
    # One node crossed spend_critical with the cluster's spend (its own
    # alone stays under 3); the others applied its suspension.
    own = [sipg.suspensions(k, "payer") for k in cl.nodes]
    crossed = [s[0] for s in own if s and float(s[0]["threshold"]) == 4.0]
    assert len(crossed) == 1 and crossed[0]["reason"] == "spend", own
    assert float(crossed[0]["value"]) > 4.0, crossed
    # The suspension's event route ran once on every node (the example's
    # learnt baselines may page a first premium call as an anomaly too).
    for k in cl.nodes:
        k.wait_log(lambda: re.search(r"PAGE account=payer suspended reason=spend", k.log_text()),
                   timeout=5, what="event_route[sipguard:account-suspended]")
        assert len(re.findall(r"PAGE account=payer suspended", k.log_text())) == 1


def test_attempts_per_minute_count_across_the_nodes(kam_factory, tmp_path):
    # cpm_critical 3: five calls, one a second, on A, B, C, A, B. No node
    # sees more than 2 of its own; the cluster's 4th attempt (at A, a second
    # after C's: far more than the counters' lag) crosses 3 and is refused,
    # the account is suspended everywhere, and the 5th (at B) is refused.
    cl, callee_port = fraud_cluster(kam_factory, tmp_path, SG_CPM_WARNING="2",
                                    SG_CPM_CRITICAL="3")
    callee = sipg.sipp_callee("fraud_callee.xml", tmp_path, callee_port, 3)
    callers = []
    try:
        for i in range(5):
            k = cl.nodes[i % 3]
            callers.append(sipg.Sipp("fraud_caller.xml", tmp_path, dst=f"{k.addr}:{k.port}",
                                     port=sipg.free_port(), count=1, duration_ms=500,
                                     service=DOMESTIC, keys={"account": "dave"}))
            time.sleep(1.0)
        results = [c.wait() for c in callers]
    finally:
        callee.kill()
        for p in callers:
            p.kill()
    assert [r["successful"] for r in results] == [1, 1, 1, 0, 0], results
    for k in cl.nodes:
        took = wait_until(lambda: suspended_on(k, "dave"), timeout=5.0, step=0.2)
        assert took is not None, (k.name, sipg.fraud_accounts(k))
    own = [s for k in cl.nodes for s in sipg.suspensions(k, "dave")]
    assert own and all(s["reason"] == "cpm" for s in own), own


def suspended_on(k, account: str) -> bool:
    e = sipg.fraud_accounts(k).get(account)
    return bool(e) and e.get("state") == "suspended"


def test_a_suspension_anywhere_holds_everywhere(cluster):
    a, b, c = cluster.nodes
    a.kamcmd("sipguard.suspend", "acct-7")
    for k in (b, c):
        took = wait_until(lambda: suspended_on(k, "acct-7"), timeout=3.0)
        assert took is not None, (k.name, sipg.fraud_accounts(k))
    assert re.search(r"SUSPEND account=acct-7 reason=rpc ", b.log_text())
    # A restarted node has it again from its peers (no state file).
    cluster.restart(1)
    assert wait_until(lambda: suspended_on(b, "acct-7"), timeout=15.0, step=0.2) is not None
    cluster.wait_joined()
    c.kamcmd("sipguard.unsuspend", "acct-7")
    for k in (a, b, c):
        assert wait_until(lambda: not suspended_on(k, "acct-7"), timeout=3.0) is not None, k.name


def test_a_20000_source_flood_stays_bounded_and_every_node_ends_alike(cluster):
    a, b, c = cluster.nodes
    sources = sipg.source_addresses(20000, first_octet2=20)
    sp = sipg.Sprayer(a.addr, a.port)
    try:
        # A known scanner's User-Agent: every source is banned on its first packet.
        plain = sp.packet
        sp.packet = lambda src, seq: plain(src, seq).replace(
            b"Content-Length", b"User-Agent: friendly-scanner\r\nContent-Length")
        t0 = time.monotonic()
        r = sp.spray(sources, rate=8000, max_seconds=20, wait=0.5)
    finally:
        sp.close()
    assert r["sent"] >= 19000, r

    def same():
        ka = banned_keys(a)
        return ka and info(a)["queue_depth"] == 0 and ka == banned_keys(b) == banned_keys(c)
    took = wait_until(same, timeout=20.0, step=0.5)
    fa = info(a)
    assert took is not None, (len(banned_keys(a)), len(banned_keys(b)), len(banned_keys(c)), fa)
    elapsed = time.monotonic() - t0
    print(f"20000 sources: {fa['changes_out']} changes in {fa['msgs_out']} messages over "
          f"{elapsed:.1f}s, dropped {fa['dropped']}, bans per node {len(banned_keys(a))}")
    # Batched: far fewer messages than changes, and bounded per second
    # (10 drains a second, a few bodies each).
    assert fa["msgs_out"] * 20 <= fa["changes_out"], fa
    assert fa["msgs_out"] <= 40 * (elapsed + 1), fa


def _cfg_variant(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_cluster_needs_dmq_loaded_first(kam_factory, tmp_path):
    k = kam_factory(extra='modparam("sipguard", "cluster", 1)', start=False)
    failed, out = sipg.start_fails(k)
    assert failed and "parameter cluster: needs the dmq module" in out, out[-2000:]
    text = (sipg.REPO / "kamailio-cfg" / "sipguard-cluster.cfg").read_text()
    late = text.replace('loadmodule "dmq.so"\n', "").replace(
        'loadmodule "sipguard.so"\n', 'loadmodule "sipguard.so"\nloadmodule "dmq.so"\n')
    cl = Cluster(kam_factory, n=1)
    k = cl.nodes[0]
    k.cfg = _cfg_variant(tmp_path, "late.cfg", late)
    failed, out = sipg.start_fails(k)
    assert failed and "dmq module must be loaded before" in out, out[-2000:]
    # Clustering off: the RPC says so and the example config runs as before.
    k = kam_factory()
    r = k.kamcmd("sipguard.cluster", check=False)
    assert "clustering is off" in (r.stdout + r.stderr)

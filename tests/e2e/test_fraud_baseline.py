"""Each account's normal, learnt, end to end: a history of past calls the
test writes as a CSV seeds the baselines (by RPC, or at start), then sipp
calls through a real Kamailio running the example config
(kamailio-cfg/sipguard-fraud.cfg) show a usual call passing, a first call
to a new high-risk country flagged, and a spend spike far above the learnt
baseline suspending the account before the fixed critical level would."""
from __future__ import annotations

import re
import time
from pathlib import Path

import sipg
from conftest import q
from test_fraud import assert_no_calls_up, call, caller, denials, fraud_kam, refused

RULES = """\
prefix 1   domestic      0
prefix 44  international 0
prefix 449 premium       60
prefix 882 high-risk     0
account default domestic,international,premium,high-risk
"""

DOMESTIC = "12125550100"
PREMIUM = "+449098790000"
HIGH_RISK = "+88212345678"


def history(tmp_path: Path, account: str = "alice", bad: str = "") -> Path:
    """Two weeks of `account`'s calls: 0.10 every hour to a domestic number,
    and a premium call (at no cost) every day; `bad` lines at the end."""
    now = int(time.time())
    lines = ["account,start,duration,number,cost"]
    for h in range(1, 14 * 24 + 1):
        lines.append(f"{account},{now - h * 3600},60,+12125551234,0.1000")
    for day in range(1, 15):
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - day * 86400))
        lines.append(f"{account},{start},30,{PREMIUM},0")
    path = tmp_path / "cdr.csv"
    path.write_text("\n".join(lines) + "\n" + bad)
    return path


def anomalies(kam, account: str) -> list:
    return re.findall(rf"sipguard: ANOMALY account={account} kind=(\S+) (.*) action=(\S+)$",
                      kam.log_text(), re.M)


def test_a_seeded_baseline_passes_usual_calls_flags_a_new_country_and_stops_a_spike(
        kam_factory, tmp_path):
    """anomaly_action "refuse": after seeding alice's history by RPC (and
    sipguard.baseline shows it: 0.10 this hour, 16.80 a week, +1 and +44), a
    domestic call passes; a first call to +882 (high-risk, never called) is
    refused with -7, logged, counted and paged; a premium call (a
    destination alice calls daily) passes the dial check, and its spend (1
    a second) crosses 5 x her usual 0.10 for this hour, at least the floor
    of 1, within seconds: she is suspended for reason anomaly and the call
    is ended, long before spend_critical (100) would."""
    kam = fraud_kam(kam_factory, tmp_path, rules=RULES, SG_SPEND_WARNING=q("50"),
                    SG_SPEND_CRITICAL=q("100"), SG_ANOMALY_ACTION=q("refuse"),
                    SG_SPEND_ANOMALY_FACTOR="5", SG_SPEND_ANOMALY_FLOOR=q("1"))
    csv = history(tmp_path, bad="alice,yesterday,60,+12125551234,0.1\n")
    out = kam.kamcmd("sipguard.seed_baseline", str(csv)).stdout
    assert ("Ok. 350 calls of 1 accounts, 1 lines skipped, 0 calls older than baseline_days, "
            "0 accounts not stored") in out, out
    assert f"{csv}:352: bad start time" in kam.log_text(), kam.log_tail(20)
    out = kam.kamcmd("sipguard.baseline", "alice").stdout
    assert "usual_week: 16.8000" in out and "usual_hour: 0.1000" in out, out
    assert re.search(r"country: \+44\s+class: premium", out), out
    assert re.search(r"country: \+1\s+class: domestic", out), out
    missing = kam.kamcmd("sipguard.baseline", "nobody", check=False)
    assert "404" in missing.stdout + missing.stderr, missing

    ok = call(kam, tmp_path, "alice", DOMESTIC)
    assert ok["caller"]["successful"] == 1 and ok["callee"]["successful"] == 1, ok

    r = refused(kam, tmp_path, "alice", HIGH_RISK)
    assert r["successful"] == 1, r
    assert denials(kam, "alice")[-1][1:] == ("-7", "anomaly: first call to +882 high-risk")
    assert anomalies(kam, "alice") == [("destination", "country=882 class=high-risk", "refused")]
    kam.wait_log(lambda: "PAGE account=alice anomaly=destination detail=+882 high-risk"
                 in kam.log_text(), timeout=5, what="event_route[sipguard:fraud-anomaly]")
    assert kam.stats()["fraud_anomalies_destination"] == 1

    callee = sipg.sipp_callee("fraud_callee.xml", tmp_path, kam.callee_port, 1)
    try:
        t0 = time.monotonic()
        c = caller(kam, tmp_path, "fraud_caller_waits.xml", "alice", PREMIUM)
        s = kam.wait_log(lambda: sipg.suspensions(kam, "alice"), timeout=15,
                         what="SUSPEND account=alice")
        took = time.monotonic() - t0
        kam.wait_log(lambda: "sipguard: ENDED account=alice reason=anomaly calls=1"
                     in kam.log_text(), timeout=5, what="ENDED account=alice")
        r, cr = c.wait(), callee.wait()
    finally:
        callee.kill()
    assert (s[0]["reason"], s[0]["threshold"]) == ("anomaly", "1.0000"), s
    assert 1.0 < float(s[0]["value"]) < 100.0, s
    print(f"spend spike suspended {took:.1f} s after the call started, at {s[0]['value']}")
    assert r["successful"] == 1 and cr["successful"] == 1, (r, cr)
    spend = [a for a in anomalies(kam, "alice") if a[0] == "spend"]
    assert len(spend) == 1 and spend[0][2] == "suspended", spend
    assert "usual=0.1000" in spend[0][1], spend
    kam.wait_log(lambda: re.search(r"PAGE account=alice anomaly=spend detail=\S+ over 1\.0000",
                                   kam.log_text()), timeout=5, what="spend anomaly event")
    assert "PAGE account=alice suspended reason=anomaly" in kam.log_text()
    acct = sipg.fraud_accounts(kam)["alice"]
    assert (acct["state"], acct["reason"]) == ("suspended", "anomaly"), acct
    assert kam.stats()["fraud_anomalies_spend"] == 1
    assert_no_calls_up(kam, "alice")


def test_seeded_at_start_warned_and_kept_across_a_restart(kam_factory, tmp_path):
    """baseline_seed_file at start (a bad line named file:line and
    skipped); anomaly_action "warn" lets the first +882 call through with an
    ANOMALY line, and learns it: the next one is no anomaly. The baselines
    are saved with the suspensions (state file v2) and restored: after a
    restart (the seed file read again adds no +882), +882 is still known."""
    csv = history(tmp_path, bad="alice,2026-11-30T10:00Z,1,+1212,lots\n")
    kam = fraud_kam(kam_factory, tmp_path, rules=RULES, SG_SPEND_WARNING=q("50"),
                    SG_SPEND_CRITICAL=q("100"), SG_BASELINE_SEED=q(str(csv)))
    log = kam.log_text()
    assert f"baselines seeded from {csv}: 350 calls of 1 accounts, 1 lines skipped" in log, \
        kam.log_tail(40)
    assert f"{csv}:352: bad cost: expected an amount like 0.25; line skipped" in log

    for _ in range(2):
        ok = call(kam, tmp_path, "alice", HIGH_RISK)
        assert ok["caller"]["successful"] == 1 and ok["callee"]["successful"] == 1, ok
    assert anomalies(kam, "alice") == [("destination", "country=882 class=high-risk", "warned")]
    kam.wait_log(lambda: "PAGE account=alice anomaly=destination" in kam.log_text(), timeout=5,
                 what="event route of a warned anomaly")

    assert kam.stop() == 0
    state = (kam.rundir / "fraud-accounts.state").read_text()
    assert state.startswith("# sipguard accounts v2\n"), state[:200]
    assert re.search(r"^baseline alice \d+ \d+ \d+ \S*882:high-risk", state, re.M), state[:2000]

    kam.start()
    since = kam.log_text_since_start
    for number in (HIGH_RISK, PREMIUM):
        ok = call(kam, tmp_path, "alice", number, duration_ms=100)
        assert ok["caller"]["successful"] == 1, (number, ok)
    assert "ANOMALY account=alice" not in since(), kam.log_tail(30)
    # a new account has no baseline: its first +882 call is one
    ok = call(kam, tmp_path, "zed", HIGH_RISK)
    assert ok["caller"]["successful"] == 1, ok
    assert "ANOMALY account=zed kind=destination country=882 class=high-risk action=warned" \
        in since()


def test_a_seed_file_that_cannot_be_read_refuses_to_start(kam_factory, tmp_path):
    kam = fraud_kam(kam_factory, tmp_path, start=False,
                    SG_BASELINE_SEED=q(str(tmp_path / "missing.csv")))
    failed, out = sipg.start_fails(kam)
    assert failed, out[-3000:]
    assert "parameter baseline_seed_file: " in out and "missing.csv" in out, out[-3000:]


def test_bad_baseline_modparams_refused(kam_factory):
    for name, value in [("anomaly_action", '"maybe"'), ("baseline_days", "400"),
                        ("anomaly_classes", '"premium,exotic"'),
                        ("spend_anomaly_floor", '"1.23456"')]:
        kam = kam_factory(name="badbaseline", start=False,
                          extra=f'modparam("sipguard", "{name}", {value})')
        r = kam.check()
        out = (r.stdout + r.stderr).replace(str(kam.cfg), "<cfg>")
        assert r.returncode != 0, f"kamailio -c accepted {name}={value}:\n{out[-3000:]}"
        assert re.search(rf"ERROR: sipguard .*invalid modparam: parameter {name}: ", out), \
            out[-3000:]

"""Toll fraud in a real OpenSIPS 3.6 (tm + dialog) running the example
opensips-cfg/sipguard-fraud.cfg with a rules file of the test's, sipp
callers and callees (the scenarios of the Kamailio suite): a class the
account lacks and a premium number refused, the concurrent-call limit under
parallel calls, counts back to zero however calls end, a spend burst that
suspends the account, ends its calls and raises E_SIPGUARD_ACCOUNT_SUSPENDED,
MI accounts/suspend/unsuspend/reload_rules, suspensions across a restart.
"""
import re

import pytest

import sipg
from osips import OSIPS_CFG_DIR, MiError, opensips_built, osips_factory  # noqa: F401
from test_fraud import DOMESTIC, INTERNATIONAL, PREMIUM, RULES

FRAUD_CFG = OSIPS_CFG_DIR / "sipguard-fraud.cfg"
CALLEE_MARK = "127.0.0.1:5080"


def fraud_osips(factory, rules: str = RULES, start: bool = True, modparams: str = "",
                **params):
    """The example on a free port, calls sent to a callee port of its own;
    `modparams`: lines added after the modules are loaded."""
    factory.n += 1
    name = f"fraud{factory.n}"
    rules_path = factory.tmp / f"{name}-rules.txt"
    rules_path.write_text(rules)
    callee_port = sipg.free_port()
    cfg = factory.tmp / f"{name}-src.cfg"
    text = FRAUD_CFG.read_text().replace(CALLEE_MARK, f"127.0.0.1:{callee_port}")
    anchor = 'loadmodule "sipguard.so"\n'
    cfg.write_text(text.replace(anchor, anchor + modparams, 1))
    p = {"fraud_rules": str(rules_path), "cpm_warning": 200, "cpm_critical": 1000,
         "spend_warning": "0.5", "spend_critical": "1"}
    p.update(params)
    o = factory(name=name, cfg=cfg, start=start, **p)
    o.callee_port = callee_port
    o.rules = rules_path
    return o


def accounts(o) -> dict:
    return {a["account"]: a for a in o.mi("sipguard_accounts")["accounts"]}


def calls_up(o, account) -> int:
    return int(accounts(o).get(account, {}).get("calls", 0))


def caller(o, tmp_path, scenario, account, number, count=1, duration_ms=0):
    return sipg.Sipp(scenario, tmp_path, dst=f"127.0.0.1:{o.port}", port=sipg.free_port(),
                     count=count, duration_ms=duration_ms, service=number,
                     keys={"account": account})


def call(o, tmp_path, account, number, duration_ms=300):
    callee = sipg.sipp_callee("fraud_callee.xml", tmp_path, o.callee_port, 1)
    try:
        r = caller(o, tmp_path, "fraud_caller.xml", account, number,
                   duration_ms=duration_ms).wait()
        c = callee.wait()
    finally:
        callee.kill()
    return {"caller": r, "callee": c}


def refused(o, tmp_path, account, number):
    return caller(o, tmp_path, "fraud_caller_refused.xml", account, number).wait()


def denials(o, account):
    return re.findall(rf"DIAL DENIED account={account} number=(\S+) rc=(-\d) reason=(.*)$",
                      o.log_text(), re.M)


def parallel_calls(o, tmp_path, callee_scn, caller_scn, account, count, callee_ms=0,
                   caller_ms=0, callee_count=None, number=DOMESTIC):
    callee = sipg.sipp_callee(callee_scn, tmp_path, o.callee_port,
                              count if callee_count is None else callee_count,
                              duration_ms=callee_ms)
    try:
        callers = caller(o, tmp_path, caller_scn, account, number, count=count,
                         duration_ms=caller_ms)
        seen = []
        deadline = sipg.time.monotonic() + 30
        while sipg.time.monotonic() < deadline and (
                callers.proc.poll() is None or callee.proc.poll() is None):
            seen.append(calls_up(o, account))
            sipg.time.sleep(0.1)
        return seen, callers.wait(), callee.wait()
    finally:
        callee.kill()


def assert_no_calls_up(o, account):
    assert calls_up(o, account) == 0, accounts(o)
    assert o.mi("sipguard_accounts")["active_calls"] == 0


def test_a_class_the_account_lacks_and_premium_are_refused(osips_factory, tmp_path):
    o = fraud_osips(osips_factory)
    for number in INTERNATIONAL + [PREMIUM]:
        r = refused(o, tmp_path, "dora", number)
        assert r["successful"] == 1 and r["failed"] == 0, (number, r)
    got = denials(o, "dora")
    assert [rc for _, rc, _ in got] == ["-1"] * 4, got
    assert got[0][2] == "class international not permitted", got
    assert got[3][2] == "class premium not permitted", got
    ok = call(o, tmp_path, "dora", DOMESTIC)
    assert ok["caller"]["successful"] == 1 and ok["callee"]["successful"] == 1, ok
    assert o.stats()["fraud_denied"] == 4
    assert_no_calls_up(o, "dora")


def test_concurrency_limit_holds_under_parallel_calls(osips_factory, tmp_path):
    """carol may have 3 calls up: of 8 parallel calls 3 are connected, 5
    refused with 486, and the count is 0 once the callers hang up."""
    o = fraud_osips(osips_factory)
    seen, r, c = parallel_calls(o, tmp_path, "fraud_callee.xml", "fraud_caller.xml", "carol",
                                8, caller_ms=3000, callee_count=3)
    assert max(seen) == 3, seen
    assert (r["successful"], r["failed"]) == (3, 5), r
    assert c["successful"] == 3, c
    refusals = re.findall(r"CALL REFUSED account=carol rc=(-\d)", o.log_text())
    assert refusals == ["-1"] * 5, refusals
    assert_no_calls_up(o, "carol")


@pytest.mark.parametrize("callee_scn,callee_ms,caller_scn,caller_ms,account", [
    ("fraud_callee_bye.xml", 2000, "fraud_caller_waits.xml", 0, "erin"),
    ("fraud_callee_ring.xml", 0, "fraud_caller_cancel.xml", 2000, "frank"),
], ids=["bye-from-callee", "cancel"])
def test_count_returns_to_zero(osips_factory, tmp_path, callee_scn, callee_ms, caller_scn,
                               caller_ms, account):
    o = fraud_osips(osips_factory)
    seen, r, c = parallel_calls(o, tmp_path, callee_scn, caller_scn, account, 3,
                                callee_ms=callee_ms, caller_ms=caller_ms)
    assert max(seen) == 3, seen
    assert r["successful"] == 3 and c["successful"] == 3, (r, c)
    assert_no_calls_up(o, account)


def test_count_returns_to_zero_when_the_callee_refuses(osips_factory, tmp_path):
    o = fraud_osips(osips_factory)
    seen, r, c = parallel_calls(o, tmp_path, "fraud_callee_busy.xml", "fraud_caller.xml",
                                "iris", 2)
    assert max(seen) >= 1, seen
    assert (r["failed"], c["successful"]) == (2, 2), (r, c)
    assert_no_calls_up(o, "iris")


def test_count_returns_to_zero_when_nobody_answers(osips_factory, tmp_path):
    """tm gives up after fr_inv_timeout (2 s), cancels the callee and
    answers 408: counted while ringing, not after."""
    o = fraud_osips(osips_factory, modparams='modparam("tm", "fr_inv_timeout", 2)\n')
    seen, r, c = parallel_calls(o, tmp_path, "fraud_callee_ring.xml", "fraud_caller.xml",
                                "lena", 2)
    assert max(seen) >= 1, seen
    assert (r["failed"], c["successful"]) == (2, 2), (r, c)
    assert_no_calls_up(o, "lena")


def test_count_drops_when_the_dialog_expires(osips_factory, tmp_path):
    """Calls outliving the dialog timeout (2 s) stop counting when their
    dialogs expire, and the proxy ends them (create_dialog("B")): both
    sides get a BYE, the endpoints hang up on nothing else."""
    o = fraud_osips(osips_factory, modparams='modparam("dialog", "default_timeout", 2)\n')
    callee = sipg.sipp_callee("fraud_callee.xml", tmp_path, o.callee_port, 2)
    try:
        callers = caller(o, tmp_path, "fraud_caller_waits.xml", "jack", DOMESTIC, count=2)
        o.wait_log(lambda: calls_up(o, "jack") == 2, timeout=10, what="2 calls up")
        o.wait_log(lambda: calls_up(o, "jack") == 0, timeout=10,
                   what="the count to drop on dialog expiry")
        r = callers.wait()
        c = callee.wait()
    finally:
        callee.kill()
    assert r["successful"] == 2 and c["successful"] == 2, (r, c, o.log_tail(40))
    assert_no_calls_up(o, "jack")


def test_premium_burst_suspends_ends_the_calls_and_raises_the_event(osips_factory, tmp_path):
    o = fraud_osips(osips_factory)
    callee = sipg.sipp_callee("fraud_callee.xml", tmp_path, o.callee_port, 3)
    try:
        callers = caller(o, tmp_path, "fraud_caller_waits.xml", "payer", PREMIUM, count=3)
        s = o.wait_log(lambda: sipg.suspensions(o, "payer"), timeout=15,
                       what="SUSPEND account=payer")
        ended = o.wait_log(
            lambda: re.findall(r"sipguard: ENDED account=payer reason=spend calls=(\d+)",
                               o.log_text()), timeout=5, what="ENDED account=payer")
        r = callers.wait()
        c = callee.wait()
    finally:
        callee.kill()
    assert ended == ["3"], ended
    assert len(s) == 1 and s[0]["reason"] == "spend", s
    o.wait_log(lambda: re.search(r"PAGE account=payer suspended reason=spend", o.log_text()),
               timeout=5, what="event_route[E_SIPGUARD_ACCOUNT_SUSPENDED]")
    assert r["successful"] == 3 and c["successful"] == 3, (r, c)
    assert_no_calls_up(o, "payer")
    acct = accounts(o)["payer"]
    assert (acct["state"], acct["reason"]) == ("suspended", "spend"), acct
    assert o.stats()["fraud_suspended"] == 1

    r = refused(o, tmp_path, "payer", DOMESTIC)
    assert r["successful"] == 1, r
    assert denials(o, "payer")[-1][1:] == ("-2", "account suspended")
    assert o.mi("sipguard_unsuspend", account="payer") == "OK"
    ok = call(o, tmp_path, "payer", DOMESTIC)
    assert ok["caller"]["successful"] == 1 and ok["callee"]["successful"] == 1, ok
    assert accounts(o)["payer"]["state"] == "active"
    with pytest.raises(MiError) as e:
        o.mi("sipguard_unsuspend", account="payer")
    assert e.value.code == 404


def test_mi_suspend_reload_and_a_suspension_across_a_restart(osips_factory, tmp_path):
    o = fraud_osips(osips_factory, fraud_state_file=str(tmp_path / "fraud.state"))
    assert o.mi("sipguard_suspend", account="gina", note="fraud desk") == "OK"
    o.wait_log(lambda: sipg.suspensions(o, "gina"), timeout=5, what="SUSPEND gina")
    o.wait_log(lambda: re.search(r"PAGE account=gina suspended reason=rpc", o.log_text()),
               timeout=5, what="event for an MI suspension")
    assert refused(o, tmp_path, "gina", DOMESTIC)["successful"] == 1
    assert o.mi("sipguard_reload_rules") == "3 prefixes, 3 account rules"
    o.rules.write_text(RULES + "prefix 9x bogus\n")
    with pytest.raises(MiError) as e:
        o.mi("sipguard_reload_rules")
    assert e.value.code == 500 and "rules.txt:7" in e.value.message, e.value
    o.rules.write_text(RULES)
    assert o.stop() == 0
    o.start()
    assert accounts(o)["gina"]["state"] == "suspended"
    assert refused(o, tmp_path, "gina", DOMESTIC)["successful"] == 1

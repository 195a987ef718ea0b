"""Extension enumeration (issue 3): svwar against the sipguard-auth config.

- without reply normalization svwar finds the real extensions (the test
  can fail: the leak is there);
- with it, svwar finds none, for REGISTER, OPTIONS and INVITE;
- with the default scanner list svwar (User-Agent friendly-scanner) is
  banned at its first request, reason scanner; other scanner fingerprints
  too; a normal phone is not;
- a slow scan (under the rate limit, no credentials, normal User-Agent) is
  banned by the enumeration rule; a source repeating one user name is not.

Throughout, user 2000 re-registers from 127.0.0.77 with its password and
is served. svwar always sends from 127.0.0.1 (see auth_tools).
"""
import threading
import time

import pytest

import auth_tools as at

EXISTING = {"1000", "1001", "1002", "1003", "1004", "1005"}
RANGE = "995-1010"          # contains the 6 real extensions and 10 missing ones
METHODS = ["REGISTER", "OPTIONS", "INVITE"]


def _kam(kam_factory, name, **d):
    return at.start_auth_kam(kam_factory, name, **d)


# svwar's INVITE scan ACKs every negative reply, retransmissions included:
# ~3 requests per extension, which crosses the default 30/2s. Tests of the
# reply leak itself raise the rate so that a flood ban cannot end the scan
# early (which would let the "finds nothing" test pass for a wrong reason).
HIGH_RATE = '"300/2s"'


@pytest.mark.parametrize("method", METHODS)
def test_svwar_finds_extensions_without_normalization(kam_factory, method):
    """Control: normalize_replies=0 and no scanner list: the 404/480 leak
    lets svwar list exactly the real extensions of the range."""
    kam = _kam(kam_factory, "leak", normalize=0, scanner_ua='""', enum_threshold=39,
               rate=HIGH_RATE)
    with at.LegitPhone(kam.port) as phone:
        r = at.svwar(kam.port, method, RANGE)
    assert r["found"] == EXISTING, r["out"][-3000:]
    phone.check()
    assert kam.bans() == [], kam.bans()


@pytest.mark.parametrize("method", METHODS)
def test_svwar_finds_nothing_with_normalization(kam_factory, method):
    """normalize_replies on (default), scanner list off so that svwar is
    not banned, enumeration threshold at its maximum (39) out of reach.
    svwar first probes a random (missing) user; it gets the same challenge
    an existing user gets and gives up ("authentication request for an
    unknown extension"); with --force it takes that challenge as the
    "missing" answer, gets it again for the first extension and stops, as
    it cannot tell anything apart. Then the same sweep done by hand over
    the whole range: every reply has the same status line, the same header
    names in the same order, the same challenge form, and (for user names
    of the same length) the same length."""
    kam = _kam(kam_factory, "norm", scanner_ua='""', enum_threshold=39, rate=HIGH_RATE)
    with at.LegitPhone(kam.port) as phone:
        plain = at.svwar(kam.port, method, RANGE)
        forced = at.svwar(kam.port, method, RANGE, force=True)
        with at.SipClient("127.0.6.1", kam.port) as c:
            shapes = {}
            for n in range(995, 1011):
                u = str(n)
                to = f"sip:{u}@127.0.0.1"
                # svwar's request: From = To = the extension
                r = c.transact(method, "sip:127.0.0.1" if method == "REGISTER" else to, to, to,
                               at.Dialog(),
                               expires=60 if method == "REGISTER" else None)
                assert r is not None, u
                shapes[u] = at.shape(r)
    assert plain["found"] == set(), plain["out"][-3000:]
    assert plain["refused"], plain["out"][-3000:]
    assert forced["found"] == set(), forced["out"][-3000:]
    assert not forced["refused"], forced["out"][-3000:]
    code = 401 if method == "REGISTER" else 407
    ref = shapes["1000"]
    assert ref["status"][0] == code, ref
    for u, sh in shapes.items():
        assert sh["status"] == ref["status"], (u, sh, ref)
        assert sh["headers"] == ref["headers"], (u, sh, ref)
        assert sh["challenge"] == ref["challenge"], (u, sh, ref)
        if len(u) == 4:
            assert sh["length"] == ref["length"], (u, sh, ref)
    phone.check()
    assert kam.bans() == [], kam.bans()
    st = kam.sg_stats()
    # at least the 10 missing users of the sweep were rewritten
    assert st["normalized"] >= 10, st
    assert kam.stats()["normalized"] == st["normalized"]


@pytest.mark.parametrize("method", METHODS)
def test_svwar_banned_as_scanner(kam_factory, method):
    """Default scanner list: svwar's first request (User-Agent
    friendly-scanner) bans 127.0.0.1 at once, reason scanner; it finds
    nothing, gets no answer at all, and the phone is served."""
    kam = _kam(kam_factory, "scan")
    with at.LegitPhone(kam.port) as phone:
        r = at.svwar(kam.port, method, RANGE, force=True)
    assert r["found"] == set(), r["out"][-3000:]
    bans = kam.wait_log(lambda: kam.bans(src=at.TOOL_SRC), timeout=5, what="scanner BAN")
    assert len(bans) == 1 and bans[0]["reason"] == "scanner", bans
    # banned at its first request: one -3 verdict, everything after -2
    drops = at.sgtest(kam, "DROP", src=at.TOOL_SRC)
    assert drops and drops[0]["verdict"] == "-3", drops
    assert [d["verdict"] for d in drops[1:]] == ["-2"] * (len(drops) - 1), drops
    assert not at.sgtest(kam, "AUTHFAIL") and not at.sgtest(kam, "AUTHOK", src=at.TOOL_SRC)
    entry = kam.sg_list()["bans"].get(at.TOOL_SRC)
    assert entry is not None and entry["reason"] == "scanner", kam.last_list_raw
    assert kam.sg_stats()["scanners"] == 1
    assert kam.stats()["scanners"] == 1
    phone.check()
    assert [b["src"] for b in kam.bans()] == [at.TOOL_SRC]


SCANNER_UAS = ["friendly-scanner", "Friendly-Scanner", "sipcli/v1.8", "VaxSIPUserAgent/3.1",
               "pplsip", "sundayddr", "iWar", "sip-scan", "smap 0.6.0", "sipvicious"]


def test_scanner_fingerprints(kam_factory):
    """Each User-Agent of the default list (case-insensitive, as a
    substring) bans its source with the first request; ordinary phones'
    User-Agents do not."""
    kam = _kam(kam_factory, "fp")
    srcs = {}
    for i, ua in enumerate(SCANNER_UAS):
        src = f"127.0.3.{i + 1}"
        srcs[src] = ua
        r = at.request(src, kam.port, "OPTIONS", "1001", ua=ua, timeout=1.0)
        assert r is None, (ua, r and r.code)
    for i, ua in enumerate(["Linphone/5.2.0 (belle-sip/5.2.0)", "Zoiper rv2.10", "Yealink SIP-T46S",
                            "sipguard-e2e-phone"]):
        r = at.request(f"127.0.4.{i + 1}", kam.port, "OPTIONS", "1001", ua=ua)
        assert r is not None and r.code == 407, (ua, r and r.code)
    kam.wait_log(lambda: len(kam.bans()) >= len(SCANNER_UAS), timeout=5, what="scanner BANs")
    bans = {b["src"]: b for b in kam.bans()}
    assert set(bans) == set(srcs), (bans, srcs)
    assert {b["reason"] for b in bans.values()} == {"scanner"}, bans
    assert kam.sg_stats()["scanners"] == len(SCANNER_UAS)


def test_scanner_from_to(kam_factory):
    """scanner_from_to: a From or To containing a listed string bans."""
    kam = _kam(kam_factory, "fromto", scanner_from_to='"evilscan"')
    with at.SipClient("127.0.3.100", kam.port) as c:
        r = c.transact("OPTIONS", "sip:1001@127.0.0.1", "sip:evilscan@10.0.0.1",
                       "sip:1001@127.0.0.1", timeout=1.0)
    assert r is None
    with at.SipClient("127.0.3.101", kam.port) as c:
        r = c.transact("OPTIONS", "sip:1001@127.0.0.1", "sip:100@10.0.0.1",
                       "sip:EvilScan-1001@127.0.0.1", timeout=1.0)
    assert r is None
    r = at.request("127.0.3.102", kam.port, "OPTIONS", "1001")
    assert r is not None and r.code == 407
    kam.wait_log(lambda: len(kam.bans()) >= 2, timeout=5, what="2 scanner BANs")
    assert {(b["src"], b["reason"]) for b in kam.bans()} == {
        ("127.0.3.100", "scanner"), ("127.0.3.101", "scanner")}


def _slow(port, src, users, interval, out, method="OPTIONS"):
    """One request without credentials to each user name in turn (OPTIONS:
    R-URI user; REGISTER: To user), one every `interval` s; out gets the
    reply codes (None = no answer)."""
    with at.SipClient(src, port) as c:
        t0 = time.monotonic()
        for i, u in enumerate(users):
            time.sleep(max(0.0, t0 + i * interval - time.monotonic()))
            aor = f"sip:{u}@127.0.0.1"
            if method == "REGISTER":
                r = c.transact("REGISTER", "sip:127.0.0.1", aor, aor, expires=60, timeout=1.0)
            else:
                r = c.transact(method, aor, "sip:scan@127.0.0.1", aor, timeout=1.0)
            out.append(r.code if r else None)


@pytest.mark.parametrize("method", ["OPTIONS", "REGISTER"])
def test_slow_scan_banned_by_enumeration(kam_factory, method):
    """enum_threshold 5 in 60 s: a source asking for 12 distinct user names
    at 2/s (far under the rate, normal User-Agent, no credentials) is
    answered for the first 5 names and banned soon after, reason
    enumeration. The module keeps an exact set of 16-bit name fingerprints
    per source, so the ban comes at the 6th name - or, when two of the names
    share a fingerprint (about 1 run in 1000), at the 7th; never earlier.
    A source asking for ONE name at the same pace is never banned."""
    kam = _kam(kam_factory, "enum", enum_threshold=5, enum_window=60)
    scan_src, repeat_src = "127.0.5.1", "127.0.5.2"
    scan_codes, repeat_codes = [], []
    names = [str(3000 + i) for i in range(3)] + ["1000", "1001", "1002"] + \
        [str(3100 + i) for i in range(6)]
    code = 401 if method == "REGISTER" else 407
    with at.LegitPhone(kam.port) as phone:
        ts = [threading.Thread(target=_slow, args=(kam.port, scan_src, names, 0.5, scan_codes,
                                                   method)),
              threading.Thread(target=_slow, args=(kam.port, repeat_src, ["1001"] * 12, 0.5,
                                                   repeat_codes, method))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
    assert None in scan_codes, scan_codes
    k = scan_codes.index(None)
    assert 5 <= k <= 6, scan_codes
    assert scan_codes[:k] == [code] * k, scan_codes
    assert scan_codes[k:] == [None] * (len(names) - k), scan_codes
    assert repeat_codes == [code] * 12, repeat_codes
    bans = kam.wait_log(lambda: kam.bans(src=scan_src), timeout=5, what="enumeration BAN")
    assert len(bans) == 1 and bans[0]["reason"] == "enumeration", bans
    drops = at.sgtest(kam, "DROP", src=scan_src)
    field = "tu" if method == "REGISTER" else "ru"
    assert drops[0]["verdict"] == "-4" and drops[0][field] == names[k], drops
    assert kam.bans(src=repeat_src) == []
    assert kam.sg_list()["bans"][scan_src]["reason"] == "enumeration", kam.last_list_raw
    assert kam.sg_stats()["enumerations"] == 1
    assert kam.stats()["enumerations"] == 1
    phone.check()
    assert [b["src"] for b in kam.bans()] == [scan_src]


def test_enumeration_exempts_authenticated_source(kam_factory):
    """A source that authenticated (a phone calling many numbers) is not
    treated as a scanner: after a successful REGISTER of 1001 from
    127.0.5.10, OPTIONS to 8 distinct names from there are all answered."""
    kam = _kam(kam_factory, "enumok", enum_threshold=5, enum_window=60)
    src = "127.0.5.10"
    assert at.register(src, kam.port, "1001", at.USERS["1001"]) == [401, 200]
    codes = []
    _slow(kam.port, src, [str(3000 + i) for i in range(8)], 0.2, codes)
    assert None not in codes, codes
    assert kam.bans() == []

"""Encrypted signalling and media in a real OpenSIPS 3.6
(tests/e2e/cfg/opensips-tls-test.cfg: tls_mgm/tls_openssl/proto_tls with
the certificate of scripts/gen-cert.sh): sipguard_require_tls() over TLS,
UDP and TCP and with tls_contact, sipguard_sdp_check() on the SDP cases of
the Kamailio suite over UDP and TLS, policies as parameters,
$sipguard(sdp_reason), and bad policies refused at start.
"""
import re

import pytest

import auth_tools as at
import sipg
from osips import opensips_built, osips_module_factory, osips_factory  # noqa: F401
from test_tls_sdp import CASES, CONTACTS, _body

TLS_CFG = sipg.CFG_DIR / "opensips-tls-test.cfg"
CERT_MARK = "/tmp/sipguard-opensips-tls"


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    return sipg.gen_cert(tmp_path_factory.mktemp("tls") / "certs")


def _start(factory, tls_dir, name, start=True, **params):
    # the certificate directory replaces the config's, like the port
    cfg = factory.tmp / f"{name}-src.cfg"
    cfg.write_text(TLS_CFG.read_text().replace(CERT_MARK, str(tls_dir)))
    return factory(name=name, cfg=cfg, tls_port=sipg.free_port(), start=start, **params)


@pytest.fixture(scope="module")
def osips(osips_module_factory, tls_dir):
    return _start(osips_module_factory, tls_dir, "tls")


@pytest.fixture(scope="module")
def osips_contact(osips_module_factory, tls_dir):
    return _start(osips_module_factory, tls_dir, "tlscontact", tls_contact=1)


def transact(o, transport, method, **kw):
    r = sipg.sip_transact(transport, method, o.port, o.tls_port, **kw)
    assert r is not None, f"no reply to {method} over {transport}\n{o.log_tail(20)}"
    return r


@pytest.mark.parametrize("transport,src,code,verdict", [
    ("tls", "127.0.0.1", 200, 1),
    ("tls", "::1", 200, 1),
    ("udp", "127.0.0.1", 403, -1),
    ("udp", "::1", 403, -1),
    ("tcp", "127.0.0.1", 403, -1),
])
def test_register_requires_tls(osips, transport, src, code, verdict):
    r = transact(osips, transport, "REGISTER", src=src, dst=src)
    assert (r.code, r.int_header("X-Sipguard-Tls")) == (code, verdict), r.raw[:1500]
    assert r.header("X-Proto") == transport, r.raw[:1500]


def test_tls12_only(osips, tls_dir):
    ctx = sipg.tls_context(tls_dir / "sipguard.crt")
    with sipg.StreamSipClient("127.0.0.1", "127.0.0.1", osips.tls_port, tls=True,
                              context=ctx) as c:
        assert c.version in ("TLSv1.2", "TLSv1.3"), c.version
        r = c.request("OPTIONS")
    assert r is not None and r.code == 404


@pytest.mark.parametrize("contact,verdict", CONTACTS, ids=[c for c, _ in CONTACTS])
def test_tls_contact(osips_contact, contact, verdict):
    r = transact(osips_contact, "tls", "REGISTER", contact=contact)
    assert r.int_header("X-Sipguard-Tls") == verdict, r.raw[:1500]
    assert r.code == (200 if verdict == 1 else 403)


@pytest.mark.parametrize("transport", ["udp", "tls"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sdp_check(osips, transport, case):
    name, _, headers, code, verdicts = case
    ctype, body = _body(case)
    r = transact(osips, transport, "INVITE", body=body, content_type=ctype, headers=headers)
    codes = code if isinstance(code, tuple) else (code,)
    v = r.int_header("X-Sipguard-Sdp")
    assert r.code in codes and v in verdicts, (
        f"{name} over {transport}: got {r.code} verdict {v} "
        f"reason {r.header('X-Sipguard-Reason')!r}, expected {codes} {verdicts}")
    if v != 1:
        assert r.header("X-Sipguard-Reason"), r.raw[:1500]


@pytest.mark.parametrize("spec", ["suites=NOPE", "dtls=2"])
def test_bad_sdp_policy_refused(osips_factory, tls_dir, spec):
    o = _start(osips_factory, tls_dir, "badpolicy", start=False, sdp_policy=spec)
    with pytest.raises(RuntimeError) as e:
        o.start(timeout=10)
    assert "sdp_policy" in str(e.value), str(e.value)[-2000:]


def test_policy_refusal_with_credentials_never_bans(osips_factory, tls_dir):
    """A phone with its credentials over UDP where TLS is required gets the
    policy refusal every time and is never counted nor banned: the refusal
    of sipguard_require_tls() is marked, as in Kamailio (normalization on,
    auth_maxretry 3, so 3 counted 403s would ban it)."""
    o = _start(osips_factory, tls_dir, "policy", normalize_replies=1, auth_maxretry=3)
    cli = at.RawClient("127.0.0.1", o.port)
    cred = ('Digest username="1001", realm="127.0.0.1", nonce="0123456789abcdef", '
            'uri="sip:127.0.0.1", response="00000000000000000000000000000000"')
    try:
        codes = []
        for _ in range(8):
            r = cli.transact("REGISTER", "sip:127.0.0.1", frm="sip:1001@127.0.0.1",
                             to="sip:1001@127.0.0.1", auth=("Authorization", cred))
            assert r is not None, o.log_tail(20)
            codes.append((r.code, r.reason))
    finally:
        cli.close()
    assert codes == [(403, "TLS required")] * 8, codes
    s = o.stats()
    assert s["auth_failures"] == 0 and s["auth_bans"] == 0 and s["normalized"] == 0, s
    assert o.bans(src="127.0.0.1") == []


def test_blocklist_file(osips_factory, tls_dir, tmp_path):
    """blocklist_file in OpenSIPS: a listed network's requests are refused
    (early drop: no answer, counted), others answered; a bad line refuses
    start naming the parameter and the line."""
    good = tmp_path / "blocklist.txt"
    good.write_text("# a feed\n127.0.3.0/24\n")
    o = _start(osips_factory, tls_dir, "blocklist", blocklist_file=str(good))
    listed = sipg.udp_run("127.0.3.5", "127.0.0.1", o.port, 5, wait=0.5)
    other = sipg.udp_run("127.0.4.5", "127.0.0.1", o.port, 5, wait=0.5)
    # (this config answers OPTIONS 404: any answer counts)
    assert listed.codes == {} and sum(other.codes.values()) == 5, (listed, other)
    s = o.stats()
    assert s["blocklisted"] == 5 and s["blocklist_entries"] == 1, s
    bad = tmp_path / "bad.txt"
    bad.write_text("127.0.3.0/24\nnot-an-address\n")
    b = _start(osips_factory, tls_dir, "badlist", start=False, blocklist_file=str(bad))
    with pytest.raises(RuntimeError) as e:
        b.start()
    assert re.search(r"blocklist_file: \S*bad\.txt:2", str(e.value)), str(e.value)[-800:]

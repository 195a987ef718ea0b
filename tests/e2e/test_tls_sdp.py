"""Encrypted signalling and media: the TLS listener (tls module config of
kamailio-cfg/tls/tls.cfg, certificate from scripts/gen-cert.sh),
sipguard_require_tls() (with and without tls_contact), sipguard_sdp_check()
in request_route and onreply_route with its policies, hostile bodies, bad
policy specs, and the example bundle kamailio-cfg/sipguard-tls.cfg, also
through scripts/run.sh tls.

Everything on loopback; every loop bounded."""
from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import threading
import time

import pytest

import sdp_bodies as S
import sipg
from conftest import q

TEST_CFG = sipg.CFG_DIR / "sipguard-tls-test.cfg"
BUNDLE = sipg.REPO / "kamailio-cfg" / "sipguard-tls.cfg"
LO = "127.0.0.1"


# ----------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    return sipg.gen_cert(tmp_path_factory.mktemp("tls") / "certs")


def start_tls_kam(factory, tls_dir, name, extra=None, start=True, cfg=None, **defines):
    tls_port = sipg.free_port()
    k = factory(name=name, cfg=cfg or TEST_CFG, extra=extra, start=False,
                tls_port=str(tls_port), tls_cfg=q(str(tls_dir / "tls.cfg")), **defines)
    k.tls_port = tls_port
    return k.start() if start else k


@pytest.fixture(scope="module")
def kam(kam_module_factory, tls_dir):
    return start_tls_kam(kam_module_factory, tls_dir, "tls")


@pytest.fixture(scope="module")
def kam_contact(kam_module_factory, tls_dir):
    """tls_contact = 1"""
    return start_tls_kam(kam_module_factory, tls_dir, "tlscontact",
                         extra='modparam("sipguard", "tls_contact", 1)')


@pytest.fixture(scope="module")
def kam_nodtls(kam_module_factory, tls_dir):
    """sdp_policy modparam without DTLS-SRTP."""
    return start_tls_kam(kam_module_factory, tls_dir, "nodtls",
                         extra='modparam("sipguard", "sdp_policy", "dtls=0")')


def transact(kam, transport, method="INVITE", **kw) -> sipg.Reply:
    r = sipg.sip_transact(transport, method, kam.port, kam.tls_port, **kw)
    assert r is not None, (f"no reply to {method} over {transport}\n{kam.log_tail(30)}")
    return r


def alive(kam, src=LO):
    """Kamailio still up and answering, on UDP and TLS."""
    assert kam.running(), kam.log_tail(40)
    r = sipg.udp_request("OPTIONS", kam.port, src=src)
    assert r is not None and r.code == 200, kam.log_tail(40)
    r = sipg.tls_request("OPTIONS", kam.tls_port, src=src)
    assert r is not None and r.code == 200, kam.log_tail(40)


def clean_reason(r: sipg.Reply) -> str:
    """The X-Sipguard-Reason value: one printable line, bounded."""
    v = r.header("X-Sipguard-Reason")
    assert v is not None, r.raw[:2000]
    assert len(v) <= 512, v
    assert not re.search(r"[\x00-\x1f\x7f]", v), repr(v)
    return v


# ----------------------------------------------------------------------------
# gen-cert.sh


def test_gen_cert_idempotent_and_san(tmp_path):
    d = tmp_path / "c"
    sipg.gen_cert(d)
    crt, key, cfg = d / "sipguard.crt", d / "sipguard.key", d / "tls.cfg"
    first = (crt.read_bytes(), key.read_bytes())
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    r = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-subject", "-ext",
                        "subjectAltName"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "CN = localhost" in r.stdout or "CN=localhost" in r.stdout, r.stdout
    assert "IP Address:127.0.0.1" in r.stdout, r.stdout
    assert "IP Address:0:0:0:0:0:0:0:1" in r.stdout, r.stdout
    text = cfg.read_text()
    assert f'certificate = "{crt}"' in text and f'private_key = "{key}"' in text, text
    assert re.search(r"^method = TLSv1\.2\+$", text, re.M), text
    # second run: same certificate and key
    sipg.gen_cert(d)
    assert (crt.read_bytes(), key.read_bytes()) == first
    # a key that does not match is replaced, with a new certificate
    key.write_text("garbage\n")
    sipg.gen_cert(d)
    assert crt.read_bytes() != first[0]
    r = subprocess.run(["openssl", "pkey", "-in", str(key), "-noout"], capture_output=True,
                       timeout=30)
    assert r.returncode == 0


# ----------------------------------------------------------------------------
# the TLS listener


@pytest.mark.parametrize("addr", ["127.0.0.1", "::1"])
def test_tls_options_verified_certificate(kam, tls_dir, addr):
    """The certificate verifies for both loopback addresses (SAN); TLS 1.2+."""
    ctx = sipg.tls_context(cafile=tls_dir / "sipguard.crt")
    with sipg.StreamSipClient(addr, addr, kam.tls_port, context=ctx) as c:
        assert c.version in ("TLSv1.2", "TLSv1.3"), c.version
        r = c.request("OPTIONS")
        assert r is not None and r.code == 200, kam.log_tail(30)
        assert r.header("X-Proto") == "tls", r.headers
        # several requests on the same connection
        for _ in range(3):
            assert c.request("OPTIONS").code == 200


def test_tls12_strong_cipher(kam):
    ctx = sipg.tls_context(maximum=ssl.TLSVersion.TLSv1_2)
    with sipg.StreamSipClient(LO, LO, kam.tls_port, context=ctx) as c:
        assert c.version == "TLSv1.2"
        name = c.cipher[0]
        assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name
        assert c.request("OPTIONS").code == 200


def test_tls12_weak_cipher_refused(kam):
    """A TLS 1.2 client offering only a CBC/SHA-2 ECDHE suite (fine for
    OpenSSL's defaults, not for cipher_list) is refused."""
    ctx = sipg.tls_context(maximum=ssl.TLSVersion.TLSv1_2,
                           ciphers="ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256")
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with sipg.StreamSipClient(LO, LO, kam.tls_port, context=ctx) as c:
            c.request("OPTIONS", timeout=2)
    kam.wait_log(lambda: "no shared cipher" in kam.log_text(), timeout=5,
                 what="server side 'no shared cipher'")
    alive(kam)


def _legacy_server_context(version) -> ssl.SSLContext:
    """A Python TLS server context that allows only `version`: the control
    showing that this machine's client really speaks it, so that a refusal
    comes from Kamailio."""
    return sipg.pin_legacy_tls(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), version)


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_versions_refused(kam, tls_dir, version):
    v = getattr(ssl.TLSVersion, version)
    # control: the legacy client works against a server that allows it
    srv = _legacy_server_context(v)
    srv.load_cert_chain(str(tls_dir / "sipguard.crt"), str(tls_dir / "sipguard.key"))
    ls = socket.socket()
    ls.bind((LO, 0))
    ls.listen(1)
    ls.settimeout(5)
    got = {}

    def accept():
        try:
            c, _ = ls.accept()
            s = srv.wrap_socket(c, server_side=True)
            got["v"] = s.version()
            s.close()
        except Exception as e:  # noqa: BLE001
            got["err"] = e

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    raw = socket.create_connection(ls.getsockname(), timeout=5)
    try:
        s = sipg.legacy_tls_context(v).wrap_socket(raw, server_hostname=LO)
        client_version = s.version()
        s.close()
    finally:
        raw.close()
        t.join(5)
        ls.close()
    expect = {"TLSv1": "TLSv1", "TLSv1_1": "TLSv1.1"}[version]
    assert client_version == expect and got.get("v") == expect, (client_version, got)

    # Kamailio refuses it
    before = kam.log_text().count("unsupported protocol")
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with sipg.StreamSipClient(LO, LO, kam.tls_port, context=sipg.legacy_tls_context(v)) as c:
            c.request("OPTIONS", timeout=2)
    kam.wait_log(lambda: kam.log_text().count("unsupported protocol") > before, timeout=5,
                 what="server side 'unsupported protocol'")
    alive(kam)


def test_plain_tcp_to_tls_port_gets_nothing(kam):
    """Cleartext SIP to the TLS port is not answered (and does no harm)."""
    r = None
    try:
        with sipg.StreamSipClient(LO, LO, kam.tls_port, tls=False, timeout=2) as c:
            r = c.request("OPTIONS", timeout=2)
    except (ConnectionResetError, BrokenPipeError):
        pass
    assert r is None
    alive(kam)


# ----------------------------------------------------------------------------
# sipguard_require_tls()


@pytest.mark.parametrize("transport,src,code,verdict", [
    ("tls", "127.0.0.1", 200, 1),
    ("tls", "::1", 200, 1),
    ("udp", "127.0.0.1", 403, -1),
    ("udp", "::1", 403, -1),
    ("tcp", "127.0.0.1", 403, -1),
])
def test_register_requires_tls(kam, transport, src, code, verdict):
    r = transact(kam, transport, "REGISTER", src=src, dst=src)
    assert (r.code, r.int_header("X-Sipguard-Tls")) == (code, verdict), r.raw[:1500]
    if code == 403:
        assert r.reason == "TLS required", r.reason


def test_require_tls_ignores_contact_by_default(kam):
    """tls_contact = 0 (default): a plain sip: Contact over TLS is fine."""
    r = transact(kam, "tls", "REGISTER", contact="<sip:alice@127.0.0.1:5999>")
    assert (r.code, r.int_header("X-Sipguard-Tls")) == (200, 1), r.raw[:1500]


CONTACTS = [
    # (Contact header value, expected verdict over TLS with tls_contact=1)
    ("<sip:alice@127.0.0.1:5999>", -2),
    ("<sips:alice@127.0.0.1:5999>", 1),
    ("<sip:alice@127.0.0.1:5999;transport=tls>", 1),
    ("<sip:alice@127.0.0.1:5999;transport=TLS>", 1),
    ('"Alice" <sips:alice@127.0.0.1:5999>;expires=60', 1),
    ("<sip:alice@127.0.0.1:5999;transport=tcp>", -2),
    ("<sip:alice@127.0.0.1:5999;transport=udp>", -2),
    # header parameter, not a URI parameter (RFC 3261 20.10)
    ("<sip:alice@127.0.0.1:5999>;transport=tls", -2),
    # ";transport=tls" inside the user part is no URI parameter
    ("<sip:alice;transport=tls@127.0.0.1:5999>", -2),
    # "sips:" in the display name only
    ('"sips:alice" <sip:alice@127.0.0.1:5999>', -2),
    # every contact must ask for TLS
    ("<sips:alice@127.0.0.1:5999>, <sip:alice@127.0.0.1:5998>", -2),
    ("<sips:alice@127.0.0.1:5999>, <sip:alice@127.0.0.1:5998;transport=tls>", 1),
]


@pytest.mark.parametrize("contact,verdict", CONTACTS, ids=[c for c, _ in CONTACTS])
def test_tls_contact(kam_contact, contact, verdict):
    r = transact(kam_contact, "tls", "REGISTER", contact=contact)
    assert r.int_header("X-Sipguard-Tls") == verdict, r.raw[:1500]
    if verdict == 1:
        assert r.code == 200
    else:
        assert (r.code, r.reason) == (403, "TLS Contact required"), r.raw[:1500]


def test_tls_contact_compact_and_repeated_headers(kam_contact):
    # compact form "m:"
    r = transact(kam_contact, "tls", "REGISTER", contact="",
                 headers="m: <sips:alice@127.0.0.1:5999>\r\n")
    assert (r.code, r.int_header("X-Sipguard-Tls")) == (200, 1), r.raw[:1500]
    # two Contact header lines, the second not TLS
    r = transact(kam_contact, "tls", "REGISTER", contact="<sips:alice@127.0.0.1:5999>",
                 headers="Contact: <sip:alice@127.0.0.1:5998>\r\n")
    assert (r.code, r.int_header("X-Sipguard-Tls")) == (403, -2), r.raw[:1500]
    # "*" (remove all bindings) counts as asking for TLS
    r = transact(kam_contact, "tls", "REGISTER", contact="*",
                 headers="")
    assert r.int_header("X-Sipguard-Tls") == 1, r.raw[:1500]


def test_tls_contact_over_udp_is_still_not_tls(kam_contact):
    """Not over TLS is -1 whatever the Contact says."""
    for transport in ("udp", "tcp"):
        r = transact(kam_contact, transport, "REGISTER", contact="<sips:alice@127.0.0.1:5999>")
        assert (r.code, r.int_header("X-Sipguard-Tls")) == (403, -1), r.raw[:1500]


# ----------------------------------------------------------------------------
# sipguard_sdp_check() in request_route

SRTP = "AES_CM_128_HMAC_SHA1_80"

# (id, body or (content_type, body), extra headers, expected code, verdicts)
CASES = [
    ("srtp-all", lambda: S.srtp_all(), "", 200, {1}),
    ("srtp-AES_256_CM", lambda: S.srtp_audio_only("AES_256_CM_HMAC_SHA1_80"), "", 200, {1}),
    ("srtp-AEAD_128", lambda: S.srtp_audio_only("AEAD_AES_128_GCM"), "", 200, {1}),
    ("srtp-AEAD_256", lambda: S.srtp_audio_only("AEAD_AES_256_GCM"), "", 200, {1}),
    ("srtp-savpf", lambda: S.srtp_audio_only(proto="RTP/SAVPF"), "", 200, {1}),
    ("srtp-lifetime-mki", lambda: S.srtp_audio_only(extra="|2^31|1:4"), "", 200, {1}),
    ("audio-srtp-video-rtp", lambda: S.srtp_audio_rtp_video(), "", 488, {-2}),
    ("cleartext-audio", lambda: S.cleartext_audio(), "", 488, {-2}),
    ("session-level-crypto-only", lambda: S.session_level_crypto_only(), "", 488, {-2, -3}),
    ("disabled-cleartext-video", lambda: S.disabled_cleartext_video(), "", 200, {1}),
    ("key-too-short", lambda: S.bad_key_length(20), "", 488, {-3}),
    ("key-too-long", lambda: S.bad_key_length(40), "", 488, {-3}),
    ("key-bad-base64", lambda: S.bad_base64(), "", 488, {-3}),
    ("key-empty", lambda: S.srtp_audio_only(inline=""), "", 488, {-3}),
    ("suite-F8", lambda: S.unknown_suite("F8_128_HMAC_SHA1_80"), "", 488, {-3}),
    ("suite-made-up", lambda: S.unknown_suite("AES_CM_129_HMAC_SHA3_99"), "", 488, {-3}),
    ("suite-weak-SHA1_32", lambda: S.unknown_suite("AES_CM_128_HMAC_SHA1_32"), "", 488, {-3}),
    ("suite-NULL", lambda: S.unknown_suite("NULL_HMAC_SHA1_80"), "", 488, {-3}),
    ("dtls-srtp", lambda: S.dtls_srtp(), "", 200, {1}),
    ("dtls-srtp-savp", lambda: S.dtls_srtp(proto="UDP/TLS/RTP/SAVP"), "", 200, {1}),
    ("dtls-no-fingerprint", lambda: S.dtls_srtp(fingerprint=False), "", 488, {-2, -3}),
    ("dtls-policy-dtls0", lambda: S.dtls_srtp(), "X-Sdp-Policy: nodtls\r\n", 488, {-2, -3}),
    ("srtp-policy-dtls0", lambda: S.srtp_all(), "X-Sdp-Policy: nodtls\r\n", 200, {1}),
    ("no-body", lambda: b"", "", 400, {-1}),
    ("multipart-srtp", lambda: S.multipart(S.srtp_all()), "", 200, {1}),
    ("multipart-cleartext", lambda: S.multipart(S.cleartext_audio()), "", 488, {-2}),
    ("multipart-no-sdp", lambda: ("multipart/mixed;boundary=b1",
                                  b"--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1--\r\n"),
     "", 400, {-1}),
    ("crypto-inside-other-attr", lambda: S.crypto_inside_other_attribute(), "", 488, {-2}),
    ("crypto-inside-other-attr-optimistic", lambda: S.crypto_inside_other_attribute(),
     "X-Sdp-Policy: optimistic\r\n", 488, {-2}),
    ("rtp-with-crypto", lambda: S.rtp_with_crypto(), "", 488, {-2}),
    ("rtp-with-crypto-optimistic", lambda: S.rtp_with_crypto(),
     "X-Sdp-Policy: optimistic\r\n", 200, {1}),
    ("suites-policy-gcm256-ok", lambda: S.srtp_audio_only("AEAD_AES_256_GCM"),
     "X-Sdp-Policy: gcm256\r\n", 200, {1}),
    ("suites-policy-gcm256-other", lambda: S.srtp_audio_only(SRTP),
     "X-Sdp-Policy: gcm256\r\n", 488, {-3}),
    ("savp-without-crypto", lambda: S.join(S.session() + S.audio()), "", 488, {-3}),
    ("crypto-UNENCRYPTED_SRTP", lambda: S.srtp_audio_only(extra=" UNENCRYPTED_SRTP"),
     "", 488, {-3}),
    ("crypto-UNAUTHENTICATED_SRTP", lambda: S.srtp_audio_only(extra=" UNAUTHENTICATED_SRTP"),
     "", 488, {-3}),
    ("crypto-KDR", lambda: S.srtp_audio_only(extra=" KDR=1"), "", 200, {1}),
    ("dtls-fingerprint-session-level", lambda: S.join(
        S.session([f"a=fingerprint:{S.FINGERPRINT}"]) + S.audio(proto="UDP/TLS/RTP/SAVPF")),
     "", 200, {1}),
    ("image-t38-udptl", lambda: S.join(S.session() + S.audio(attrs=[S.crypto()])
                                       + ["m=image 5002 udptl t38"]), "", 488, {-2}),
    ("tcp-rtp-avp", lambda: S.join(S.session() + S.audio(proto="TCP/RTP/AVP")),
     "", 488, {-2}),
    ("ctype-params-cleartext", lambda: ("application/sdp; charset=utf-8", S.cleartext_audio()),
     "", 488, {-2}),
    ("ctype-uppercase-srtp", lambda: ("APPLICATION/SDP", S.srtp_all()), "", 200, {1}),
    ("ctype-text-plain", lambda: ("text/plain", S.srtp_all()), "", 400, {-1}),
    ("multipart-quoted-boundary-cleartext", lambda: (
        'multipart/mixed; boundary="sgBoundary42"', S.multipart(S.cleartext_audio())[1]),
     "", 488, {-2}),
    ("multipart-second-sdp-cleartext", lambda: (
        "multipart/mixed;boundary=b2",
        b"--b2\r\nContent-Type: application/sdp\r\n\r\n" + S.srtp_all()
        + b"\r\n--b2\r\nContent-Type: application/sdp\r\n\r\n" + S.cleartext_audio()
        + b"\r\n--b2--\r\n"), "", 488, {-2}),
    ("not-sdp", lambda: b"hello world\r\n", "", 400, {-1}),
    ("64-streams", lambda: S.many_streams(64), "", 200, {1}),
    ("65-streams", lambda: S.many_streams(65), "", 488, {-4}),
    ("random-2k", lambda: S.random_bytes(2000), "", (400, 488), {-1, -2, -3, -4}),
]


def _body(case):
    b = case[1]()
    return b if isinstance(b, tuple) else (None, b)


@pytest.mark.parametrize("transport", ["udp", "tls"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sdp_check(kam, transport, case):
    name, _, headers, code, verdicts = case
    ctype, body = _body(case)
    r = transact(kam, transport, "INVITE", body=body, content_type=ctype, headers=headers)
    codes = code if isinstance(code, tuple) else (code,)
    v = r.int_header("X-Sipguard-Sdp")
    assert r.code in codes and v in verdicts, (
        f"{name} over {transport}: got {r.code} verdict {v} "
        f"reason {r.header('X-Sipguard-Reason')!r}, expected {codes} {verdicts}")
    clean_reason(r)


def test_sdp_reason_reaches_reply(kam):
    r = transact(kam, "udp", "INVITE", body=S.srtp_audio_rtp_video())
    assert (r.code, r.int_header("X-Sipguard-Sdp")) == (488, -2)
    reason = clean_reason(r)
    assert reason, "empty $sipguard(sdp_reason) for a cleartext stream"
    assert "cleartext" in reason.lower() or "RTP/AVP" in reason, reason
    # a crypto failure gives a different, non-empty reason
    r = transact(kam, "udp", "INVITE", body=S.unknown_suite())
    assert r.int_header("X-Sipguard-Sdp") == -3
    r2 = clean_reason(r)
    assert r2 and r2 != reason, (reason, r2)
    # no body
    r = transact(kam, "udp", "INVITE")
    assert r.int_header("X-Sipguard-Sdp") == -1 and clean_reason(r), r.raw[:1500]


def test_sdp_reason_not_stale_after_ok(kam):
    """A refused check followed by an accepted one on the same worker: the
    accepted reply must not carry the old refusal reason."""
    for _ in range(4):   # 2 UDP workers: repeat so both see the sequence
        transact(kam, "udp", "INVITE", body=S.cleartext_audio())
        r = transact(kam, "udp", "INVITE", body=S.srtp_all())
        assert r.code == 200
        reason = r.header("X-Sipguard-Reason") or ""
        assert "cleartext" not in reason.lower() and "RTP/AVP" not in reason, reason


def test_sdp_reason_not_carried_to_other_messages(kam):
    """$sipguard(sdp_reason) read in a message that ran no check (an
    OPTIONS after a refused INVITE on the same worker) is empty: one
    caller's SDP details must not show up in another message."""
    seen = []
    for _ in range(6):
        # 2 UDP workers: a refused INVITE for each of them (whichever takes
        # which), then the OPTIONS lands on a worker that ran a check before
        for _ in range(2):
            transact(kam, "udp", "INVITE", body=S.srtp_audio_rtp_video())
        r = transact(kam, "udp", "OPTIONS", headers="X-Want-Reason: 1\r\n")
        seen.append(r.header("X-Sipguard-Reason"))
    assert all(v == "" for v in seen), seen


def test_udp_bytes_beyond_content_length_ignored(kam):
    """RFC 3261 18.3: over UDP, bytes after Content-Length are not part of
    the body. An SRTP offer followed by a cleartext m= line outside the
    Content-Length is checked as the SRTP offer alone."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LO, 0))
        s.settimeout(3)
        msg, cid = sipg.sip_request("INVITE", LO, s.getsockname()[1], LO, kam.port,
                                    body=S.srtp_audio_only())
        s.sendto(msg + b"m=video 51372 RTP/AVP 96\r\n", (LO, kam.port))
        r = None
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            r = sipg.parse_sip_reply(s.recv(65536))
            if r and r.callid == cid and r.code >= 200:
                break
    assert r is not None, kam.log_tail(20)
    assert (r.code, r.int_header("X-Sipguard-Sdp")) == (200, 1), (
        r.code, r.header("X-Sipguard-Reason"))


@pytest.mark.parametrize("method", ["UPDATE", "INVITE"])
def test_in_dialog_requests_checked(kam, method):
    """UPDATE and re-INVITE (To tag, CSeq 2) are checked like an INVITE."""
    for body, code in ((S.srtp_all(), 200), (S.srtp_audio_rtp_video(), 488)):
        r = transact(kam, "tls", method, body=body, to_tag="abc123", cseq=2)
        assert r.code == code, r.raw[:1500]


def test_sdp_reason_header_injection(kam):
    """A suite name with a bare CR (and LF-only lines): whatever the verdict,
    the reply has no injected header and the reason is one clean line."""
    k = S.key()
    bodies = [
        S.join(S.session() + S.audio(attrs=[f"a=crypto:1 AES_CM\rX-Injected: 1 inline:{k}"])),
        S.join(S.session() + S.audio(proto="RTP/AVP\rX-Injected: 1")),
        S.srtp_audio_rtp_video().replace(b"\r\n", b"\n"),
    ]
    for b in bodies:
        r = transact(kam, "udp", "INVITE", body=b)
        assert r.code in (200, 400, 488), r.raw[:1500]
        assert r.header("X-Injected") is None, r.raw[:1500]
        clean_reason(r)
    alive(kam)


def test_lf_only_sdp_checked(kam):
    """SDP with bare LF line ends (seen in the wild) is parsed, not skipped."""
    r = transact(kam, "udp", "INVITE", body=S.srtp_audio_rtp_video().replace(b"\r\n", b"\n"))
    assert (r.code, r.int_header("X-Sipguard-Sdp")) == (488, -2), r.raw[:1500]
    r = transact(kam, "udp", "INVITE", body=S.srtp_all().replace(b"\r\n", b"\n"))
    assert (r.code, r.int_header("X-Sipguard-Sdp")) == (200, 1), r.raw[:1500]


def test_sdp_policy_modparam(kam_nodtls):
    """modparam sdp_policy "dtls=0": DTLS-SRTP refused, SDES-SRTP still fine."""
    r = transact(kam_nodtls, "udp", "INVITE", body=S.dtls_srtp())
    assert r.code == 488 and r.int_header("X-Sipguard-Sdp") in (-2, -3), r.raw[:1500]
    r = transact(kam_nodtls, "tls", "INVITE", body=S.srtp_all())
    assert (r.code, r.int_header("X-Sipguard-Sdp")) == (200, 1), r.raw[:1500]


# ----------------------------------------------------------------------------
# hostile bodies (over TLS: too big for one UDP datagram)

HOSTILE = [
    ("random-100k", lambda: S.random_bytes(100 * 1024), (400, 488), {-1, -2, -3, -4}),
    ("5000-m-lines", lambda: S.many_m_lines(5000), (488,), {-4}),
    ("valid-but-70k", lambda: S.oversized_valid(70 * 1024), (488,), {-4}),
    ("nul-bytes", lambda: b"\0" * 30000, (400, 488), {-1, -2, -3, -4}),
    ("only-m", lambda: b"m=" * 20000, (400, 488), {-1, -2, -3, -4}),
    ("long-line", lambda: S.join(S.session() + S.audio(attrs=["a=crypto:1 " + "A" * 60000])),
     (488,), {-3, -4}),
]


@pytest.mark.parametrize("case", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies(kam, case):
    name, make, codes, verdicts = case
    pids = kam.group_pids()
    body = make()
    r = transact(kam, "tls", "INVITE", body=body, timeout=10)
    v = r.int_header("X-Sipguard-Sdp")
    assert r.code in codes and v in verdicts, (name, r.code, v, r.header("X-Sipguard-Reason"))
    clean_reason(r)
    alive(kam)
    assert kam.group_pids() == pids, "a Kamailio process died or was restarted"


def test_hostile_over_udp_max_datagram(kam):
    """The largest body one UDP datagram can carry, random bytes."""
    r = transact(kam, "udp", "INVITE", body=S.random_bytes(60000, seed=7))
    assert r.code in (400, 488), r.raw[:500]
    alive(kam)


# ----------------------------------------------------------------------------
# sipguard_sdp_check() in onreply_route


def _forwarded_reply(kam, reply_body: bytes, reply_ctype="application/sdp", code=200):
    """INVITE forwarded by Kamailio to a UAS socket here; the UAS answers with
    reply_body (marked "X-Check-Sdp: 1"); returns the reply as Kamailio
    relayed it back to the caller."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as uas, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as uac:
        uas.bind((LO, 0))
        uac.bind((LO, 0))
        uas.settimeout(5)
        uac.settimeout(5)
        msg, cid = sipg.sip_request("INVITE", LO, uac.getsockname()[1], LO, kam.port,
                                    body=S.srtp_all(),
                                    headers=f"X-Forward-To: {LO}:{uas.getsockname()[1]}\r\n")
        uac.sendto(msg, (LO, kam.port))
        data, kaddr = uas.recvfrom(65536)
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        keep = [ln for ln in head.split("\r\n")[1:]
                if re.match(r"(?i)(via|from|to|call-id|cseq)\s*:", ln)]
        keep = [ln + ";tag=uas1" if re.match(r"(?i)to\s*:", ln) else ln for ln in keep]
        reply = ("SIP/2.0 %d %s\r\n" % (code, "OK" if code == 200 else "Session Progress")
                 + "\r\n".join(keep) + "\r\n"
                 + f"Contact: <sip:bob@{LO}:{uas.getsockname()[1]}>\r\n"
                 + "X-Check-Sdp: 1\r\n"
                 + (f"Content-Type: {reply_ctype}\r\n" if reply_body else "")
                 + f"Content-Length: {len(reply_body)}\r\n\r\n").encode() + reply_body
        uas.sendto(reply, kaddr)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                d = uac.recv(65536)
            except socket.timeout:
                break
            r = sipg.parse_sip_reply(d)
            if r and r.callid == cid and r.code == code:
                return r
    raise AssertionError(f"no relayed reply\n{kam.log_tail(30)}")


@pytest.mark.parametrize("body,verdicts", [
    (S.srtp_all(), {1}),
    (S.dtls_srtp(), {1}),
    (S.srtp_audio_rtp_video(), {-2}),
    (S.unknown_suite(), {-3}),
    (b"", {-1}),
], ids=["srtp", "dtls", "cleartext-video", "unknown-suite", "no-sdp"])
def test_sdp_check_in_onreply_route(kam, body, verdicts):
    r = _forwarded_reply(kam, body)
    v = r.int_header("X-Sipguard-Reply-Sdp")
    assert v in verdicts, (v, r.header("X-Sipguard-Reply-Reason"), r.raw[:2000])
    reason = r.header("X-Sipguard-Reply-Reason")
    assert reason is not None and not re.search(r"[\x00-\x1f\x7f]", reason)
    if -2 in verdicts:
        assert reason, "no reason for a cleartext answer"


def test_sdp_check_in_onreply_route_183_multipart(kam):
    ctype, body = S.multipart(S.srtp_audio_rtp_video())
    r = _forwarded_reply(kam, body, reply_ctype=ctype, code=183)
    assert r.int_header("X-Sipguard-Reply-Sdp") == -2, r.raw[:2000]


# ----------------------------------------------------------------------------
# bad policy specs stop Kamailio


_start_fails = sipg.start_fails


def _error_names(out: str, cfg, *words) -> bool:
    for line in out.replace(str(cfg), "<cfg>").splitlines():
        if ("ERROR" in line or "CRITICAL" in line) and "sipguard" in line \
                and all(w in line for w in words):
            return True
    return False


BAD_SPECS = ["suites=NOPE", "suites=", "suites=AES_CM_128_HMAC_SHA1_80,NOPE", "dtls=2",
             "optimistic=maybe", "bogus=1", "dtls"]


@pytest.mark.parametrize("spec", BAD_SPECS)
def test_bad_sdp_policy_modparam_refused(kam_factory, tls_dir, spec):
    k = start_tls_kam(kam_factory, tls_dir, "badpol", start=False,
                      extra=f'modparam("sipguard", "sdp_policy", "{spec}")')
    # refused by kamailio -c already (the modparam is parsed when set) ...
    r = k.check()
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"kamailio -c accepted sdp_policy={spec!r}:\n{out[-3000:]}"
    assert _error_names(out, k.cfg, "sdp_policy"), f"error does not name sdp_policy:\n{out[-3000:]}"
    # ... and at start
    failed, out = _start_fails(k)
    assert failed, f"kamailio started with sdp_policy={spec!r}:\n{out[-3000:]}"
    assert _error_names(out, k.cfg, "sdp_policy"), f"error does not name sdp_policy:\n{out[-3000:]}"


@pytest.mark.parametrize("spec", ["suites=NOPE", "dtls=2"])
def test_bad_sdp_policy_parameter_refused(kam_factory, tls_dir, spec, tmp_path):
    """A bad spec as sipguard_sdp_check()'s parameter stops Kamailio too."""
    text = TEST_CFG.read_text().replace('sipguard_sdp_check("dtls=0")',
                                        f'sipguard_sdp_check("{spec}")')
    cfg = tmp_path / "badparam.cfg"
    cfg.write_text(text)
    k = start_tls_kam(kam_factory, tls_dir, "badparam", start=False, cfg=cfg)
    # (kamailio -c cannot see it: Kamailio runs function fixups after -c exits)
    failed, out = _start_fails(k)
    assert failed, f"kamailio started with sipguard_sdp_check({spec!r}):\n{out[-3000:]}"
    assert _error_names(out, k.cfg, "sipguard_sdp_check", spec), out[-3000:]


def test_good_sdp_policy_modparam_starts(kam_factory, tls_dir):
    k = start_tls_kam(kam_factory, tls_dir, "goodpol", extra=(
        'modparam("sipguard", "sdp_policy", '
        '"suites=AES_CM_128_HMAC_SHA1_80,AEAD_AES_256_GCM;dtls=1;optimistic=0")'))
    r = transact(k, "udp", "INVITE", body=S.srtp_audio_only("AES_256_CM_HMAC_SHA1_80"))
    assert (r.code, r.int_header("X-Sipguard-Sdp")) == (488, -3), r.raw[:1500]
    r = transact(k, "udp", "INVITE", body=S.srtp_audio_only("AEAD_AES_256_GCM"))
    assert (r.code, r.int_header("X-Sipguard-Sdp")) == (200, 1), r.raw[:1500]


def test_bad_tls_contact_refused(kam_factory, tls_dir):
    k = start_tls_kam(kam_factory, tls_dir, "badcontact", start=False,
                      extra='modparam("sipguard", "tls_contact", 2)')
    failed, out = _start_fails(k)
    assert failed, out[-3000:]
    assert _error_names(out, k.cfg, "tls_contact"), out[-3000:]


# ----------------------------------------------------------------------------
# the example bundle kamailio-cfg/sipguard-tls.cfg


def _bundle(kam_factory, tmp_path, tls_dir, name="bundle", **defines):
    return sipg.start_tls_bundle(kam_factory, tmp_path, tls_dir, name=name, **defines)


def test_bundle_passes_check(module_built, tmp_path):
    r = subprocess.run([sipg.KAMAILIO, "-c", "-f", str(BUNDLE), "-L", sipg.mpath(),
                        f"--substdef=!SG_RUNDIR!{tmp_path}!g"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]


def test_bundle_behaves(kam_factory, tmp_path, tls_dir):
    k = _bundle(kam_factory, tmp_path, tls_dir)
    ctx = sipg.tls_context(cafile=tls_dir / "sipguard.crt")
    for addr in ("127.0.0.1", "::1"):
        with sipg.StreamSipClient(addr, addr, k.tls_port, context=ctx) as c:
            assert c.request("OPTIONS").code == 200
            assert c.request("REGISTER").code == 200
            r = c.request("INVITE", body=S.srtp_all())
            assert r.code == 200, r.raw[:1500]
            r = c.request("INVITE", body=S.srtp_audio_rtp_video())
            assert (r.code, r.reason) == (488, "Not Acceptable Here: cleartext media"), r.raw[:1500]
            assert r.header("X-Sipguard-Reason"), r.raw[:1500]
            r = c.request("INVITE", body=S.unknown_suite())
            assert (r.code, r.reason) == (488, "Not Acceptable Here: bad crypto"), r.raw[:1500]
            r = c.request("INVITE")
            assert (r.code, r.reason) == (400, "Missing SDP"), r.raw[:1500]
            r = c.request("UPDATE", body=S.dtls_srtp(), to_tag="x1", cseq=3)
            assert r.code == 200, r.raw[:1500]
            r = c.request("INVITE", body=S.many_streams(65))
            assert (r.code, r.reason) == (488, "Not Acceptable Here: SDP too complex"), r.raw[:1500]
    # REGISTER in the clear: refused, except for the exempt source
    r = sipg.udp_request("REGISTER", k.port, src="127.0.0.21")
    assert r is not None and (r.code, r.reason) == (403, "TLS required"), r
    r = sipg.tcp_request("REGISTER", k.port, src="127.0.0.22")
    assert r is not None and (r.code, r.reason) == (403, "TLS required"), r
    r = sipg.udp_request("REGISTER", k.port, src="127.0.0.250")
    assert r is not None and r.code == 200, r
    # cleartext INVITE over UDP checked the same way
    r = sipg.udp_request("INVITE", k.port, src="127.0.0.23", body=S.cleartext_audio())
    assert r is not None and r.code == 488, r
    # SDES keys over UDP would be readable on the path: the bundle's
    # sdes_tls=1 refuses the offer that passed over TLS above; DTLS passes
    r = sipg.udp_request("INVITE", k.port, src="127.0.0.23", body=S.srtp_all())
    assert r is not None and (r.code, r.reason) == (488, "Not Acceptable Here: cleartext media"), r
    assert "unencrypted signalling" in r.header("X-Sipguard-Reason"), r
    r = sipg.udp_request("UPDATE", k.port, src="127.0.0.23", body=S.dtls_srtp())
    assert r is not None and r.code == 200, r
    # rate limiting still on: a flood from one source gets banned
    fl = sipg.udp_run("127.0.0.24", LO, k.port, 60, wait=0.5)
    assert 30 <= fl.answered <= 32, fl
    assert k.stop() == 0


def test_bundle_tls_contact_and_policy(kam_factory, tmp_path, tls_dir):
    k = _bundle(kam_factory, tmp_path, tls_dir, name="bundle2", SG_TLS_CONTACT=None,
                SG_SDP_POLICY='"dtls=0"')
    with sipg.StreamSipClient(LO, LO, k.tls_port) as c:
        r = c.request("REGISTER", contact="<sip:alice@127.0.0.1:5999>")
        assert (r.code, r.reason) == (403, "TLS Contact required"), r.raw[:1500]
        r = c.request("REGISTER", contact="<sips:alice@127.0.0.1:5999>")
        assert r.code == 200, r.raw[:1500]
        r = c.request("INVITE", body=S.dtls_srtp())
        assert r.code == 488, r.raw[:1500]
        r = c.request("INVITE", body=S.srtp_all())
        assert r.code == 200, r.raw[:1500]


def test_run_sh_tls(tmp_path):
    """bash scripts/run.sh tls: certificate generated, TLS answered."""
    rundir = tmp_path / "run"
    port, tls_port = sipg.free_port(), sipg.free_port()
    env = dict(os.environ, SIPGUARD_SKIP_DEPS="1", SIPGUARD_SKIP_BUILD="1",
               SIPGUARD_RUNDIR=str(rundir), SIPGUARD_PORT=str(port),
               SIPGUARD_TLS_PORT=str(tls_port))
    log = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen(["bash", str(sipg.REPO / "scripts" / "run.sh"), "tls"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        r = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = sipg.tls_request("OPTIONS", tls_port, src="127.0.0.31", timeout=2)
                if r is not None:
                    break
            except OSError:
                time.sleep(0.3)
        assert r is not None and r.code == 200, (tmp_path / "run.log").read_text()[-3000:]
        for f in ("sipguard.crt", "sipguard.key", "tls.cfg"):
            assert (rundir / "tls" / f).is_file(), f
        r = sipg.udp_request("REGISTER", port, src="127.0.0.32")
        assert r is not None and r.code == 403, r
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)
        log.close()

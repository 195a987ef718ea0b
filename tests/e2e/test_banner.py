"""No version banner: the example configs of kamailio-cfg/ as shipped never
announce "kamailio (5.6.3 ...)" to a scanner, neither in the Server header
of the replies they make nor in the User-Agent of the requests they make
themselves (tm's CANCEL and ACK towards a callee), and relaying leaves the
caller's and callee's headers as they were.

Everything on loopback; every loop bounded."""
from __future__ import annotations

import re
import socket
import time
import uuid

import pytest

import auth_tools as A
import sipg
from test_fraud import DOMESTIC, fraud_kam

CFG = sipg.REPO / "kamailio-cfg"
LO = "127.0.0.1"
BANNER = re.compile(rb"kamailio|\(\d+\.\d+\.\d+", re.I)


def assert_no_banner(raw: bytes, what: str):
    """No header names the server's software or version."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:
        name = line.split(b":", 1)[0].strip().lower()
        if name in (b"server", b"user-agent", b"warning", b"organization"):
            assert not BANNER.search(line), f"{what}: {line!r}\n{raw[:800]!r}"
    assert b"kamailio" not in raw.lower(), f"{what}:\n{raw[:800]!r}"


def local_replies(port: int, tls_port: int | None = None) -> list:
    """Replies the server makes itself: OPTIONS, REGISTER, an INVITE and
    a made-up method to nowhere, over UDP (and TLS)."""
    out = []
    for method in ("OPTIONS", "REGISTER", "INVITE", "FOO"):
        r = sipg.udp_request(method, port, src="127.0.0.31", timeout=2.0)
        assert r is not None, f"no reply to {method}"
        out.append((f"{method} udp {r.code}", r.raw))
    if tls_port:
        r = sipg.tls_request("OPTIONS", tls_port)
        assert r is not None
        out.append((f"OPTIONS tls {r.code}", r.raw))
    return out


@pytest.mark.parametrize("name", ["sipguard.cfg", "nocheck.cfg", "pike.cfg", "sipguard-auth.cfg"])
def test_local_replies_carry_no_banner(kam_factory, tmp_path, name):
    k = sipg.start_example(kam_factory, tmp_path, CFG / name)
    replies = local_replies(k.port)
    if name == "sipguard-auth.cfg":
        # the digest challenge, and a refusal rewritten into one
        r = A.request("127.0.0.32", k.port, "REGISTER", "1001")
        replies.append(("REGISTER 1001", r.raw))
        r = A.request("127.0.0.32", k.port, "INVITE", "1001")
        replies.append(("INVITE 1001", r.raw))
    for what, raw in replies:
        assert_no_banner(raw, f"{name} {what}")


def test_tls_bundle_replies_carry_no_banner(kam_factory, tmp_path):
    tls_dir = sipg.gen_cert(tmp_path / "certs")
    k = sipg.start_tls_bundle(kam_factory, tmp_path, tls_dir)
    for what, raw in local_replies(k.port, k.tls_port):
        assert_no_banner(raw, f"sipguard-tls.cfg {what}")
    assert k.stop() == 0


def _msg(sock, timeout=3.0, want=None):
    """The next SIP message on sock (whose first line matches `want`)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"nothing matching {want!r} arrived"
        sock.settimeout(left)
        data, peer = sock.recvfrom(65536)
        if want is None or re.match(want, data):
            return data, peer


def _headers(raw: bytes, *names) -> str:
    lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    keep = [ln for ln in lines if ln.split(b":", 1)[0].strip().lower() in names]
    return "".join(ln.decode() + "\r\n" for ln in keep)


def _reply(req: bytes, status: str, to_tag: str) -> bytes:
    head = _headers(req, b"via", b"v", b"from", b"f", b"call-id", b"i", b"cseq")
    to = _headers(req, b"to", b"t").rstrip("\r\n")
    if ";tag=" not in to:
        to += f";tag={to_tag}"
    return (f"SIP/2.0 {status}\r\n{head}{to}\r\nContent-Length: 0\r\n\r\n").encode()


def test_fraud_bundle_relays_and_its_own_requests_carry_no_banner(kam_factory, tmp_path):
    """An INVITE relayed to the callee, the callee's 180 relayed back, then a
    CANCEL: tm's own CANCEL and ACK to the callee and the replies to the
    caller carry no banner; relayed messages keep their own User-Agent."""
    k = fraud_kam(kam_factory, tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as callee, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller:
        callee.bind((LO, k.callee_port))
        caller.bind((LO, 0))
        cport = caller.getsockname()[1]
        cid, branch, ftag = uuid.uuid4().hex, "z9hG4bK" + uuid.uuid4().hex[:12], "f1"
        ruri = f"sip:+{DOMESTIC}@{LO}:{k.port}"

        def request(method: str) -> bytes:
            return (f"{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {LO}:{cport};branch={branch};rport\r\n"
                    f"Max-Forwards: 70\r\nFrom: <sip:alice@{LO}>;tag={ftag}\r\nTo: <{ruri}>\r\n"
                    f"Call-ID: {cid}\r\nCSeq: 1 {method}\r\nContact: <sip:alice@{LO}:{cport}>\r\n"
                    f"User-Agent: e2e-caller\r\nContent-Length: 0\r\n\r\n").encode()

        caller.sendto(request("INVITE"), (LO, k.port))
        invite, proxy = _msg(callee, want=rb"INVITE ")
        assert b"User-Agent: e2e-caller\r\n" in invite
        assert_no_banner(invite, "relayed INVITE")
        callee.sendto(_reply(invite, "180 Ringing", "c1") .replace(
            b"Content-Length", b"User-Agent: e2e-callee\r\nContent-Length"), proxy)
        seen = []
        ringing, _ = _msg(caller, want=rb"SIP/2.0 180")
        assert b"User-Agent: e2e-callee\r\n" in ringing
        seen.append(("relayed 180", ringing))
        caller.sendto(request("CANCEL"), (LO, k.port))
        cancel, _ = _msg(callee, want=rb"CANCEL ")
        seen.append(("tm's CANCEL", cancel))
        callee.sendto(_reply(cancel, "200 OK", "c1"), proxy)
        callee.sendto(_reply(invite, "487 Request Terminated", "c1"), proxy)
        ack, _ = _msg(callee, want=rb"ACK ")
        seen.append(("tm's ACK", ack))
        for _ in range(2):
            r, _ = _msg(caller, want=rb"SIP/2.0 (200|487)")
            seen.append((r.split(b"\r\n", 1)[0].decode(), r))
    for what, raw in seen:
        assert_no_banner(raw, what)
    assert k.stop() == 0

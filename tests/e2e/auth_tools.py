"""Helpers for the issue-3 tests (enumeration and password guessing):
a SIP UDP client with MD5 digest authentication bound to a chosen 127.x
source, the sipguard-auth test config, and wrappers for svwar / svcrack.

All traffic goes to loopback; every loop is bounded in count and time.
"""
from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sipg

AUTH_CFG = sipg.CFG_DIR / "sipguard-auth-test.cfg"
EXAMPLE_CFG = sipg.REPO / "kamailio-cfg" / "sipguard-auth.cfg"
SVWAR = "/usr/bin/svwar"
SVCRACK = "/usr/bin/svcrack"
DST = "127.0.0.1"

# kamailio-cfg/auth/subscribers.cfg
USERS = {
    "1000": "Zq7-dRft2-kLw9",
    "1001": "pE4u-Hx81-vTcA",
    "1002": "mR5s-0oPq-Jy3b",
    "1003": "1234",
    "1004": "Wn8c-Ue2G-hX6z",
    "1005": "tA9k-Lb3V-qM1e",
    "2000": "Gv2p-Rs7N-cY4w",
}
LEGIT_USER = "2000"
WEAK_USER, WEAK_PASS = "1003", "1234"


def start_auth_kam(factory, name: str, **defines) -> sipg.Kamailio:
    """The sipguard-auth test config via the conftest factory."""
    return factory(name=name, cfg=AUTH_CFG, **defines)


# ----------------------------------------------------------------------------
# digest


def parse_challenge(value: str) -> dict:
    """'Digest realm="x", nonce="y", qop="auth"' -> {"realm": "x", ...}."""
    v = value.strip()
    assert v[:6].lower() == "digest", value
    out = {}
    for m in re.finditer(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', v[6:]):
        out[m.group(1).lower()] = m.group(2) if m.group(2) is not None else m.group(3)
    return out


def md5hex(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def digest_header(ch: dict, method: str, uri: str, user: str, password: str,
                  nc: int = 1, cnonce: str | None = None,
                  username_field: str | None = None) -> str:
    """Credentials (the header value) answering challenge `ch`; MD5, qop=auth
    if offered, else RFC 2069 style. `username_field` replaces the text of
    the username parameter (the response is still computed for `user`)."""
    realm, nonce = ch["realm"], ch["nonce"]
    ha1 = md5hex(f"{user}:{realm}:{password}")
    ha2 = md5hex(f"{method}:{uri}")
    qops = [q.strip() for q in ch.get("qop", "").split(",") if q.strip()]
    parts = [username_field or f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"',
             f'uri="{uri}"']
    if "auth" in qops:
        cnonce = cnonce or uuid.uuid4().hex[:16]
        ncs = f"{nc:08x}"
        resp = md5hex(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
        parts += [f'response="{resp}"', "algorithm=MD5", f'cnonce="{cnonce}"', f"nc={ncs}",
                  "qop=auth"]
    else:
        resp = md5hex(f"{ha1}:{nonce}:{ha2}")
        parts += [f'response="{resp}"', "algorithm=MD5"]
    if "opaque" in ch:
        parts.append(f'opaque="{ch["opaque"]}"')
    return "Digest " + ", ".join(parts)


# ----------------------------------------------------------------------------
# a UDP SIP client


@dataclass
class Dialog:
    callid: str = field(default_factory=lambda: uuid.uuid4().hex)
    ftag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    cseq: int = 0


class SipClient(sipg._SocketOwner):
    """UDP client bound to (src, port 0 or given) that sends one request and
    waits for its final reply (1xx skipped; replies of other transactions
    ignored)."""

    def __init__(self, src: str, dport: int, dst: str = DST, ua: str = "sipguard-e2e-phone",
                 sport: int = 0):
        self.src, self.dst, self.dport, self.ua = src, dst, dport, ua
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((src, sport))
        self.sport = self.sock.getsockname()[1]
        self.sent = 0

    def build(self, method: str, ruri: str, from_uri: str, to_uri: str, dlg: Dialog,
              auth: tuple | None = None, expires: int | None = None,
              extra: str = "") -> tuple:
        dlg.cseq += 1
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.src}:{self.sport};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <{from_uri}>;tag={dlg.ftag}",
            f"To: <{to_uri}>",
            f"Call-ID: {dlg.callid}",
            f"CSeq: {dlg.cseq} {method}",
        ]
        user = from_uri.split(":", 1)[1].split("@")[0] if "@" in from_uri else "anon"
        if method in ("REGISTER", "INVITE", "SUBSCRIBE"):
            lines.append(f"Contact: <sip:{user}@{self.src}:{self.sport}>")
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if method == "SUBSCRIBE":
            lines.append("Event: presence")
        if auth:
            lines.append(f"{auth[0]}: {auth[1]}")
        lines.append(f"User-Agent: {self.ua}")
        msg = "\r\n".join(lines) + "\r\n" + extra + "Content-Length: 0\r\n\r\n"
        return msg.encode(), branch

    def send(self, data: bytes):
        self.sock.sendto(data, (self.dst, self.dport))
        self.sent += 1

    def wait_final(self, callid: str, cseq: int, timeout: float = 2.0):
        """The final reply (sipg.Reply) for this Call-ID and CSeq, or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError, ConnectionRefusedError):
                continue
            r = sipg.parse_sip_reply(data)
            if r is None or r.callid != callid or r.code < 200:
                continue
            cs = (r.header("CSeq") or "").split()
            if cs and cs[0] == str(cseq):
                return r

    def transact(self, method: str, ruri: str, from_uri: str, to_uri: str,
                 dlg: Dialog | None = None, auth: tuple | None = None,
                 expires: int | None = None, timeout: float = 2.0, extra: str = ""):
        dlg = dlg or Dialog()
        msg, _ = self.build(method, ruri, from_uri, to_uri, dlg, auth, expires, extra)
        self.send(msg)
        r = self.wait_final(dlg.callid, dlg.cseq, timeout)
        if r is not None and method == "INVITE" and r.code >= 300:
            self.ack(r, ruri, from_uri, dlg)
        return r

    def ack(self, reply, ruri, from_uri, dlg):
        """ACK a negative INVITE reply (stops tm's retransmissions)."""
        via = reply.header("Via") or ""
        to = reply.header("To") or ""
        msg = (f"ACK {ruri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n"
               f"From: <{from_uri}>;tag={dlg.ftag}\r\nTo: {to}\r\nCall-ID: {dlg.callid}\r\n"
               f"CSeq: {dlg.cseq} ACK\r\nUser-Agent: {self.ua}\r\nContent-Length: 0\r\n\r\n")
        self.send(msg.encode())

    # -- REGISTER with digest -------------------------------------------------
    def register(self, user: str, password: str, domain: str = DST, expires: int = 300,
                 timeout: float = 2.0, dlg: Dialog | None = None) -> list:
        """REGISTER user@domain; answer a 401/407 once with credentials.
        Returns the final status codes in order (None for no answer), e.g.
        [401, 200], or [401, 401] for a wrong password, [None] if dropped."""
        dlg = dlg or Dialog()
        ruri, aor = f"sip:{domain}", f"sip:{user}@{domain}"
        codes = []
        r = self.transact("REGISTER", ruri, aor, aor, dlg, expires=expires, timeout=timeout)
        codes.append(r.code if r else None)
        if r is None or r.code not in (401, 407):
            return codes
        hname = "WWW-Authenticate" if r.code == 401 else "Proxy-Authenticate"
        ch = parse_challenge(r.header(hname))
        cred = digest_header(ch, "REGISTER", ruri, user, password)
        r2 = self.transact("REGISTER", ruri, aor, aor, dlg,
                           auth=("Authorization" if r.code == 401 else "Proxy-Authorization",
                                 cred), expires=expires, timeout=timeout)
        codes.append(r2.code if r2 else None)
        self.last = r2
        return codes


def register(src: str, dport: int, user: str, password: str, **kw) -> list:
    with SipClient(src, dport) as c:
        return c.register(user, password, **kw)


def request(src: str, dport: int, method: str, user: str, from_user: str = "caller",
            domain: str = DST, ua: str = "sipguard-e2e-phone", timeout: float = 2.0,
            from_domain: str | None = None):
    """One request without credentials to user@domain; its final reply or None."""
    with SipClient(src, dport, ua=ua) as c:
        to = f"sip:{user}@{domain}"
        ruri = f"sip:{domain}" if method == "REGISTER" else to
        frm = f"sip:{from_user}@{from_domain or domain}" if method != "REGISTER" else to
        return c.transact(method, ruri, frm, to, timeout=timeout,
                          expires=60 if method == "REGISTER" else None)


# ----------------------------------------------------------------------------
# reply shape


def shape(reply) -> dict:
    """What a scanner can compare between two replies: status line, header
    names in order, total length, and the challenge's parameter names with
    the length of each value."""
    ch = {}
    for hn in ("WWW-Authenticate", "Proxy-Authenticate"):
        v = reply.header(hn)
        if v is not None:
            ch = {k: len(x) for k, x in parse_challenge(v).items()}
            ch["_params_order"] = tuple(m.group(1).lower()
                                        for m in re.finditer(r"(\w+)\s*=", v[6:]))
    return {"status": (reply.code, reply.reason),
            "headers": [k for k, _ in reply.headers],
            "length": len(reply.raw),
            "challenge": ch}


# ----------------------------------------------------------------------------
# SIPVicious (Debian sipvicious 0.3.3)
#
# svwar and svcrack accept -b but never pass it on to their scanner class:
# they bind 0.0.0.0 (svcrack port 5060 or the next free one), so their
# packets to 127.0.0.1 always come from 127.0.0.1. Tests therefore use
# 127.0.0.1 as the attacker and other 127.x addresses for everybody else.
# -x sets the address they write into Via/Contact.

TOOL_SRC = "127.0.0.1"


def _run(argv: list, timeout: float) -> subprocess.CompletedProcess:
    sipg.require_tools(argv[0])
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return subprocess.CompletedProcess(argv, -9, out, err)


def svwar(port: int, method: str = "REGISTER", ext_range: str = "995-1010",
          force: bool = False, select_time: float | None = None, max_time: int = 3,
          timeout: float = 90) -> dict:
    """svwar -m method -e ext_range against 127.0.0.1:port. Returns the
    extensions it reported as existing (any kind: reqauth, noauth, weird),
    its output, and whether its initial check gave up ("authentication
    request for an unknown extension")."""
    argv = [SVWAR, "-x", TOOL_SRC, "-m", method, "-e", ext_range, "--maximumtime",
            str(max_time)]
    if force:
        argv.append("--force")
    if select_time is not None:
        argv += ["-t", str(select_time)]
    argv.append(f"udp://{DST}:{port}")
    r = _run(argv, timeout)
    out = r.stdout + r.stderr
    found = set(re.findall(r"extension '([^']+)' (?:exists|probably exists)", out))
    # the final table: "| 1003      | reqauth        |"
    for m in re.finditer(r"^\|\s*(\S+)\s*\|\s*(reqauth|noauth|weird)\s*\|", r.stdout, re.M):
        found.add(m.group(1))
    return {"found": found, "out": out, "rc": r.returncode,
            "refused": "authentication request for an unknown extension" in out}


def svcrack(port: int, user: str, dictionary: Path, select_time: float | None = None,
            max_time: int = 3, timeout: float = 120) -> dict:
    """svcrack -u user -d dictionary against 127.0.0.1:port. Returns the
    (user, password) pairs of its result table (empty: found nothing).
    (Its -n, nonce reuse, crashes in 0.3.3: KeyError 'algorithm'.)"""
    argv = [SVCRACK, "-x", TOOL_SRC, "-u", user, "-d", str(dictionary), "--maximumtime",
            str(max_time)]
    if select_time is not None:
        argv += ["-t", str(select_time)]
    argv.append(f"udp://{DST}:{port}")
    r = _run(argv, timeout)
    out = r.stdout + r.stderr
    table = [(a, b) for a, b in re.findall(r"^\|\s*(\S+)\s*\|\s*(\S+)\s*\|", r.stdout, re.M)
             if a != "Extension"]
    return {"found": table, "out": out, "rc": r.returncode,
            "nothing": "found nothing" in out}


def write_dictionary(path: Path, words: list) -> Path:
    path.write_text("\n".join(words) + "\n")
    return path


# ----------------------------------------------------------------------------
# the legitimate phone


class LegitPhone:
    """User 2000 re-registering with the right password from its own
    address in a background thread (one REGISTER pair every `interval` s,
    at most max_rounds rounds) while a test attacks. Every round's codes
    are kept; ok() is true when every round ended in 200."""

    def __init__(self, port: int, src: str = "127.0.0.77", user: str = "2000",
                 interval: float = 0.5, max_rounds: int = 400):
        self.port, self.src, self.user = port, src, user
        self.interval, self.max_rounds = interval, max_rounds
        self.rounds: list = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with SipClient(self.src, self.port) as c:
            dlg = Dialog()
            while not self._stop.is_set() and len(self.rounds) < self.max_rounds:
                self.rounds.append(c.register(self.user, USERS[self.user], dlg=dlg))
                self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        # the first round must succeed before the attack starts
        deadline = time.monotonic() + 10
        while not self.rounds and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.rounds and self.rounds[0][-1] == 200, f"legit phone: {self.rounds}"
        self._entered = len(self.rounds)
        return self

    def __exit__(self, *a):
        # one more complete round after the attack, then stop
        deadline = time.monotonic() + 10
        while len(self.rounds) <= self._entered and time.monotonic() < deadline \
                and self._t.is_alive():
            time.sleep(0.05)
        self._stop.set()
        self._t.join(30)

    def check(self, min_rounds: int = 2):
        bad = [r for r in self.rounds if r[-1] != 200]
        assert not bad, f"legit phone {self.user}@{self.src} not served: {bad} of {self.rounds}"
        assert len(self.rounds) >= min_rounds, self.rounds


# ----------------------------------------------------------------------------
# log


SGTEST_RE = re.compile(r"sgtest: (?P<what>\w+) (?P<rest>.*)$")
THROTTLE_RE = re.compile(r"sipguard: THROTTLE user=(?P<user>\S+) failures=(?P<failures>\d+)"
                         r" duration=(?P<duration>\d+)\s*$")
UNTHROTTLE_RE = re.compile(r"sipguard: UNTHROTTLE user=(?P<user>\S+)"
                           r" reason=(?P<reason>expired|rpc)\s*$")


def sgtest(kam, what: str, src: str | None = None) -> list:
    """The test config's "sgtest: WHAT k=v ..." lines as dicts."""
    out = []
    for line in kam.log_text().splitlines():
        m = SGTEST_RE.search(line)
        if not m or m["what"] != what:
            continue
        d = dict(kv.split("=", 1) for kv in m["rest"].split() if "=" in kv)
        if src is None or d.get("src") == src:
            out.append(d)
    return out


def log_matches(kam, rx) -> list:
    return [m.groupdict() for m in (rx.search(l) for l in kam.log_text().splitlines()) if m]


# ----------------------------------------------------------------------------
# a phone that answers every INVITE with a fixed status


class FakePhone:
    """Registers `user` from src with its password, then answers every
    request of `methods` (INVITE by default; ACKs and the rest are ignored)
    that reaches its socket with `code`, its reply lines ended by `eol`
    ("\\n": bare LF, as some SIP stacks write them) and its status line
    starting with `version` (RFC 3261 lets case vary), in a thread, until
    closed. Bounded: at most 200 requests."""

    def __init__(self, port: int, src: str, user: str, code: int = 404,
                 reason: str = "Not Found", eol: str = "\r\n",
                 methods: tuple = (b"INVITE",), version: str = "SIP/2.0"):
        self.client = SipClient(src, port)
        self.user, self.code, self.reason = user, code, reason
        self.version = version
        self.eol, self.methods = eol, methods
        self.answered = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        codes = self.client.register(self.user, USERS[self.user])
        assert codes == [401, 200], codes
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join(10)
        self.client.close()

    def _run(self):
        s = self.client.sock
        for _ in range(200):
            if self._stop.is_set():
                return
            s.settimeout(0.2)
            try:
                data, addr = s.recvfrom(65536)
            except (socket.timeout, TimeoutError, ConnectionRefusedError):
                continue
            except OSError:
                return
            if not any(data.startswith(m + b" ") for m in self.methods):
                continue
            head = re.split(r"\r?\n", data.split(b"\r\n\r\n", 1)[0].decode(errors="replace"))[1:]
            keep = [h for h in head if re.match(r"(?i)(via|v|from|f|call-id|i|cseq)\s*:", h)]
            to = next(h for h in head if re.match(r"(?i)(to|t)\s*:", h))
            e = self.eol
            rep = (f"{self.version} {self.code} {self.reason}{e}" + e.join(keep) +
                   f"{e}{to};tag=phone{self.answered}{e}Content-Length: 0{e}{e}")
            s.sendto(rep.encode(), addr)
            self.answered += 1


# ----------------------------------------------------------------------------
# an attacker's client: every header written by hand (test_attacker.py)
#
# Requests are built from explicit header values, so a test can send what
# an adversary who read the source would send: odd Call-IDs, quoted display
# names holding '<', repeated or folded headers, non-ASCII bytes, bare-LF
# line ends. Replies are parsed tolerantly (CRLF or bare LF) and matched by
# Call-ID after trimming and by CSeq number.


def parse_reply_any(data: bytes):
    """A sipg.Reply from a reply with CRLF or bare-LF line ends (folded
    lines joined), or None if it is not a SIP reply."""
    if not data.startswith(b"SIP/2.0 "):
        return None
    m = re.search(rb"\r?\n\r?\n", data)
    head, body = (data[:m.start()], data[m.end():]) if m else (data, b"")
    first, *rest = re.split(r"\r?\n", head.decode("utf-8", "replace"))
    ms = re.match(r"SIP/2\.0 (\d{3}) ?(.*)$", first)
    if not ms:
        return None
    hdrs = []
    for line in rest:
        if line[:1] in (" ", "\t") and hdrs:
            hdrs[-1] = (hdrs[-1][0], hdrs[-1][1] + " " + line.strip())
            continue
        k, _, v = line.partition(":")
        hdrs.append((k.strip(), v.strip()))
    return sipg.Reply(int(ms.group(1)), ms.group(2), hdrs, body, data)


def build_request(method: str, ruri: str, *, src: str, sport: int, from_hdr: str, to_hdr: str,
                  call_id: str, cseq: int, transport: str = "UDP", headers=(),
                  ua: str | None = "sipguard-e2e-phone", contact: str | None = None,
                  expires: int | None = None, body: bytes = b"", eol: str = "\r\n") -> bytes:
    """One request; header values are used exactly as given (they may hold
    folding, control characters or UTF-8). `headers`: extra "Name: value"
    lines, placed before User-Agent."""
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: SIP/2.0/{transport} {src}:{sport};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: {from_hdr}",
        f"To: {to_hdr}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
    ]
    if contact:
        lines.append(f"Contact: {contact}")
    if expires is not None:
        lines.append(f"Expires: {expires}")
    lines += list(headers)
    if ua is not None:
        lines.append(f"User-Agent: {ua}")
    lines.append(f"Content-Length: {len(body)}")
    return (eol.join(lines) + eol + eol).encode("utf-8") + body


class RawClient(sipg._SocketOwner):
    """A UDP or TCP client from a chosen 127.x source for hand-written
    requests. `transact` sends one and returns its final reply (sipg.Reply,
    tolerant parse) or None; negative INVITE replies are ACKed."""

    def __init__(self, src: str, dport: int, dst: str = DST, transport: str = "UDP",
                 sport: int = 0, timeout: float = 5.0):
        self.src, self.dst, self.dport = src, dst, dport
        self.transport = transport.upper()
        if self.transport == "TCP":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.bind((src, sport))
            self.sock.connect((dst, dport))
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((src, sport))
        self.sport = self.sock.getsockname()[1]
        self.buf = b""
        self.received: list = []      # every reply seen, raw bytes

    def send(self, data: bytes):
        if self.transport == "TCP":
            self.sock.sendall(data)
        else:
            self.sock.sendto(data, (self.dst, self.dport))

    def _next_message(self, deadline: float):
        """The next message (raw bytes) or None at the deadline / close."""
        while True:
            if self.transport == "TCP":
                m = re.search(rb"\r?\n\r?\n", self.buf)
                if m:
                    cl = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)",
                                   self.buf[:m.start()])
                    end = m.end() + (int(cl.group(1)) if cl else 0)
                    if len(self.buf) >= end:
                        msg, self.buf = self.buf[:end], self.buf[end:]
                        return msg
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(262144)
            except (socket.timeout, TimeoutError, ConnectionRefusedError):
                continue
            except OSError:
                return None
            if self.transport != "TCP":
                return data
            if not data:
                return None
            self.buf += data

    def wait_final(self, call_id: str, cseq: int, timeout: float = 2.0):
        deadline = time.monotonic() + timeout
        while True:
            data = self._next_message(deadline)
            if data is None:
                return None
            r = parse_reply_any(data)
            if r is None:
                continue
            self.received.append(data)
            if (r.callid or "").strip() != call_id.strip() or r.code < 200:
                continue
            cs = (r.header("CSeq") or "").split()
            if cs and cs[0] == str(cseq):
                return r

    def transact(self, method: str, ruri: str, *, frm: str, to: str, dlg: Dialog | None = None,
                 headers=(), ua: str | None = "sipguard-e2e-phone", auth: tuple | None = None,
                 expires: int | None = None, timeout: float = 2.0, contact: str | None = None,
                 eol: str = "\r\n"):
        """`frm` / `to`: a URI (put in <> with the dialog's From tag) or a
        whole header value (starting with '<' or '"'; the From tag is
        appended unless it has one)."""
        dlg, from_hdr = self.send_request(method, ruri, frm=frm, to=to, dlg=dlg,
                                          headers=headers, ua=ua, auth=auth, expires=expires,
                                          contact=contact, eol=eol)
        return self.finish(method, ruri, dlg, from_hdr, timeout)

    def send_request(self, method: str, ruri: str, *, frm: str, to: str,
                     dlg: Dialog | None = None, headers=(), ua: str | None = "sipguard-e2e-phone",
                     auth: tuple | None = None, expires: int | None = None,
                     contact: str | None = None, eol: str = "\r\n") -> tuple:
        """Send one request (as transact); returns (dialog, From value) for
        finish()."""
        dlg = dlg or Dialog()
        dlg.cseq += 1
        from_hdr = frm if frm[:1] in ('<', '"') else f"<{frm}>"
        if "tag=" not in from_hdr:
            from_hdr += f";tag={dlg.ftag}"
        to_hdr = to if to[:1] in ('<', '"') else f"<{to}>"
        hdrs = list(headers)
        if auth:
            hdrs.append(f"{auth[0]}: {auth[1]}")
        if contact is None and method in ("REGISTER", "INVITE", "SUBSCRIBE"):
            contact = f"<sip:probe@{self.src}:{self.sport}>"
        msg = build_request(method, ruri, src=self.src, sport=self.sport, from_hdr=from_hdr,
                            to_hdr=to_hdr, call_id=dlg.callid, cseq=dlg.cseq,
                            transport=self.transport, headers=hdrs, ua=ua, contact=contact,
                            expires=expires, eol=eol)
        self.send(msg)
        return dlg, from_hdr

    def finish(self, method: str, ruri: str, dlg: Dialog, from_hdr: str, timeout: float = 2.0):
        """The final reply of the request send_request() sent (ACKed if a
        negative INVITE reply), or None."""
        r = self.wait_final(dlg.callid, dlg.cseq, timeout)
        if r is not None and method == "INVITE" and r.code >= 300:
            self.ack(r, ruri, from_hdr, dlg)
        return r

    def ack(self, reply, ruri: str, from_hdr: str, dlg: Dialog):
        via = reply.header("Via") or ""
        to = reply.header("To") or ""
        msg = (f"ACK {ruri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n"
               f"From: {from_hdr}\r\nTo: {to}\r\nCall-ID: {dlg.callid}\r\n"
               f"CSeq: {dlg.cseq} ACK\r\nContent-Length: 0\r\n\r\n")
        self.send(msg.encode())

    def register_digest(self, user: str, password: str, dlg: Dialog | None = None,
                        username_field: str | None = None, domain: str = DST,
                        timeout: float = 2.0, to_user: str | None = None) -> list:
        """REGISTER to_user@domain (default: user), answer the 401 once with
        credentials of `user`/`password` whose username parameter text is
        `username_field` (default username="user"). Codes as register()."""
        dlg = dlg or Dialog()
        ruri, aor = f"sip:{domain}", f"sip:{to_user or user}@{domain}"
        codes = []
        r = self.transact("REGISTER", ruri, frm=aor, to=aor, dlg=dlg, expires=60,
                          timeout=timeout)
        codes.append(r.code if r else None)
        if r is None or r.code != 401:
            return codes
        ch = parse_challenge(r.header("WWW-Authenticate"))
        cred = digest_header(ch, "REGISTER", ruri, user, password,
                             username_field=username_field)
        r2 = self.transact("REGISTER", ruri, frm=aor, to=aor, dlg=dlg, expires=60,
                           auth=("Authorization", cred), timeout=timeout)
        codes.append(r2.code if r2 else None)
        self.last = r2
        return codes


def sipguard_users(kam) -> dict:
    """{user: entry} from sipguard.users (numbers as ints)."""
    out = kam.kamcmd("sipguard.users").stdout
    return {str(u.get("user")): {k: sipg._num(v) for k, v in u.items()}
            for u in sipg.leaf_structs(sipg.parse_tree(out)) if "user" in u}


def nonce_of(reply) -> bytes:
    """The decoded binary nonce of a reply's challenge."""
    import base64
    v = reply.header("WWW-Authenticate") or reply.header("Proxy-Authenticate")
    return base64.b64decode(parse_challenge(v)["nonce"])


def EolPhone(port: int, src: str, user: str, code: int = 404,
             reason: str = "Not Found", eol: str = "\n") -> FakePhone:
    """A FakePhone answering INVITE and OPTIONS with lines ended by `eol`."""
    return FakePhone(port, src, user, code, reason, eol=eol,
                     methods=(b"INVITE", b"OPTIONS"))

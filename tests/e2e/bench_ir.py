"""Instructions per request in Kamailio's SIP worker, counted by callgrind,
for several configs side by side (make bench-ir; scripts/bench-ir.sh).
Figures are printed (and written to build/bench-ir.txt), not asserted.

Method (the per-request-cost issue's):
  - Debian's Kamailio (/usr/sbin/kamailio) under
    `valgrind --tool=callgrind --trace-children=yes`, `-x tlsf` (pkg and shm
    memory fragmentation does not move the count), one UDP worker
    (children=1), no TCP, no IPv6: kamailio-cfg/bench/*.cfg, which differ
    only in their check (common.cfg, serve.cfg hold the rest);
  - only the worker is counted ("udp receiver child=0" of core.psx; the
    timer, ctl and main processes are other pids); an idle worker executes
    no instruction, so the count is the requests' alone;
  - requests: sipg.Sprayer's OPTIONS (no User-Agent header), each from
    the next of 20 000 loopback sources 127.100.x.y (one UDP socket,
    IP_PKTINFO; 4N <= 20 000: each source sends once), so no source comes
    near any limit; closed loop, at most WINDOW in flight, every reply
    awaited. A second section adds a User-Agent header, as phones send one
    (the scanner lists and the recipe's regex then have text to scan);
  - three phases of N, N and 2N requests, `callgrind_control -d <worker>`
    after each (a dump holds the counts since the previous one): the first
    holds start-up and warm-up and is not used; the figure is
    (count of the 2N phase - count of the N phase) / N, so whatever a phase
    costs besides its requests cancels. "1st" is the N phase alone / N,
    the issue's (count after 2N - count after N) / N: the two agree when
    nothing but requests was counted;
  - reply path: t_relay() to a sipp UAS on loopback answering 200 (per
    relayed 200 OK: the request relayed and its 200 relayed back); OPTIONS
    for a user that does not exist, answered 404 by the script (sipguard's
    normalization rewrites it into a 401 digest challenge);
  - early-drop path: one source banned (sipguard.ban over RPC, or made to
    trip pike by a burst), then its datagrams in chunks of CHUNK, each chunk
    read by the worker (the socket's rx_queue in /proc/net/udp empty)
    before the next; a phase ends with one OPTIONS from a clean source
    whose reply shows the worker is done (it cancels in the difference).

Each row starts its own Kamailio. Below the table, the cost of each part of
sipguard alone, as differences of rows. Every loop is bounded in count and
time.
BENCH_IR_N=<n> sets N (default 5000); BENCH_IR_ROWS=<substring,...> runs
only the rows whose key contains one of the substrings.
"""
from __future__ import annotations

import collections
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sipg  # noqa: E402

N = int(os.environ.get("BENCH_IR_N", "5000"))
SOURCES = 20_000
WINDOW = 32
CHUNK = 200
BANNED = "127.0.0.66"
USER_AGENT = "Yealink SIP-T46S 66.86.0.15"
VALGRIND = "/usr/bin/valgrind"
CALLGRIND_CONTROL = "/usr/bin/callgrind_control"
BENCH_CFG = sipg.REPO / "kamailio-cfg" / "bench"
OUT = sipg.BUILD_DIR / "bench-ir.txt"
STALL_S = 10.0  # no reply for this long: the rest of a phase counts as lost

UAS_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="bench-ir OPTIONS UAS">
  <recv request="OPTIONS"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
</scenario>
"""

# key, label, config, sipguard defines, traffic, baseline key
#   traffic: options (no user: stateless 200), user (a missing user: 404),
#            relay (t_relay to the UAS), banned (a banned source's datagrams)
ROWS = [
    ("OPTIONS to the server, stateless 200 (per request)", None),
    ("nocheck", "no check", "nocheck", {}, "options", None),
    ("pike", "pike 30/2s", "pike", {}, "options", "nocheck"),
    ("recipe", "article's recipe: pike + htable ipban + User-Agent regex", "recipe", {},
     "options", "nocheck"),
    ("sg", "sipguard_check(), defaults", "sipguard", {}, "options", "nocheck"),
    ("sg-rate", "sipguard: rate check only (no scanner lists, normalize_replies=0)",
     "sipguard", {"SG_NO_SCANNERS": None, "SG_NO_NORMALIZE": None}, "options", "nocheck"),
    ("sg-scan", "sipguard: rate + scanner lists (normalize_replies=0)", "sipguard",
     {"SG_NO_NORMALIZE": None}, "options", "nocheck"),
    ("sg-norm", "sipguard: rate + reply normalization (no scanner lists)", "sipguard",
     {"SG_NO_SCANNERS": None}, "options", "nocheck"),
    ("sg-ed", "sipguard_check(), defaults + early_drop=1", "sipguard",
     {"SG_EARLY_DROP": None}, "options", "nocheck"),
    (f"The same with a User-Agent header ({USER_AGENT!r}, as phones send)", None),
    ("ua-nocheck", "no check", "nocheck", {}, "options-ua", None),
    ("ua-recipe", "article's recipe", "recipe", {}, "options-ua", "ua-nocheck"),
    ("ua-sg", "sipguard_check(), defaults", "sipguard", {}, "options-ua", "ua-nocheck"),
    ("ua-sg-rate", "sipguard: rate check only (no scanner lists, normalize_replies=0)",
     "sipguard", {"SG_NO_SCANNERS": None, "SG_NO_NORMALIZE": None}, "options-ua",
     "ua-nocheck"),
    ("ua-sg-scan", "sipguard: rate + scanner lists (normalize_replies=0)", "sipguard",
     {"SG_NO_NORMALIZE": None}, "options-ua", "ua-nocheck"),
    ("Reply path (per request and its reply)", None),
    ("relay", "relayed 200 OK (t_relay to a sipp UAS), no check", "nocheck", {}, "relay", None),
    ("relay-sg", "relayed 200 OK, sipguard_check() defaults", "sipguard", {}, "relay", "relay"),
    ("404", "OPTIONS to a missing user, 404, no check", "nocheck", {}, "user", None),
    ("404-sg-raw", "the same, sipguard normalize_replies=0: the 404 as is", "sipguard",
     {"SG_NO_NORMALIZE": None}, "user", "404"),
    ("404-sg", "the same, sipguard defaults: the 404 rewritten into a 407 challenge",
     "sipguard", {}, "user", "404"),
    ("Early-drop path (per datagram of a banned source)", None),
    ("ban-pike", "pike: blocked source dropped in the script", "pike", {}, "banned", None),
    ("ban-recipe", "article's recipe: htable ipban in the script", "recipe", {}, "banned",
     "ban-pike"),
    ("ban-sg", "sipguard early_drop=0: sipguard_check() drops it in the script", "sipguard",
     {}, "banned", "ban-pike"),
    ("ban-sg-ed", "sipguard early_drop=1: dropped before parsing", "sipguard",
     {"SG_EARLY_DROP": None}, "banned", "ban-pike"),
]

_CALLID_RE = re.compile(rb"^(?:Call-ID|i)\s*:\s*(\S+)", re.M | re.I)


class Sender(sipg.Sprayer):
    """sipg.Sprayer that counts every reply by status, and builds requests
    with a User-Agent, optionally for a user, optionally with a given
    Call-ID prefix (to tell a banned source's replies apart)."""

    def __init__(self, dst: str, dport: int):
        super().__init__(dst, dport)
        self.status: collections.Counter = collections.Counter()
        self.flood_replies = 0

    def drain(self):
        while True:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                continue
            if not data.startswith(b"SIP/2.0 "):
                continue
            self.replies += 1
            self.status[data[8:11].decode()] += 1
            m = _CALLID_RE.search(data)
            if m and m.group(1).startswith(b"flood"):
                self.flood_replies += 1

    def wait(self, timeout: float):
        select.select([self.sock], [], [], timeout)

    def request(self, src: str, seq: int, user: str | None = None, tag: str = "",
                ua: bool = False) -> bytes:
        """sipg.Sprayer's OPTIONS, for `user` if given, with a User-Agent
        header if `ua`, with `tag` before the Call-ID and branch."""
        ruri = f"sip:{user}@{self.dst}:{self.dport}" if user else f"sip:{self.dst}:{self.dport}"
        to = f"sip:{user}@{self.dst}" if user else f"sip:{self.dst}"
        return (
            f"OPTIONS {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {src}:{self.sport};branch=z9hG4bK{tag}{seq:x}sg;rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:spray@{src}>;tag={seq:x}\r\n"
            f"To: <{to}>\r\n"
            f"Call-ID: {tag}{seq:x}@{src}\r\n"
            f"CSeq: 1 OPTIONS\r\n"
            + (f"User-Agent: {USER_AGENT}\r\n" if ua else "")
            + "Content-Length: 0\r\n\r\n"
        ).encode()


class CgKamailio(sipg.Kamailio):
    """sipg.Kamailio started under callgrind with -x tlsf."""

    def argv(self, check_only: bool = False) -> list:
        a = super().argv(check_only) + ["-x", "tlsf"]
        if check_only:
            return a
        return [VALGRIND, "--tool=callgrind", "--trace-children=yes",
                f"--callgrind-out-file={self.cgdir}/cg.%p"] + a


def _udp_socket_row(port: int) -> list | None:
    """The /proc/net/udp row of the socket bound to 127.0.0.1:port."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            p = line.split()
            if p[1] == want:
                return p
    return None


def rx_queue(port: int) -> int:
    """Bytes waiting in the UDP socket bound to 127.0.0.1:port (-1: none)."""
    p = _udp_socket_row(port)
    return int(p[4].split(":")[1], 16) if p else -1


def socket_drops(port: int) -> int:
    """Datagrams that socket dropped (0: no such socket)."""
    p = _udp_socket_row(port)
    return int(p[12]) if p else 0


class Row:
    def __init__(self, tmp: Path, key: str, cfg: str, defines: dict, traffic: str):
        self.key, self.traffic = key, traffic
        self.tmp = tmp / key
        self.tmp.mkdir()
        self.srcs = sipg.source_addresses(SOURCES, first_octet2=100)
        self.next_src = 0
        self.lost = 0
        self.uas = None
        rundir = self.tmp / "run"
        subst = [f"--substdef=!SG_RUNDIR!{rundir}!g"]
        if traffic == "relay":
            uas_port = sipg.free_port()
            xml = self.tmp / "uas.xml"
            xml.write_text(UAS_XML)
            self.uas = sipg.sipp_callee(str(xml), self.tmp, uas_port, count=4 * N + 1000,
                                        timeout_s=600)
            subst.append(f"--substdef=!BENCH_UAS!sip:127.0.0.1:{uas_port}!g")
        k = CgKamailio(cfg=BENCH_CFG / f"{cfg}.cfg", workdir=self.tmp, name=key,
                       defines=dict(defines), extra_args=subst, shm_mb=256)
        k.no_default_defines = True
        k.cgdir = self.tmp
        k.rundir = rundir
        rundir.mkdir(exist_ok=True)
        k.ctl = rundir / "kamailio_ctl"
        self.k = k
        try:
            k.start(timeout=120)
            self.worker = self.worker_pid()
        except Exception:
            k.kill()
            if self.uas:
                self.uas.kill()
            raise
        self.dumps = 0
        self.snd = Sender("127.0.0.1", k.port)
        self.drops0 = socket_drops(k.port)

    def worker_pid(self) -> int:
        out = self.k.kamcmd("core.psx").stdout
        for r in sipg.parse_kamcmd(out):
            if "udp receiver child=0" in str(r.get("DSC", "")):
                return int(r["PID"])
        raise RuntimeError(f"no UDP worker in core.psx: {out}")

    def dump(self) -> int:
        """Dump the worker's counts; returns the Ir since the last dump."""
        subprocess.run([CALLGRIND_CONTROL, "-d", str(self.worker)], check=True,
                       capture_output=True, timeout=60)
        self.dumps += 1
        f = self.tmp / f"cg.{self.worker}.{self.dumps}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if f.exists():
                m = re.search(r"^totals:\s*(\d+)", f.read_text(errors="replace"), re.M)
                if m:
                    return int(m.group(1))
            time.sleep(0.05)
        raise RuntimeError(f"dump {f} missing or without totals")

    def src(self) -> tuple[str, int]:
        i = self.next_src
        self.next_src += 1
        return self.srcs[i % SOURCES], i

    def closed_loop(self, n: int):
        """n requests from rotating sources, at most WINDOW in flight,
        until every reply came back (or STALL_S without one)."""
        s = self.snd
        target = s.replies + n
        sent = 0
        last, last_t = s.replies, time.monotonic()
        while s.replies < target:
            while sent < n and sent - (s.replies - (target - n)) < WINDOW:
                src, i = self.src()
                user = str(100000 + i) if self.traffic == "user" else None
                req = s.request(src, i, user, ua=self.traffic == "options-ua")
                if not s.send_from(src, req):
                    self.next_src -= 1
                    break
                sent += 1
            s.wait(0.01)
            s.drain()
            now = time.monotonic()
            if s.replies != last:
                last, last_t = s.replies, now
            elif now - last_t > STALL_S:
                self.lost += target - s.replies
                return

    def ban(self):
        """Get BANNED banned: by RPC for sipguard, by a burst for pike."""
        if self.key.startswith("ban-sg"):
            self.k.kamcmd("sipguard.ban", BANNED, "1d")
        else:
            self.flood(100)
            time.sleep(0.2)
            self.snd.drain()

    def flood(self, n: int):
        """n datagrams of BANNED in chunks, each chunk read before the next."""
        s = self.snd
        sent = 0
        while sent < n:
            for _ in range(min(CHUNK, n - sent)):
                if not s.send_from(BANNED, s.request(BANNED, sent, tag="flood")):
                    break
                sent += 1
            deadline = time.monotonic() + STALL_S
            while rx_queue(self.k.port) > 0 and time.monotonic() < deadline:
                time.sleep(0.001)
            s.drain()

    def phase(self, n: int):
        if self.traffic == "banned":
            self.flood(n)
            self.closed_loop(1)  # the worker has read everything before it
        else:
            self.closed_loop(n)

    def measure(self) -> dict:
        if self.traffic == "banned":
            self.ban()
        t0 = time.monotonic()
        self.phase(N)
        self.dump()
        st0, fl0 = dict(self.snd.status), self.snd.flood_replies
        self.phase(N)
        d1 = self.dump()
        self.phase(2 * N)
        d2 = self.dump()
        status = {c: v - st0.get(c, 0) for c, v in self.snd.status.items() if v - st0.get(c, 0)}
        return {"ir": (d2 - d1) / N, "first": d1 / N, "secs": time.monotonic() - t0,
                "status": status, "lost": self.lost,
                "drops": socket_drops(self.k.port) - self.drops0,
                "flood_replies": self.snd.flood_replies - fl0}

    def close(self):
        try:
            self.snd.close()
        finally:
            self.k.kill()
            if self.uas:
                self.uas.kill()


def note(r: dict, traffic: str) -> str:
    parts = []
    st = ",".join(f"{c}x{v}" for c, v in sorted(r["status"].items()))
    parts.append(f"replies {st or 'none'}")
    if traffic == "banned":
        parts.append(f"answered banned {r['flood_replies']}")
    if r["lost"]:
        parts.append(f"LOST {r['lost']}")
    if r["drops"]:
        parts.append(f"socket drops {r['drops']}")
    return "; ".join(parts)


def main() -> int:
    for t in (sipg.KAMAILIO, sipg.KAMCMD, sipg.SIPP, VALGRIND, CALLGRIND_CONTROL):
        if not os.access(t, os.X_OK):
            print(f"bench-ir: {t} missing", file=sys.stderr)
            return 1
    if not sipg.MODULE_SO.is_file():
        print("bench-ir: build/sipguard.so missing: run make", file=sys.stderr)
        return 1
    only = [s for s in os.environ.get("BENCH_IR_ROWS", "").split(",") if s]
    tmp = Path(tempfile.mkdtemp(prefix="sipguard-bench-ir-"))
    res: dict = {}
    t_start = time.monotonic()
    try:
        for row in ROWS:
            if len(row) == 2:
                continue
            key, label, cfg, defines, traffic, _ = row
            if only and not any(s in key for s in only):
                continue
            r = None
            try:
                r = Row(tmp, key, cfg, defines, traffic)
                res[key] = r.measure()
                res[key]["note"] = note(res[key], traffic)
            except Exception as e:  # a row that cannot be measured says why
                res[key] = {"error": f"n/a: {type(e).__name__}: {str(e).splitlines()[0][:120]}"}
                if r is not None:
                    res[key]["error"] += f" (log {r.k.logfile})"
            finally:
                if r is not None:
                    r.close()
            x = res[key]
            print(f"{key}: " + (x.get("error") or f"{x['ir']:,.0f} Ir/req, 1st {x['first']:,.0f},"
                                f" {x['secs']:.1f}s, {x['note']}"), file=sys.stderr, flush=True)
    finally:
        sipg.kill_all()
    elapsed = time.monotonic() - t_start

    lines = []
    kv = subprocess.run([sipg.KAMAILIO, "-v"], capture_output=True, text=True).stdout
    kver = kv.splitlines()[0] if kv else "kamailio ?"
    lines.append(f"sipguard bench-ir: instructions (callgrind Ir) per request in Kamailio's UDP "
                 f"worker, one worker, -x tlsf")
    lines.append(f"{kver}; N={N}: (Ir of a {2 * N}-request phase - Ir of a {N}-request phase) "
                 f"/ {N}; {SOURCES:,} rotating sources; {elapsed:.0f}s")
    hdr = ("", "Ir/req", "delta", "1st", "")
    table = [hdr]
    for i, row in enumerate(ROWS):
        if len(row) == 2:
            section = []
            for r in ROWS[i + 1:]:
                if len(r) == 2:
                    break
                section.append(r[0])
            if any(k in res for k in section):
                table.append((row[0], "", "", "", ""))
            continue
        key, label, _, _, traffic, base = row
        if key not in res:
            continue
        x = res[key]
        if "error" in x:
            table.append(("  " + label, "n/a", "", "", x["error"]))
            continue
        delta = ""
        if base and base in res and "ir" in res[base]:
            delta = f"{x['ir'] - res[base]['ir']:+,.0f}"
        table.append(("  " + label, f"{x['ir']:,.0f}", delta, f"{x['first']:,.0f}", x["note"]))
    w = [max(len(t[i]) for t in table) for i in range(4)]
    for t in table:
        if t[1] == "" and t[0] and not t[0].startswith("  "):
            lines.append(t[0])
            continue
        lines.append(f"{t[0].ljust(w[0])}  {t[1].rjust(w[1])}  {t[2].rjust(w[2])}  "
                     f"{t[3].rjust(w[3])}  {t[4]}".rstrip())
    lines.append("delta: over the first row of its section (relayed 200: over the relay "
                 "without a check; 404: over the 404 without a check; banned: over pike);")
    lines.append("1st: the N phase alone / N, a check (start-up is in the warm-up phase).")

    def ir(k):
        return res.get(k, {}).get("ir")

    derived = [
        ("scanner lists, no User-Agent", "sg-scan", "sg-rate"),
        ("scanner lists, with a User-Agent", "ua-sg-scan", "ua-sg-rate"),
        ("reply normalization on a 200", "sg-norm", "sg-rate"),
        ("early_drop=1 on a request of a source not banned", "sg-ed", "sg"),
        ("the 404 rewritten into a challenge", "404-sg", "404-sg-raw"),
    ]
    first = True
    for label, a, b in derived:
        if ir(a) is not None and ir(b) is not None:
            if first:
                lines.append("Each part of sipguard alone (differences of the rows above):")
                first = False
            lines.append(f"  {label}: {ir(a) - ir(b):+,.0f}")
    # a relayed 200: the request goes out and the 200 comes back through the
    # hook, where a stateless 200 passes it once: the extra pass, over the
    # same check on the stateless row
    for label, relayed, stateless in (
            ("a relayed 200's extra pass through the reply hook", "relay-sg", "sg"),):
        if None not in (ir(relayed), ir("relay"), ir(stateless), ir("nocheck")):
            if first:
                lines.append("Each part of sipguard alone (differences of the rows above):")
                first = False
            d = (ir(relayed) - ir("relay")) - (ir(stateless) - ir("nocheck"))
            lines.append(f"  {label}: {d:+,.0f}")
    # enumeration: a 404 for a user (the rule counts the name) vs a 200 to
    # the server (no name), both over their own no-check row
    if None not in (ir("404-sg-raw"), ir("404"), ir("sg-scan"), ir("nocheck")):
        if first:
            lines.append("Each part of sipguard alone (differences of the rows above):")
        e = (ir("404-sg-raw") - ir("404")) - (ir("sg-scan") - ir("nocheck"))
        lines.append(f"  enumeration rule (a request for a user name): {e:+,.0f}")
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    if any("error" in x for x in res.values()) or os.environ.get("BENCH_IR_KEEP"):
        print(f"bench-ir: logs and callgrind files kept in {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if any("ir" in x for x in res.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

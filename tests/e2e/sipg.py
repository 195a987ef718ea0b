"""Helpers for the sipguard end-to-end suite.

Everything here talks to a real Kamailio on loopback only (127.0.0.0/8 and
::1). Every loop is bounded in count and time.
"""
from __future__ import annotations

import errno
import itertools
import os
import random
import re
import signal
import socket
import struct
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
E2E = Path(__file__).resolve().parent
CFG_DIR = E2E / "cfg"
SCEN_DIR = E2E / "scenarios"
BUILD_DIR = REPO / "build"
MODULE_SO = BUILD_DIR / "sipguard.so"
KAMAILIO = "/usr/sbin/kamailio"
KAMCMD = "/usr/sbin/kamcmd"
SIPP = "/usr/bin/sipp"
FAIL2BAN_REGEX = "/usr/bin/fail2ban-regex"
FAIL2BAN_CLIENT = "/usr/bin/fail2ban-client"
KAM_SYS_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"

# One BAN / UNBAN line as the contract gives it (after Kamailio's own prefix).
BAN_RE = re.compile(
    r"sipguard: BAN src=(?P<src>\S+) key=(?P<key>\S+)"
    r" reason=(?P<reason>flood|manual|restored|scanner|enumeration|auth)"
    r" duration=(?P<duration>\d+|permanent) offences=(?P<offences>\d+)\s*$"
)
UNBAN_RE = re.compile(r"sipguard: UNBAN key=(?P<key>\S+) reason=(?P<reason>expired|rpc|evicted)\s*$")

# Every Kamailio started by this suite, so a session guard can kill leftovers.
_ALL: list["Kamailio"] = []


def mpath() -> str:
    return f"{BUILD_DIR}:{KAM_SYS_MODULES}"


def require_tools(*tools: str) -> None:
    """Fail (never skip) when a tool the test needs is missing."""
    missing = [t for t in tools if not (os.path.isfile(t) and os.access(t, os.X_OK))]
    assert not missing, f"required tools missing: {missing}"


def require_module() -> None:
    assert MODULE_SO.is_file(), f"{MODULE_SO} not built: run `make` at the repo root"


# ----------------------------------------------------------------------------
# ports


_GIVEN_PORTS: set = set()


def free_port() -> int:
    """A port free for UDP+TCP on 127.0.0.1 and ::1, below Linux's
    ephemeral range (32768-60999) so that no client socket takes it later,
    and never one this run handed out before (two ports asked for one
    Kamailio, e.g. SIP and TLS, must differ even before it binds them)."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        if port in _GIVEN_PORTS:
            continue
        socks = []
        try:
            for fam, typ, host in (
                (socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"),
                (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
                (socket.AF_INET6, socket.SOCK_DGRAM, "::1"),
                (socket.AF_INET6, socket.SOCK_STREAM, "::1"),
            ):
                s = socket.socket(fam, typ)
                socks.append(s)
                s.bind((host, port))
            _GIVEN_PORTS.add(port)
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port found")


# ----------------------------------------------------------------------------
# Kamailio process


def _stat_fields(pid) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (state, ppid,
    pgrp, ...), or [] if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return []
    return st[st.rfind(")") + 2:].split()


@dataclass
class Kamailio:
    cfg: Path
    workdir: Path
    defines: dict = field(default_factory=dict)
    name: str = "kam"
    port: int = 0
    shm_mb: int = 64
    pkg_mb: int = 8
    extra_args: list = field(default_factory=list)

    def __post_init__(self):
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rundir = self.workdir / f"{self.name}-run"
        self.rundir.mkdir(exist_ok=True)
        if not self.port:
            self.port = free_port()
        self.ctl = self.rundir / "ctl.sock"
        self.logfile = self.workdir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self._log_fh = None
        self.starts = 0

    # -- command line ---------------------------------------------------
    def all_defines(self) -> dict:
        if getattr(self, "no_default_defines", False):
            d = {"SG_PORT": str(self.port)}
        else:
            d = {
                "SG_PORT": str(self.port),
                "SG_RUNDIR": f'"{self.rundir}"',
                "SG_CTL": f'"unix:{self.ctl}"',
            }
        d.update(self.defines)
        return d

    def argv(self, check_only: bool = False) -> list:
        a = [KAMAILIO]
        a += ["-c"] if check_only else ["-DD", "-E"]
        a += ["-f", str(self.cfg)]
        # system_modules: Kamailio's own module path (an installed package)
        if not getattr(self, "system_modules", False):
            a += ["-L", mpath()]
        a += ["-Y", str(self.rundir), "-m", str(self.shm_mb), "-M", str(self.pkg_mb)]
        if not check_only:
            a += ["-P", str(self.rundir / "kamailio.pid")]
        for k, v in self.all_defines().items():
            a += ["-A", f"{k}={v}" if v is not None else k]
        return a + list(self.extra_args)

    def check(self, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(check_only=True), capture_output=True, text=True,
                              timeout=timeout)

    # -- life cycle -------------------------------------------------------
    def start(self, timeout: float = 20.0) -> "Kamailio":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if self.ctl.exists():
            self.ctl.unlink()
        self._log_fh = open(self.logfile, "ab")
        self._log_fh.write(f"\n==== start #{self.starts + 1}: {' '.join(self.argv())}\n".encode())
        self._log_fh.flush()
        self.log_offset = self.logfile.stat().st_size
        self.proc = subprocess.Popen(self.argv(), stdout=self._log_fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        _ALL.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamailio {self.name} exited with {self.proc.returncode} "
                                   f"during start:\n{self.log_tail()}")
            if self.ctl.exists():
                try:
                    r = self.kamcmd("core.version", check=False, timeout=2)
                except subprocess.TimeoutExpired:
                    # the ctl process is not answering yet (a slow start,
                    # e.g. under valgrind): ask again until the deadline
                    continue
                if r.returncode == 0:
                    return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"kamailio {self.name} did not come up in {timeout}s:\n{self.log_tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (clean shutdown: state_file saved), then SIGKILL the group."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        rc = self.proc.poll()
        self.kill()
        return rc

    def kill(self) -> None:
        """Kill the whole process group (main + children); always safe to call."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        # children reparented elsewhere keep the group id: sweep /proc too
        for pid in self.group_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._log_fh:
            self._log_fh.close()
            self._log_fh = None

    # -- processes -------------------------------------------------------
    def group_pids(self) -> list:
        if self.proc is None:
            return []
        pgid = self.proc.pid
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            rest = _stat_fields(d)
            if rest and int(rest[2]) == pgid and rest[0] != "Z":
                pids.append(int(d))
        return sorted(pids)

    def _sum_proc_field(self, name: str, field: str) -> int:
        """Sum a kB field (e.g. "VmRSS:") of /proc/<pid>/<name> over the group."""
        total = 0
        for pid in self.group_pids():
            try:
                with open(f"/proc/{pid}/{name}") as f:
                    for line in f:
                        if line.startswith(field):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def rss_kb(self) -> int:
        return self._sum_proc_field("status", "VmRSS:")

    def pss_kb(self) -> int:
        return self._sum_proc_field("smaps_rollup", "Pss:")

    def cpu_ticks(self) -> int:
        total = 0
        for pid in self.group_pids():
            rest = _stat_fields(pid)
            if rest:
                total += int(rest[11]) + int(rest[12])  # utime + stime
        return total

    # -- RPC ---------------------------------------------------------------
    def kamcmd(self, *args, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess:
        r = subprocess.run([KAMCMD, "-s", f"unix:{self.ctl}", *map(str, args)],
                           capture_output=True, text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"kamcmd {args} failed rc={r.returncode}: {r.stdout}{r.stderr}"
        return r

    def stats(self) -> dict:
        """sipguard:* counters from the statistics framework."""
        out = self.kamcmd("stats.get_statistics", "sipguard:").stdout
        res = {}
        for m in re.finditer(r"sipguard:(\w+)\s*=\s*(-?\d+)", out):
            res[m.group(1)] = int(m.group(2))
        assert res, f"no sipguard statistics in: {out!r}"
        return res

    def sg_stats(self) -> dict:
        out = self.kamcmd("sipguard.stats").stdout
        recs = parse_kamcmd(out)
        assert recs, f"sipguard.stats unparsable: {out!r}"
        merged = {}
        for r in recs:
            merged.update(r)
        return {k: _num(v) for k, v in merged.items()}

    def sg_list(self, *args) -> dict:
        """{"bans": {key: entry}, "top": [entry, ...]} from sipguard.list."""
        out = self.kamcmd("sipguard.list", *args).stdout
        bans, top = {}, []
        for r in leaf_structs(parse_tree(out)):
            r = {k: _num(v) for k, v in r.items()}
            if "key" not in r:
                continue
            if "remaining" in r or "reason" in r:
                bans[r["key"]] = r
            else:
                top.append(r)
        self.last_list_raw = out
        total = re.search(r"bans_total:\s*(\d+)", out)
        listed = re.search(r"bans_listed:\s*(\d+)", out)
        return {"bans": bans, "top": top,
                "bans_total": int(total.group(1)) if total else None,
                "bans_listed": int(listed.group(1)) if listed else None}

    def shm_used(self) -> int:
        recs = parse_kamcmd(self.kamcmd("core.shmmem").stdout)
        return int(recs[0]["real_used"])

    # -- log -------------------------------------------------------------
    def log_text(self) -> str:
        if self._log_fh:
            self._log_fh.flush()
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_text_since_start(self) -> str:
        return self.log_text()[getattr(self, "log_offset", 0):]

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def bans(self, src: str | None = None, key: str | None = None) -> list:
        out = []
        for line in self.log_text().splitlines():
            m = BAN_RE.search(line)
            if m and (src is None or m["src"] == src) and (key is None or m["key"] == key):
                out.append(m.groupdict())
        return out

    def unbans(self, key: str | None = None) -> list:
        out = []
        for line in self.log_text().splitlines():
            m = UNBAN_RE.search(line)
            if m and (key is None or m["key"] == key):
                out.append(m.groupdict())
        return out

    def wait_log(self, pred, timeout: float = 10.0, what: str = "log condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.log_tail(30)}")


def _num(v):
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
        return int(v)
    return v.strip() if isinstance(v, str) else v


def parse_tree(out: str) -> list:
    """Parse kamcmd's text output into a tree: a list of (name, value) pairs,
    value a string or a nested list (for `{ ... }` blocks)."""
    root: list = []
    stack = [root]
    for raw in out.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.endswith("{"):
            name = line[:-1].strip().rstrip(":").strip()
            node: list = []
            stack[-1].append((name, node))
            stack.append(node)
            continue
        if line == "}":
            if len(stack) > 1:
                stack.pop()
            continue
        m = re.match(r"^([\w.\-]+)\s*:\s*(.*)$", line)
        if m:
            stack[-1].append((m.group(1), m.group(2)))
        else:
            stack[-1].append(("", line))
    return root


def leaf_structs(tree: list) -> list:
    """Every `{...}` block whose fields are all scalars, as dicts, in order."""
    out = []
    for name, v in tree:
        if isinstance(v, list):
            if v and all(not isinstance(x, list) for _, x in v):
                out.append({k: x for k, x in v})
            out.extend(leaf_structs(v))
    return out


def parse_kamcmd(out: str) -> list:
    """kamcmd output as a list of flat dicts (leaf structs; loose lines first)."""
    tree = parse_tree(out)
    loose = {k: v for k, v in tree if not isinstance(v, list) and k}
    recs = leaf_structs(tree)
    return ([loose] if loose else []) + recs


# ----------------------------------------------------------------------------
# SIP clients


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def options(src: str, sport: int, dst: str, dport: int, transport: str = "UDP",
            callid: str | None = None, method: str = "OPTIONS", headers: str = "") -> tuple:
    callid = callid or uuid.uuid4().hex
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    msg = (
        f"{method} sip:{_host(dst)}:{dport} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {_host(src)}:{sport};branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:probe@{_host(src)}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:{_host(dst)}>\r\n"
        f"Call-ID: {callid}\r\n"
        f"CSeq: 1 {method}\r\n"
        + (f"Contact: <sip:probe@{_host(src)}:{sport}>\r\nExpires: 60\r\n" if method == "REGISTER" else "")
        + headers
        + "User-Agent: sipguard-e2e\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    return msg.encode(), callid


_CALLID_RE = re.compile(rb"^(?:Call-ID|i)\s*:\s*(\S+)", re.M | re.I)
_STATUS_RE = re.compile(rb"^SIP/2\.0 (\d{3})")


_VERDICT_RE = re.compile(rb"^X-Sipguard\s*:\s*(-?\d+)", re.M | re.I)


def verdict_of(data: bytes):
    m = _VERDICT_RE.search(data)
    return int(m.group(1)) if m else None


def parse_reply(data: bytes):
    m = _STATUS_RE.match(data)
    c = _CALLID_RE.search(data)
    if not m or not c:
        return None
    return int(m.group(1)), c.group(1).decode()


class _SocketOwner:
    """Closes `self.sock`; usable in a with-statement."""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


@dataclass
class Result:
    sent: int = 0
    answered: int = 0            # 200 replies
    codes: dict = field(default_factory=dict)
    answered_idx: list = field(default_factory=list)  # indexes of requests answered 200
    verdicts: dict = field(default_factory=dict)      # X-Sipguard values seen in replies
    elapsed: float = 0.0

    def __repr__(self):
        return (f"Result(sent={self.sent}, answered={self.answered}, codes={self.codes}, "
                f"verdicts={self.verdicts})")


class UdpClient(_SocketOwner):
    """A UDP SIP client bound to a given loopback source address."""

    def __init__(self, src: str, dst: str, dport: int):
        self.src, self.dst, self.dport = src, dst, dport
        fam = socket.AF_INET6 if ":" in src else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.bind((src, 0))
        self.sport = self.sock.getsockname()[1]
        self.sock.setblocking(False)

    def _drain(self, pending: dict, res: Result):
        while True:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                continue
            p = parse_reply(data)
            if not p:
                continue
            code, cid = p
            if cid in pending:
                res.codes[code] = res.codes.get(code, 0) + 1
                v = verdict_of(data)
                if v is not None:
                    res.verdicts[v] = res.verdicts.get(v, 0) + 1
                if code == 200:
                    res.answered += 1
                    res.answered_idx.append(pending[cid])
                del pending[cid]

    def run(self, n: int, interval: float = 0.0, wait: float = 1.0, method: str = "OPTIONS",
            headers: str = "") -> Result:
        """Send n requests, one every `interval` s (0 = back to back), then wait for replies."""
        return self.run_schedule([i * interval for i in range(n)], wait=wait, method=method,
                                 headers=headers)

    def run_schedule(self, times: list, wait: float = 1.0, method: str = "OPTIONS",
                     headers: str = "") -> Result:
        """Send request i at t0 + times[i] (sorted, bounded), then wait for replies."""
        assert len(times) <= 1_000_000 and (not times or max(times) <= 120)
        res = Result()
        pending: dict = {}
        t0 = time.monotonic()
        for i, at in enumerate(times):
            target = t0 + at
            while True:
                self._drain(pending, res)
                now = time.monotonic()
                if now >= target:
                    break
                time.sleep(min(0.002, target - now))
            msg, cid = options(self.src, self.sport, self.dst, self.dport, "UDP", method=method,
                               headers=headers)
            pending[cid] = i
            for _ in range(100):
                try:
                    self.sock.sendto(msg, (self.dst, self.dport))
                    break
                except BlockingIOError:
                    time.sleep(0.001)
            res.sent += 1
        end = time.monotonic() + wait
        while pending and time.monotonic() < end:
            self._drain(pending, res)
            time.sleep(0.003)
        self._drain(pending, res)
        res.elapsed = time.monotonic() - t0
        return res

    def one(self, wait: float = 1.0) -> bool:
        return self.run(1, wait=wait).answered == 1


def udp_run(src, dst, dport, n, interval=0.0, wait=1.0, method="OPTIONS") -> Result:
    with UdpClient(src, dst, dport) as c:
        return c.run(n, interval=interval, wait=wait, method=method)


class TcpClient(_SocketOwner):
    """One TCP connection from a given loopback source; requests pipelined on it."""

    def __init__(self, src: str, dst: str, dport: int, timeout: float = 3.0):
        fam = socket.AF_INET6 if ":" in src else socket.AF_INET
        self.src, self.dst, self.dport = src, dst, dport
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.bind((src, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((dst, dport))
        self.sport = self.sock.getsockname()[1]
        self.buf = b""
        self.closed_by_peer = False

    def _messages(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = self.buf[:i]
            m = re.search(rb"^(?:Content-Length|l)\s*:\s*(\d+)", head, re.M | re.I)
            clen = int(m.group(1)) if m else 0
            if len(self.buf) < i + 4 + clen:
                return
            msg = self.buf[:i + 4 + clen]
            self.buf = self.buf[i + 4 + clen:]
            yield msg

    def run(self, n: int, interval: float = 0.0, wait: float = 1.5) -> Result:
        res = Result()
        pending = {}
        t0 = time.monotonic()
        try:
            for i in range(n):
                if interval:
                    time.sleep(max(0.0, t0 + i * interval - time.monotonic()))
                msg, cid = options(self.src, self.sport, self.dst, self.dport, "TCP")
                pending[cid] = i
                self.sock.sendall(msg)
                res.sent += 1
        except (BrokenPipeError, ConnectionResetError):
            self.closed_by_peer = True
        self.sock.setblocking(False)
        end = time.monotonic() + wait
        while pending and time.monotonic() < end and not self.closed_by_peer:
            try:
                data = self.sock.recv(65535)
                if not data:
                    self.closed_by_peer = True
                    break
                self.buf += data
            except BlockingIOError:
                time.sleep(0.01)
                continue
            except ConnectionResetError:
                self.closed_by_peer = True
                break
            for m in self._messages():
                p = parse_reply(m)
                if p and p[1] in pending:
                    res.codes[p[0]] = res.codes.get(p[0], 0) + 1
                    v = verdict_of(m)
                    if v is not None:
                        res.verdicts[v] = res.verdicts.get(v, 0) + 1
                    if p[0] == 200:
                        res.answered += 1
                        res.answered_idx.append(pending[p[1]])
                    del pending[p[1]]
        res.elapsed = time.monotonic() - t0
        return res


# ----------------------------------------------------------------------------
# many sources from one socket (IP_PKTINFO picks the source address)

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def source_addresses(count: int, first_octet2: int = 10) -> list:
    """count distinct addresses 127.a.b.c (a >= first_octet2, c in 1..254)."""
    out = []
    for a, b, c in itertools.product(range(first_octet2, 255), range(256), range(1, 255)):
        out.append(f"127.{a}.{b}.{c}")
        if len(out) == count:
            return out
    raise ValueError("too many addresses")


class Sprayer:
    """One UDP socket bound to 0.0.0.0 that sends each packet from a chosen
    127.x.y.z source (IP_PKTINFO) and counts the 200 replies coming back."""

    def __init__(self, dst: str, dport: int):
        self.dst, self.dport = dst, dport
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
            self.sock.setsockopt(socket.SOL_SOCKET, 32, 8 << 20)  # SO_SNDBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("0.0.0.0", 0))
        self.sport = self.sock.getsockname()[1]
        self.sock.setblocking(False)
        self.replies = 0

    def close(self):
        self.sock.close()

    def drain(self):
        while True:
            try:
                data, anc, flags, addr = self.sock.recvmsg(4096, 256)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                continue
            if data.startswith(b"SIP/2.0 200"):
                self.replies += 1

    def packet(self, src: str, seq: int) -> bytes:
        return (
            f"OPTIONS sip:{self.dst}:{self.dport} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {src}:{self.sport};branch=z9hG4bK{seq:x}sg;rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:spray@{src}>;tag={seq:x}\r\n"
            f"To: <sip:{self.dst}>\r\n"
            f"Call-ID: {seq:x}@{src}\r\n"
            f"CSeq: 1 OPTIONS\r\n"
            f"Content-Length: 0\r\n\r\n"
        ).encode()

    def send_from(self, src: str, payload: bytes) -> bool:
        anc = [(socket.IPPROTO_IP, IP_PKTINFO,
                struct.pack("=I4s4s", 0, socket.inet_aton(src), b"\0\0\0\0"))]
        try:
            self.sock.sendmsg([payload], anc, 0, (self.dst, self.dport))
            return True
        except BlockingIOError:
            return False
        except OSError as e:
            if e.errno in (errno.ENOBUFS, errno.EAGAIN):
                return False
            raise

    def spray(self, sources, rate: float, max_seconds: float, per_source: int = 1,
              wait: float = 2.0) -> dict:
        """Send per_source requests from each source at `rate` packets/s overall.
        Stops after max_seconds whatever happened. Returns counts."""
        sent = 0
        t0 = time.monotonic()
        deadline = t0 + max_seconds
        seq = 0
        stopped_early = False
        batch = 50
        srcs = list(sources)
        for rep in range(per_source):
            for i in range(0, len(srcs), batch):
                now = time.monotonic()
                if now > deadline:
                    stopped_early = True
                    break
                target = t0 + sent / rate
                if target > now:
                    time.sleep(target - now)
                for src in srcs[i:i + batch]:
                    seq += 1
                    if self.send_from(src, self.packet(src, seq)):
                        sent += 1
                self.drain()
            if stopped_early:
                break
        send_time = time.monotonic() - t0
        end = time.monotonic() + wait
        last = -1
        while time.monotonic() < end:
            self.drain()
            if self.replies == last and self.replies >= sent:
                break
            last = self.replies
            time.sleep(0.05)
        self.drain()
        return {"sent": sent, "replies": self.replies, "send_time": send_time,
                "stopped_early": stopped_early}

    def flood(self, src: str, rate: float, seconds: float) -> dict:
        """Same packet from one source at `rate`/s for `seconds` (bounded)."""
        payload = self.packet(src, 1)
        sent = 0
        t0 = time.monotonic()
        end = t0 + seconds
        batch = 100
        while True:
            now = time.monotonic()
            if now >= end:
                break
            target = t0 + sent / rate
            if target > now:
                time.sleep(target - now)
            for _ in range(batch):
                if self.send_from(src, payload):
                    sent += 1
            self.drain()
        return {"sent": sent, "seconds": time.monotonic() - t0}


# ----------------------------------------------------------------------------
# sipp


def sipp_options(dst: str, dport: int, src: str, count: int, rate: int, workdir: Path,
                 transport: str = "u1", timeout_s: int = 30, rate_period_ms: int = 1000,
                 limit: int | None = None, recv_timeout_ms: int = 1000) -> dict:
    """Run sipp with the OPTIONS scenario; returns successful/failed counts."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tag = f"sipp-{src.replace(':', '_')}-{uuid.uuid4().hex[:6]}"
    stat = workdir / f"{tag}.csv"
    screen = workdir / f"{tag}.screen"
    errf = workdir / f"{tag}.err"
    argv = [SIPP, f"{_host(dst)}:{dport}", "-sf", str(SCEN_DIR / "options.xml"),
            "-i", src, "-p", "0", "-t", transport, "-m", str(count), "-r", str(rate),
            "-rp", str(rate_period_ms), "-l", str(limit or count), "-timeout", f"{timeout_s}s",
            "-timeout_error", "-recv_timeout", str(recv_timeout_ms), "-nostdin", "-trace_stat",
            "-stf", str(stat), "-fd", "1", "-trace_screen", "-screen_file", str(screen),
            "-trace_err", "-error_file", str(errf)]
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s + 30,
                       stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    succ = fail = None
    if stat.exists():
        lines = stat.read_text().strip().splitlines()
        if len(lines) >= 2:
            hdr = lines[0].split(";")
            last = lines[-1].split(";")
            row = dict(zip(hdr, last))
            succ = int(row.get("SuccessfulCall(C)", 0))
            fail = int(row.get("FailedCall(C)", 0))
    assert succ is not None, (f"sipp produced no statistics (rc={r.returncode}):\n"
                              f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return {"rc": r.returncode, "successful": succ, "failed": fail, "elapsed": elapsed,
            "stdout": r.stdout, "stderr": r.stderr}


def start_example(factory, tmp_path: Path, cfg: Path, **defines) -> "Kamailio":
    """Start an example config of kamailio-cfg/ as shipped: its own
    defaults, only SG_RUNDIR (and `defines`) given; `factory` stops it."""
    rundir = tmp_path / "example-run"
    k = Kamailio(cfg=cfg, workdir=tmp_path, name="example", defines=defines,
                 extra_args=[f"--substdef=!SG_RUNDIR!{rundir}!g"])
    k.rundir = rundir
    rundir.mkdir(exist_ok=True)
    k.ctl = rundir / "kamailio_ctl"
    k.no_default_defines = True
    factory.started.append(k)
    return k.start()


def kill_all():
    for k in list(_ALL):
        try:
            k.kill()
        except Exception:
            pass


def check_ip(port: int, addr: str, src: str = "127.0.0.1") -> int:
    """Ask the test config to run sipguard_check_ip(addr); returns its verdict."""
    with UdpClient(src, "127.0.0.1", port) as c:
        r = c.run(1, wait=2.0, headers=f"X-Check-IP: {addr}\r\n")
    assert r.answered == 1 and len(r.verdicts) == 1, f"no verdict for check_ip({addr}): {r}"
    return next(iter(r.verdicts))


# ----------------------------------------------------------------------------
# TLS and SIP requests with bodies (encrypted signalling and media tests)

import ssl  # noqa: E402

GEN_CERT = REPO / "scripts" / "gen-cert.sh"


def gen_cert(directory: Path) -> Path:
    """scripts/gen-cert.sh DIR (idempotent): DIR/sipguard.crt, .key, tls.cfg."""
    r = subprocess.run(["bash", str(GEN_CERT), str(directory)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, f"gen-cert.sh failed rc={r.returncode}: {r.stdout}{r.stderr}"
    return Path(directory)


def tls_context(cafile: str | Path | None = None, minimum=ssl.TLSVersion.TLSv1_2,
                maximum=ssl.TLSVersion.MAXIMUM_SUPPORTED, ciphers: str | None = None,
                ) -> ssl.SSLContext:
    """A client context. With cafile the server certificate is verified
    (and its SAN must match the address connected to); without, it is not."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile=str(cafile))
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    ctx.minimum_version = minimum
    ctx.maximum_version = maximum
    return ctx


def pin_legacy_tls(ctx: ssl.SSLContext, version) -> ssl.SSLContext:
    """Let `ctx` speak only `version` (TLS 1.0 or 1.1), at security level 0
    so that the local OpenSSL really does."""
    import warnings
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def legacy_tls_context(version) -> ssl.SSLContext:
    """A client that offers only TLS 1.0 or 1.1."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return pin_legacy_tls(ctx, version)


def sip_request(method: str, src: str, sport: int, dst: str, dport: int,
                transport: str = "UDP", body: bytes = b"", content_type: str | None = None,
                headers: str = "", contact: str | None = None, callid: str | None = None,
                to_tag: str | None = None, cseq: int = 1, ruri: str | None = None) -> tuple:
    """(message bytes, call-id) of one SIP request. `contact` is the whole
    Contact header value (e.g. "<sips:alice@127.0.0.1:5999>"); None gives a
    plain sip: Contact for REGISTER and INVITE, "" none at all. A body gets
    Content-Type application/sdp unless content_type says otherwise."""
    callid = callid or uuid.uuid4().hex
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    scheme = "sips" if transport.upper() == "TLS" else "sip"
    ruri = ruri or f"{scheme}:{_host(dst)}:{dport}"
    if contact is None and method in ("REGISTER", "INVITE", "UPDATE"):
        contact = f"<{scheme}:alice@{_host(src)}:{sport}>"
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: SIP/2.0/{transport.upper()} {_host(src)}:{sport};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:alice@{_host(src)}>;tag={uuid.uuid4().hex[:8]}",
        f"To: <sip:bob@{_host(dst)}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {callid}",
        f"CSeq: {cseq} {method}",
    ]
    if contact:
        lines.append(f"Contact: {contact}")
    if method == "REGISTER":
        lines.append("Expires: 60")
    head = "\r\n".join(lines) + "\r\n" + headers
    if body:
        head += f"Content-Type: {content_type or 'application/sdp'}\r\n"
    head += f"User-Agent: sipguard-e2e\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body, callid


@dataclass
class Reply:
    code: int
    reason: str
    headers: list          # [(name, value)] in order, names as sent
    body: bytes
    raw: bytes

    def header(self, name: str, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name: str) -> list:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def callid(self):
        return self.header("Call-ID") or self.header("i")

    def int_header(self, name: str):
        v = self.header(name)
        return int(v) if v is not None and re.fullmatch(r"-?\d+", v.strip()) else None


def parse_sip_reply(data: bytes) -> Reply | None:
    i = data.find(b"\r\n\r\n")
    if i < 0 or not data.startswith(b"SIP/2.0 "):
        return None
    head, body = data[:i].decode("utf-8", "replace"), data[i + 4:]
    first, *rest = head.split("\r\n")
    m = re.match(r"SIP/2\.0 (\d{3}) ?(.*)$", first)
    if not m:
        return None
    hdrs = []
    for line in rest:
        if line[:1] in (" ", "\t") and hdrs:          # folded line
            hdrs[-1] = (hdrs[-1][0], hdrs[-1][1] + " " + line.strip())
            continue
        k, _, v = line.partition(":")
        hdrs.append((k.strip(), v.strip()))
    return Reply(int(m.group(1)), m.group(2), hdrs, body, data)


def _split_stream(buf: bytes):
    """(first complete message or None, rest of buf) of a SIP byte stream."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None, buf
    m = re.search(rb"^(?:Content-Length|l)\s*:\s*(\d+)", buf[:i], re.M | re.I)
    clen = int(m.group(1)) if m else 0
    if len(buf) < i + 4 + clen:
        return None, buf
    return buf[:i + 4 + clen], buf[i + 4 + clen:]


class StreamSipClient:
    """A TCP or TLS connection from a chosen loopback source: send requests,
    read the reply with a given Call-ID (provisional 1xx replies skipped)."""

    def __init__(self, src: str, dst: str, dport: int, tls: bool = True,
                 context: ssl.SSLContext | None = None, server_hostname: str | None = None,
                 timeout: float = 5.0):
        fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
        self.src, self.dst, self.dport = src, dst, dport
        self.transport = "TLS" if tls else "TCP"
        raw = socket.socket(fam, socket.SOCK_STREAM)
        raw.settimeout(timeout)
        try:
            raw.bind((src, 0))
            raw.connect((dst, dport))
            if tls:
                ctx = context or tls_context()
                self.sock = ctx.wrap_socket(raw, server_hostname=server_hostname or dst)
            else:
                self.sock = raw
        except BaseException:
            raw.close()
            raise
        self.sport = self.sock.getsockname()[1]
        self.buf = b""

    @property
    def version(self):
        return self.sock.version() if isinstance(self.sock, ssl.SSLSocket) else None

    @property
    def cipher(self):
        return self.sock.cipher() if isinstance(self.sock, ssl.SSLSocket) else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def recv_reply(self, callid: str, timeout: float = 5.0) -> Reply | None:
        """The final reply with this Call-ID, or None (timeout or closed)."""
        deadline = time.monotonic() + timeout
        while True:
            msg, self.buf = _split_stream(self.buf)
            if msg is not None:
                r = parse_sip_reply(msg)
                if r and r.callid == callid and r.code >= 200:
                    return r
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError, ssl.SSLError, ConnectionResetError, OSError):
                return None
            if not data:
                return None
            self.buf += data

    def request(self, method: str, timeout: float = 5.0, **kw) -> Reply | None:
        msg, cid = sip_request(method, self.src, self.sport, self.dst, self.dport,
                               self.transport, **kw)
        self.send(msg)
        return self.recv_reply(cid, timeout)


def tls_request(method: str, dport: int, src: str = "127.0.0.1", dst: str = "127.0.0.1",
                context: ssl.SSLContext | None = None, timeout: float = 5.0,
                **kw) -> Reply | None:
    """One request on a new TLS connection; the final reply (or None)."""
    with StreamSipClient(src, dst, dport, tls=True, context=context, timeout=timeout) as c:
        return c.request(method, timeout=timeout, **kw)


def tcp_request(method: str, dport: int, src: str = "127.0.0.1", dst: str = "127.0.0.1",
                timeout: float = 5.0, **kw) -> Reply | None:
    with StreamSipClient(src, dst, dport, tls=False, timeout=timeout) as c:
        return c.request(method, timeout=timeout, **kw)


def udp_request(method: str, dport: int, src: str = "127.0.0.1", dst: str = "127.0.0.1",
                timeout: float = 3.0, **kw) -> Reply | None:
    """One request over UDP from a fresh socket; the final reply (or None)."""
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        msg, cid = sip_request(method, src, s.getsockname()[1], dst, dport, "UDP", **kw)
        assert len(msg) <= 65507, f"{len(msg)} bytes do not fit in a UDP datagram"
        s.sendto(msg, (dst, dport))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            s.settimeout(left)
            try:
                data = s.recv(65536)
            except (socket.timeout, TimeoutError, ConnectionRefusedError):
                return None
            r = parse_sip_reply(data)
            if r and r.callid == cid and r.code >= 200:
                return r


def sip_transact(transport: str, method: str, port: int, tls_port: int, **kw) -> Reply | None:
    """One request over "udp", "tcp" or "tls" (to port or tls_port)."""
    t = transport.lower()
    if t == "udp":
        return udp_request(method, port, **kw)
    if t == "tcp":
        return tcp_request(method, port, **kw)
    if t == "tls":
        return tls_request(method, tls_port, **kw)
    raise ValueError(transport)


def start_fails(kam, timeout=20):
    """(failed, output) of a real start of `kam`'s Kamailio."""
    proc = subprocess.Popen(kam.argv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return False, "still running"
    return proc.returncode != 0, out


# ----------------------------------------------------------------------------
# fraud: sipp callers and callees through the toll-fraud example config

FRAUD_CFG = REPO / "kamailio-cfg" / "sipguard-fraud.cfg"
SUSPEND_RE = re.compile(
    r"sipguard: SUSPEND account=(?P<account>\S+) reason=(?P<reason>cpm|spend|rpc|anomaly)"
    r" value=(?P<value>\S+) threshold=(?P<threshold>\S+)\s*$"
)


class Sipp:
    """One sipp process (caller or callee), started now, bounded in time."""

    def __init__(self, scenario: str, workdir: Path, port: int = 0, dst: str | None = None,
                 count: int = 1, rate: int | None = None, duration_ms: int = 0,
                 service: str = "service", keys: dict | None = None, timeout_s: int = 60):
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        tag = f"{Path(scenario).stem}-{uuid.uuid4().hex[:6]}"
        self.stat = workdir / f"{tag}.csv"
        self.errf = workdir / f"{tag}.err"
        self.timeout_s = timeout_s
        argv = [SIPP] + ([dst] if dst else []) + [
            "-sf", str(SCEN_DIR / scenario), "-i", "127.0.0.1", "-p", str(port), "-t", "u1",
            "-m", str(count), "-l", str(count), "-r", str(rate or count), "-rp", "1000",
            "-d", str(duration_ms), "-s", service, "-timeout", f"{timeout_s}s",
            "-timeout_error", "-nostdin", "-trace_stat", "-stf", str(self.stat), "-fd", "1",
            "-trace_err", "-error_file", str(self.errf)]
        for k, v in (keys or {}).items():
            argv += ["-key", k, str(v)]
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True)

    def wait(self) -> dict:
        """Wait for the end; successful and failed calls from the statistics."""
        try:
            out, err = self.proc.communicate(timeout=self.timeout_s + 30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate()
        row = {}
        if self.stat.exists():
            lines = self.stat.read_text().strip().splitlines()
            if len(lines) >= 2:
                row = dict(zip(lines[0].split(";"), lines[-1].split(";")))
        assert row, f"sipp {self.argv} produced no statistics:\n{out[-2000:]}\n{err[-2000:]}"
        return {"rc": self.proc.returncode, "successful": int(row.get("SuccessfulCall(C)", 0)),
                "failed": int(row.get("FailedCall(C)", 0)), "stderr": err}

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()


def fraud_accounts(kam) -> dict:
    """{account: entry} from sipguard.accounts (numbers as ints)."""
    out = kam.kamcmd("sipguard.accounts").stdout
    res = {}
    for r in leaf_structs(parse_tree(out)):
        r = {k: _num(v) for k, v in r.items()}
        if "account" in r:
            res[str(r["account"])] = r
    return res


def fraud_calls(kam, account: str) -> int:
    return int(fraud_accounts(kam).get(account, {}).get("calls", 0))


def suspensions(kam, account: str | None = None) -> list:
    out = []
    for line in kam.log_text().splitlines():
        m = SUSPEND_RE.search(line)
        if m and (account is None or m["account"] == account):
            out.append(m.groupdict())
    return out


def udp_bound(port: int) -> bool:
    """Whether some socket is bound to UDP `port` on IPv4 (from /proc/net/udp)."""
    with open("/proc/net/udp") as f:
        next(f)
        return any(int(line.split()[1].split(":")[1], 16) == port for line in f)


def sipp_callee(scenario: str, workdir: Path, port: int, count: int, duration_ms: int = 0,
                timeout_s: int = 60) -> Sipp:
    """A callee sipp on 127.0.0.1:port, returned once its socket is bound."""
    s = Sipp(scenario, workdir, port=port, count=count, duration_ms=duration_ms,
             timeout_s=timeout_s)
    deadline = time.monotonic() + 10
    while not udp_bound(port):
        assert s.proc.poll() is None, f"callee sipp exited: {s.proc.communicate()}"
        assert time.monotonic() < deadline, f"callee sipp did not bind port {port}"
        time.sleep(0.05)
    return s


def start_tls_bundle(factory, tmp_path: Path, tls_dir: Path, cfg: Path | None = None,
                     name: str = "bundle", **defines) -> "Kamailio":
    """Start the TLS bundle (kamailio-cfg/sipguard-tls.cfg, or a copy `cfg`)
    as shipped on a free TLS port; `factory` stops it."""
    rundir = tmp_path / f"{name}-run"
    tls_port = free_port()
    d = {"SG_TLS_PORT": str(tls_port)}
    d.update(defines)
    k = Kamailio(cfg=cfg or REPO / "kamailio-cfg" / "sipguard-tls.cfg", workdir=tmp_path,
                 name=name, defines=d,
                 extra_args=[f"--substdef=!SG_RUNDIR!{rundir}!g",
                             f"--substdef=!SG_TLS_DIR!{tls_dir}!g"])
    k.rundir = rundir
    rundir.mkdir(exist_ok=True)
    k.ctl = rundir / "kamailio_ctl"
    k.no_default_defines = True
    k.tls_port = tls_port
    factory.started.append(k)
    return k.start()

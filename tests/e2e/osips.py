"""OpenSIPS harness for the sipguard e2e suite.

A real OpenSIPS 3.6, built from source into build/opensips/ by
scripts/opensips-build.sh, loading the sipguard module built in the same
tree (`make opensips`). Everything else (ports, clients, sprayer, log
lines, process-group handling) is sipg.py's: `OpenSIPS` is a
`sipg.Kamailio` with OpenSIPS' command line, configuration and management
interface (MI over mi_fifo, JSON-RPC).

Configurations are written per run from a file that runs as it is (the
example bundle in opensips-cfg/, or a test config): its port 5060 (5061 for
TLS), runtime directory /tmp/sipguard-opensips and mpath are replaced, and
sipguard parameters given as keywords replace or add modparam lines.
"""
from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sipg

OSIPS_DIR = sipg.BUILD_DIR / "opensips"
OPENSIPS = OSIPS_DIR / "sbin" / "opensips"
OSIPS_MODULES = OSIPS_DIR / "lib" / "modules"
OSIPS_MODULE_SO = OSIPS_MODULES / "sipguard.so"
OSIPS_CFG_DIR = sipg.REPO / "opensips-cfg"
OSIPS_TEST_CFG = sipg.CFG_DIR / "opensips-test.cfg"

# what a runnable configuration names, replaced per run
CFG_RUNDIR = "/tmp/sipguard-opensips"
CFG_PORT = 5060
CFG_TLS_PORT = 5061
_MPATH_RE = re.compile(r'^mpath\s*=.*$', re.M)


def require_opensips() -> None:
    """Fail (never skip) when OpenSIPS or the module was not built."""
    sipg.require_tools(str(OPENSIPS))
    assert OSIPS_MODULE_SO.is_file(), (
        f"{OSIPS_MODULE_SO} not built: run `make opensips` at the repo root")


def _modparam_value(v) -> str:
    if isinstance(v, int):
        return str(v)
    return '"' + str(v).replace('"', '\\"') + '"'


def render_cfg(src: Path, dst: Path, rundir: Path, port: int, tls_port: int = 0,
               params: dict | None = None, extra: str | None = None) -> Path:
    """Write src to dst for one run (see the module docstring)."""
    text = Path(src).read_text()
    text = text.replace(CFG_RUNDIR, str(rundir))
    text = text.replace(f":{CFG_PORT}", f":{port}")
    if tls_port:
        text = text.replace(f":{CFG_TLS_PORT}", f":{tls_port}")
    text = _MPATH_RE.sub(f'mpath="{OSIPS_MODULES}/"', text, count=1)
    for name, value in (params or {}).items():
        text = re.sub(rf'^modparam\("sipguard",\s*"{re.escape(name)}",.*$\n?', "", text,
                      flags=re.M)
        if value is None:
            continue
        line = f'modparam("sipguard", "{name}", {_modparam_value(value)})\n'
        anchor = 'loadmodule "sipguard.so"\n'
        assert anchor in text, f"{src}: no {anchor.strip()}"
        text = text.replace(anchor, anchor + line, 1)
    if extra is not None:
        assert "# @@EXTRA@@" in text, f"{src}: no # @@EXTRA@@ marker"
        text = text.replace("# @@EXTRA@@", extra)
    Path(dst).write_text(text)
    return Path(dst)


@dataclass
class OpenSIPS(sipg.Kamailio):
    """One OpenSIPS process group; `params` are sipguard modparams."""
    params: dict = field(default_factory=dict)
    tls_port: int = 0
    extra: str | None = None

    def __post_init__(self):
        super().__post_init__()
        self.source_cfg = Path(self.cfg)
        self.fifo = self.rundir / "fifo"
        self._mi_id = 0
        self.render()

    def render(self) -> Path:
        """(Re)write the run's configuration from the source and params."""
        self.cfg = render_cfg(self.source_cfg, self.workdir / f"{self.name}.cfg", self.rundir,
                              self.port, self.tls_port, self.params, self.extra)
        return self.cfg

    # -- command line ---------------------------------------------------
    def argv(self, check_only: bool = False) -> list:
        a = [str(OPENSIPS), "-f", str(self.cfg), "-m", str(self.shm_mb), "-M", str(self.pkg_mb),
             "-w", str(self.rundir)]
        a += ["-c"] if check_only else ["-F", "-P", str(self.rundir / "opensips.pid")]
        return a + list(self.extra_args)

    # -- life cycle -------------------------------------------------------
    def start(self, timeout: float = 20.0) -> "OpenSIPS":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.render()
        if self.fifo.exists():
            self.fifo.unlink()
        self._log_fh = open(self.logfile, "ab")
        self._log_fh.write(f"\n==== start #{self.starts + 1}: {' '.join(self.argv())}\n".encode())
        self._log_fh.flush()
        self.log_offset = self.logfile.stat().st_size
        self.proc = subprocess.Popen(self.argv(), stdout=self._log_fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        sipg._ALL.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"opensips {self.name} exited with {self.proc.returncode} "
                                   f"during start:\n{self.log_tail()}")
            if self.fifo.exists():
                try:
                    self.mi("version", timeout=2)
                    if self._stream_listening():
                        return self
                except (OSError, TimeoutError, MiError):
                    pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"opensips {self.name} did not come up in {timeout}s:\n{self.log_tail()}")

    def _stream_listening(self) -> bool:
        """The TLS port accepts connections (OpenSIPS' TCP main process
        listens a moment after the MI answers)."""
        if not self.tls_port:
            return True
        try:
            socket.create_connection(("127.0.0.1", self.tls_port), timeout=1).close()
            return True
        except OSError:
            return False

    # -- MI ------------------------------------------------------------------
    def mi(self, method: str, *args, timeout: float = 10.0, **params):
        """One MI command over mi_fifo; the result, or MiError."""
        self._mi_id += 1
        reply_name = f"reply-{uuid.uuid4().hex[:12]}"
        reply = self.rundir / reply_name
        os.mkfifo(reply, 0o600)
        try:
            # read-write: never blocks, never sees an end before the reply
            rfd = os.open(reply, os.O_RDWR | os.O_NONBLOCK)
            try:
                req = {"jsonrpc": "2.0", "method": method, "id": self._mi_id}
                if params:
                    req["params"] = params
                elif args:
                    req["params"] = [str(a) for a in args]
                wfd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                try:
                    os.write(wfd, f":{reply_name}:{json.dumps(req)}\n".encode())
                finally:
                    os.close(wfd)
                buf = b""
                deadline = time.monotonic() + timeout
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"MI {method}: no reply in {timeout}s")
                    r, _, _ = select.select([rfd], [], [], left)
                    if not r:
                        continue
                    buf += os.read(rfd, 65536)
                    try:
                        resp = json.loads(buf)
                        break
                    except ValueError:
                        continue
            finally:
                os.close(rfd)
        finally:
            reply.unlink(missing_ok=True)
        if "error" in resp:
            raise MiError(resp["error"].get("code"), resp["error"].get("message"))
        return resp.get("result")

    def kamcmd(self, *args, check: bool = True, timeout: float = 10):
        raise AssertionError("OpenSIPS has no kamcmd: use mi()")

    def stats(self) -> dict:
        """sipguard:* counters from the statistics framework."""
        res = self.mi("get_statistics", statistics=["sipguard:"])
        out = {k.split(":", 1)[1]: int(v) for k, v in res.items() if k.startswith("sipguard:")}
        assert out, f"no sipguard statistics in: {res!r}"
        return out

    def sg_stats(self) -> dict:
        return self.mi("sipguard_stats")

    def sg_list(self, top: int | None = None, max_bans: int | None = None) -> dict:
        """{"bans": {key: entry}, "top": [entry, ...], ...} from sipguard_list."""
        p = {}
        if top is not None:
            p["top"] = top
        if max_bans is not None:
            p["max_bans"] = max_bans
        res = self.mi("sipguard_list", **p)
        return {"bans": {b["key"]: b for b in res["bans"]}, "top": res["top"],
                "bans_total": res["bans_total"], "bans_listed": res["bans_listed"]}

    def shm_used(self) -> int:
        return int(self.mi("get_statistics", statistics=["shmem:"])["shmem:used_size"])


class MiError(Exception):
    def __init__(self, code, message):
        super().__init__(f"MI error {code}: {message}")
        self.code = code
        self.message = message


class OpenSIPSFactory:
    """Starts OpenSIPS instances for a test and stops them after it."""

    def __init__(self, tmp: Path):
        self.tmp = Path(tmp)
        self.started: list = []
        self.n = 0

    def __call__(self, name: str | None = None, cfg: Path | None = None, start: bool = True,
                 extra: str | None = None, tls_port: int = 0, **params) -> OpenSIPS:
        self.n += 1
        o = OpenSIPS(cfg=Path(cfg or OSIPS_TEST_CFG), workdir=self.tmp,
                     name=name or f"osips{self.n}", params=params, tls_port=tls_port,
                     extra=extra)
        self.started.append(o)
        if start:
            o.start()
        return o

    def close(self):
        for o in self.started:
            o.stop(timeout=10)


# -- fixtures (import them into a test module: `from osips import osips_factory`)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def opensips_built():
    require_opensips()
    return OSIPS_MODULE_SO


@pytest.fixture
def osips_factory(opensips_built, tmp_path):
    f = OpenSIPSFactory(tmp_path)
    try:
        yield f
    finally:
        f.close()


@pytest.fixture(scope="module")
def osips_module_factory(opensips_built, tmp_path_factory, request):
    f = OpenSIPSFactory(tmp_path_factory.mktemp(request.module.__name__.replace(".", "_")))
    try:
        yield f
    finally:
        f.close()

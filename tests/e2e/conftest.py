"""Fixtures for the sipguard e2e suite (real Kamailio on loopback)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sipg  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _guard_kill_all_kamailio():
    """Whatever happens, no Kamailio started by this suite survives it."""
    try:
        yield
    finally:
        sipg.kill_all()


@pytest.fixture(scope="session")
def module_built():
    sipg.require_tools(sipg.KAMAILIO, sipg.KAMCMD)
    sipg.require_module()
    return sipg.MODULE_SO


class KamFactory:
    def __init__(self, tmp: Path):
        self.tmp = Path(tmp)
        self.started: list = []
        self.n = 0

    def __call__(self, name: str | None = None, cfg: Path | None = None, start: bool = True,
                 extra: str | None = None, **defines) -> sipg.Kamailio:
        self.n += 1
        name = name or f"kam{self.n}"
        cfg = Path(cfg or sipg.CFG_DIR / "sipguard-test.cfg")
        if extra is not None:
            text = cfg.read_text()
            assert "# @@EXTRA@@" in text
            new = self.tmp / f"{name}.cfg"
            new.write_text(text.replace("# @@EXTRA@@", extra))
            cfg = new
        d = {}
        for k, v in defines.items():
            d[k if k.startswith("SG_") else "SG_" + k.upper()] = v
        k = sipg.Kamailio(cfg=cfg, workdir=self.tmp, defines=d, name=name)
        self.started.append(k)
        if start:
            k.start()
        return k

    def close(self):
        for k in self.started:
            k.stop(timeout=10)


@pytest.fixture
def kam_factory(module_built, tmp_path):
    f = KamFactory(tmp_path)
    try:
        yield f
    finally:
        f.close()


@pytest.fixture(scope="module")
def kam_module_factory(module_built, tmp_path_factory, request):
    f = KamFactory(tmp_path_factory.mktemp(request.module.__name__.replace(".", "_")))
    try:
        yield f
    finally:
        f.close()


def q(s: str) -> str:
    """Quote a value for a string define (-A NAME="value")."""
    return '"' + s.replace('"', '\\"') + '"'

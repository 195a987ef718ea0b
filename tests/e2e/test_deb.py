"""The Debian package (`make deb`): lintian-clean, the right contents and
dependency, and installed with apt-get it works with Debian's kamailio and
its standard module path (no -L), then purges without a trace.

Installing needs root (CI runs the suite as root): not root fails. The
package is always purged at the end, so the other tests (which load
build/sipguard.so by path, before the module directory) never see it."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import sipg

PKG = "kamailio-sipguard-modules"
MODDIR = Path(sipg.KAM_SYS_MODULES)
DOC = Path("/usr/share/doc") / PKG
APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=300"]
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def run(*cmd, check=True, timeout=600, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)
    assert not check or r.returncode == 0, f"{cmd} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def installed() -> bool:
    r = run("dpkg-query", "-W", "-f=${Status}", PKG, check=False)
    return r.returncode == 0 and r.stdout.endswith(" installed")


def known_to_dpkg() -> bool:
    """Installed, or removed with its conffiles still there."""
    r = run("dpkg-query", "-W", "-f=${Status}", PKG, check=False)
    return r.returncode == 0 and "not-installed" not in r.stdout


@pytest.fixture(scope="module")
def deb(module_built) -> Path:
    sipg.require_tools("/usr/bin/dpkg-deb", "/usr/bin/lintian", "/usr/bin/apt-get")
    r = run("make", "-s", "-C", str(sipg.REPO), "--no-print-directory", "deb", env=dict(os.environ, SIPGUARD_SKIP_LINTIAN="1"))
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.suffix == ".deb", r.stdout
    return path


def test_lintian_reports_no_error(deb):
    r = run("lintian", "--tag-display-limit", "0", str(deb), check=False)
    errors = [ln for ln in r.stdout.splitlines() if ln.startswith("E: ")]
    assert not errors, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr


def test_contents_and_version_locked_dependency(deb):
    kversion = run("dpkg-query", "-W", "-f=${Version}", "kamailio").stdout
    depends = run("dpkg-deb", "-f", str(deb), "Depends").stdout
    assert f"kamailio (= {kversion})" in depends, depends
    files = {ln.split()[-1].lstrip(".") for ln in run("dpkg-deb", "-c", str(deb)).stdout.splitlines()}
    for f in [f"{MODDIR}/sipguard.so", "/etc/fail2ban/filter.d/sipguard.conf",
              "/etc/fail2ban/jail.d/sipguard.conf", f"{DOC}/README.md.gz", f"{DOC}/copyright",
              f"{DOC}/changelog.Debian.gz", f"{DOC}/examples/sipguard.cfg"]:
        assert f in files, f"{f} not in the package:\n" + "\n".join(sorted(files))


def test_install_flood_banned_then_purge_leaves_nothing(deb, tmp_path):
    assert os.geteuid() == 0, "installing the package needs root (the CI runs the suite as root)"
    assert not known_to_dpkg(), f"{PKG} is already installed: purge it first"
    assert not (MODDIR / "sipguard.so").exists(), \
        f"{MODDIR}/sipguard.so exists outside the package (make install?): remove it first"
    kam = None
    files: list = []
    try:
        run(*APT, "install", "--no-install-recommends", str(deb), env=APT_ENV)
        assert installed()
        files = run("dpkg-query", "-L", PKG).stdout.split()
        assert str(MODDIR / "sipguard.so") in files
        jail = Path("/etc/fail2ban/jail.d/sipguard.conf").read_text()
        assert "\nenabled   = false\n" in jail, jail
        # stripped: no symbol table, no debug sections (readelf: binutils)
        sections = run("readelf", "-S", "-W", str(MODDIR / "sipguard.so")).stdout
        assert ".dynsym" in sections, sections
        assert ".symtab" not in sections and ".debug_" not in sections, sections

        # the example config as installed, Kamailio's own module path
        rundir = tmp_path / "run"
        rundir.mkdir()
        kam = sipg.Kamailio(cfg=DOC / "examples" / "sipguard.cfg", workdir=tmp_path, name="deb",
                            extra_args=[f"--substdef=!SG_RUNDIR!{rundir}!g"])
        kam.rundir, kam.ctl = rundir, rundir / "kamailio_ctl"
        kam.no_default_defines = True
        kam.system_modules = True
        assert "-L" not in kam.argv()
        kam.start()
        maps = Path(f"/proc/{kam.proc.pid}/maps").read_text()
        assert str(MODDIR / "sipguard.so") in maps and str(sipg.MODULE_SO) not in maps

        assert sipg.udp_run("127.0.0.9", "127.0.0.1", kam.port, 5, wait=0.5).answered == 5
        fl = sipg.udp_run("127.0.0.10", "127.0.0.1", kam.port, 60, wait=0.5)
        assert 30 <= fl.answered <= 32, fl
        b = kam.wait_log(lambda: kam.bans(src="127.0.0.10"), timeout=3, what="BAN")
        assert b[0]["reason"] == "flood", b
        assert kam.stop() == 0
        kam = None
    finally:
        if kam is not None:
            kam.kill()
        if known_to_dpkg():
            run(*APT, "purge", PKG, env=APT_ENV)
    assert not known_to_dpkg()
    # nothing left behind: every file gone, and every directory too unless
    # another package owns it or it holds files of others
    left = []
    for f in files:
        p = Path(f)
        if f == "/.":
            continue
        if p.is_dir():
            owned = run("dpkg-query", "-S", f, check=False).returncode == 0
            if not owned and not any(p.iterdir()):
                left.append(f)
        elif p.exists() or p.is_symlink():
            left.append(f)
    assert not left, f"left behind after purge: {left}"

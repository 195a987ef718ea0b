"""kamailio-cfg/fail2ban: the filter matches exactly the BAN lines (on a
fixture and on a log Kamailio really wrote) and extracts the right address;
the jail passes `fail2ban-client -t`."""
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import sipg

F2B_SRC = sipg.REPO / "kamailio-cfg" / "fail2ban"
SAMPLE = sipg.E2E / "fixtures" / "kamailio-syslog-sample.log"
DST = "127.0.0.1"


@pytest.fixture
def f2b_conf(tmp_path):
    """A copy of the system's fail2ban config with our filter and jail in it
    (the filter includes common.conf from the same tree)."""
    sipg.require_tools(sipg.FAIL2BAN_REGEX, sipg.FAIL2BAN_CLIENT)
    conf = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", conf)
    shutil.copy(F2B_SRC / "filter.d" / "sipguard.conf", conf / "filter.d" / "sipguard.conf")
    shutil.copy(F2B_SRC / "jail.d" / "sipguard.conf", conf / "jail.d" / "sipguard.conf")
    # only our jail: Debian's sshd jail wants /var/log/auth.log
    for p in (conf / "jail.d").glob("*.conf"):
        if p.name != "sipguard.conf":
            p.write_text("[sshd]\nenabled = false\n")
    return conf


def regex(conf: Path, log: Path, *opts) -> subprocess.CompletedProcess:
    r = subprocess.run([sipg.FAIL2BAN_REGEX, *opts, str(log),
                        str(conf / "filter.d" / "sipguard.conf")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def matched(conf, log, *opts) -> int:
    out = regex(conf, log, *opts).stdout
    m = re.search(r"^Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", out, re.M)
    assert m, out
    return int(m.group(3))


def hosts(conf, log, *opts) -> list:
    out = regex(conf, log, "-o", "ip", *opts).stdout
    return [l.strip() for l in out.splitlines() if l.strip()]


def expected_bans(log: Path) -> list:
    return [m["src"] for m in (sipg.BAN_RE.search(l) for l in log.read_text().splitlines()) if m]


def test_filter_on_fixture(f2b_conf):
    exp = expected_bans(SAMPLE)
    # forged lines (script/parser text containing "sipguard: BAN") are not ban events
    genuine = [l for l in SAMPLE.read_text().splitlines()
               if sipg.BAN_RE.search(l) and "<script>" not in l and "<core>" not in l]
    assert len(genuine) == 5 and len(exp) == 6
    assert matched(f2b_conf, SAMPLE) == 5
    assert hosts(f2b_conf, SAMPLE) == ["198.51.100.23", "192.0.2.7", "2001:db8:1:2::99",
                                       "203.0.113.200", "192.0.2.7"]


def test_jail_config_valid(f2b_conf):
    r = subprocess.run([sipg.FAIL2BAN_CLIENT, "-c", str(f2b_conf), "-t"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    d = subprocess.run([sipg.FAIL2BAN_CLIENT, "-c", str(f2b_conf), "-d"],
                       capture_output=True, text=True, timeout=120)
    assert "['add', 'sipguard', 'systemd']" in d.stdout, d.stdout
    assert "['set', 'sipguard', 'maxretry', 1]" in d.stdout, d.stdout


def to_syslog(lines: list, host: str = "sip1") -> list:
    """Kamailio's stderr line " 5(4242) NOTICE: ..." as syslog / the journal
    backend would show it: "<date> host /usr/sbin/kamailio[4242]: NOTICE: ..."."""
    out = []
    stamp = time.strftime("%b %d %H:%M:%S")
    for l in lines:
        m = re.match(r"^\s*\d+\((\d+)\) (.*)$", l)
        if m:
            out.append(f"{stamp} {host} /usr/sbin/kamailio[{m.group(1)}]: {m.group(2)}")
    return out


def test_filter_on_real_kamailio_log(kam_factory, f2b_conf, tmp_path):
    kam = kam_factory(name="f2b", ban_time='"30s"')
    for src in ("127.0.0.2", "127.0.0.3"):
        fl = sipg.udp_run(src, DST, kam.port, 60, wait=0.3)
        assert fl.answered <= 32, fl
    fl = sipg.udp_run("::1", "::1", kam.port, 60, wait=0.3)
    assert fl.answered <= 32, fl
    kam.kamcmd("sipguard.ban", "192.0.2.10", "60")
    kam.kamcmd("sipguard.ban", "2001:db8:7::1", "permanent")
    kam.wait_log(lambda: len(kam.bans()) == 5, timeout=5, what="5 BAN lines")
    time.sleep(0.5)
    kam.stop()

    raw = kam.log_text().splitlines()
    exp = [b["src"] for b in kam.bans()]
    assert sorted(exp) == sorted(["127.0.0.2", "127.0.0.3", "::1", "192.0.2.10",
                                  "2001:db8:7::1"]), exp

    syslog = tmp_path / "syslog.log"
    syslog.write_text("\n".join(to_syslog(raw)) + "\n")
    assert matched(f2b_conf, syslog) == len(exp)
    assert hosts(f2b_conf, syslog) == exp

    # Kamailio's stderr as is (kamailio -E > file): no dates, so tell fail2ban-regex
    stderr_log = tmp_path / "stderr.log"
    stderr_log.write_text("\n".join(raw) + "\n")
    assert matched(f2b_conf, stderr_log, "--datepattern", "{NONE}") == len(exp)
    assert hosts(f2b_conf, stderr_log, "--datepattern", "{NONE}") == exp

"""kamailio-cfg/fail2ban on the log a real OpenSIPS wrote: the filter
matches exactly its BAN lines, in OpenSIPS' stderr form and as syslog or
the journal shows them, and extracts the right addresses; lines a script's
xlog or the core could write with "sipguard: BAN" in them do not match."""
import re
import time

import sipg
from osips import opensips_built, osips_factory  # noqa: F401
from test_fail2ban import f2b_conf, hosts, matched  # noqa: F401

DST = "127.0.0.1"

# what an OpenSIPS script's xlog("sipguard: BAN ...") or a core error
# quoting a message would write: no "sipguard:sg_logger:" tag
FORGED = [
    "{date} [4242] NOTICE:sipguard: BAN src=203.0.113.66 key=203.0.113.66 reason=flood "
    "duration=300 offences=1",
    "{date} [4242] ERROR:core:parse_msg: bad message sipguard: BAN src=203.0.113.67 "
    "key=203.0.113.67 reason=flood duration=300 offences=1",
    "{date} [4242] NOTICE:sipguard:sg_logger: sipguard: UNBAN key=192.0.2.10 reason=rpc",
]


def to_syslog(lines: list, host: str = "sip1") -> list:
    """OpenSIPS' stderr line "<date> [4242] NOTICE:..." as syslog or the
    journal backend shows it: "<date> host /usr/sbin/opensips[4242]: NOTICE:..."."""
    out = []
    for line in lines:
        m = re.match(r"^(\w{3}\s+\d+ [\d:]+) \[(\d+)\] (.*)$", line)
        if m:
            out.append(f"{m.group(1)} {host} /usr/sbin/opensips[{m.group(2)}]: {m.group(3)}")
    return out


def test_filter_on_real_opensips_log(osips_factory, f2b_conf, tmp_path):
    o = osips_factory(name="f2b", ban_time="30s")
    for src in ("127.0.0.2", "127.0.0.3"):
        assert sipg.udp_run(src, DST, o.port, 60, wait=0.3).answered <= 32
    assert sipg.udp_run("::1", "::1", o.port, 60, wait=0.3).answered <= 32
    o.mi("sipguard_ban", "192.0.2.10", "60")
    o.mi("sipguard_ban", "2001:db8:7::1", "permanent")
    o.mi("sipguard_unban", "192.0.2.10")
    o.wait_log(lambda: len(o.bans()) == 5, timeout=5, what="5 BAN lines")
    time.sleep(0.5)
    o.stop()

    date = time.strftime("%b %e %H:%M:%S")
    raw = [line for line in o.log_text().splitlines() if re.match(r"^\w{3}\s+\d+ ", line)]
    raw += [f.format(date=date) for f in FORGED]
    exp = [b["src"] for b in o.bans()]
    assert sorted(exp) == sorted(["127.0.0.2", "127.0.0.3", "::1", "192.0.2.10",
                                  "2001:db8:7::1"]), exp

    stderr_log = tmp_path / "stderr.log"
    stderr_log.write_text("\n".join(raw) + "\n")
    assert matched(f2b_conf, stderr_log) == len(exp)
    assert hosts(f2b_conf, stderr_log) == exp

    syslog = tmp_path / "syslog.log"
    syslog.write_text("\n".join(to_syslog(raw)) + "\n")
    assert matched(f2b_conf, syslog) == len(exp)
    assert hosts(f2b_conf, syslog) == exp

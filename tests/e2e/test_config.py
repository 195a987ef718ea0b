"""Configuration: bad module parameters are refused (naming the parameter);
every bundled config passes `kamailio -c`; the example config behaves."""
import os
import signal
import subprocess

import pytest

import sipg

BAD = [
    ("rate", '"10/x"'),
    ("rate", '"0/s"'),
    ("rate", '"abc"'),
    ("burst", "0"),
    ("allow", '"10.0.0.0/33"'),
    ("allow", '"not-an-address"'),
    ("allow", '"2001:db8::/129"'),
    ("table_size", "0"),
    ("table_size", "10"),
    ("ban_time", '"5x"'),
    ("ban_factor", "0"),
    ("ban_max", '"forever"'),
    ("ipv6_prefix", "129"),
    ("ipv6_prefix", "0"),
    ("early_drop", "2"),
    ("save_interval", '"soon"'),
    ("no_such_param", '"1"'),
]


def _ids(v):
    return f"{v[0]}={v[1].strip(chr(34))}"


def names_param(out: str, name: str, cfg) -> bool:
    """An error line of the sipguard module (or of Kamailio about the module)
    names the parameter; the config's path is taken out first."""
    for line in out.replace(str(cfg), "<cfg>").splitlines():
        if "sipguard" in line and name in line and ("ERROR" in line or "CRITICAL" in line):
            return True
    return False


start_fails = sipg.start_fails


@pytest.mark.parametrize("param", BAD, ids=[_ids(b) for b in BAD])
def test_bad_modparam_refused(kam_factory, param):
    name, value = param
    kam = kam_factory(name="bad", start=False,
                      extra=f'modparam("sipguard", "{name}", {value})')
    r = kam.check()
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"kamailio -c accepted {name}={value}:\n{out[-3000:]}"
    assert names_param(out, name, kam.cfg), f"error text does not name {name}:\n{out[-3000:]}"
    # exactly one error about it: the marker was replaced once, the rest is valid
    assert out.count("Can't set module parameter") == 1, out[-3000:]
    # and a real start fails too, with the name in the log
    failed, out = start_fails(kam)
    assert failed, f"kamailio started with {name}={value}:\n{out[-3000:]}"
    assert names_param(out, name, kam.cfg), out[-3000:]


def test_good_modparams_accepted(kam_factory):
    """Control for the test above: the same harness with valid values passes."""
    kam = kam_factory(name="good", start=False, extra="\n".join([
        'modparam("sipguard", "rate", "10/s")',
        'modparam("sipguard", "rate", "100/m")',
        'modparam("sipguard", "rate", "5/3s")',
        'modparam("sipguard", "rate", "3600/h")',
        'modparam("sipguard", "allow", "10.0.0.0/8, 192.0.2.1")',
        'modparam("sipguard", "allow", "2001:db8::/32")',
        'modparam("sipguard", "ban_time", 300)',
        'modparam("sipguard", "ban_time", "5m")',
        'modparam("sipguard", "ban_forget", "1h")',
        'modparam("sipguard", "ipv6_prefix", 48)',
        'modparam("sipguard", "table_size", 64)',
    ]))
    r = kam.check()
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]


def test_ban_permanent_accepted(kam_factory):
    """ban_permanent=1 makes a ban that reaches ban_max permanent."""
    kam = kam_factory(name="perm", start=False,
                      extra='modparam("sipguard", "ban_permanent", 1)')
    r = kam.check()
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]


def test_ban_max_permanent_points_to_ban_permanent(kam_factory):
    """"permanent" is not a duration: the error names ban_max and the way out."""
    kam = kam_factory(name="permbad", start=False,
                      extra='modparam("sipguard", "ban_max", "permanent")')
    failed, out = start_fails(kam)
    assert failed, out[-3000:]
    assert names_param(out, "ban_max", kam.cfg), out[-3000:]
    assert "ban_permanent" in out, out[-3000:]


def test_inconsistent_params_fail_start(kam_factory):
    """ban_max shorter than ban_time: each value valid alone, refused together."""
    kam = kam_factory(name="incons", start=False, ban_time='"10m"', ban_max='"5m"')
    failed, out = start_fails(kam)
    assert failed, out[-3000:]
    assert names_param(out, "ban_max", kam.cfg), out[-3000:]


BUNDLED = sorted((sipg.REPO / "kamailio-cfg").glob("*.cfg"))


def test_bundled_configs_exist():
    names = {p.name for p in BUNDLED}
    assert {"sipguard.cfg", "pike.cfg", "nocheck.cfg"} <= names, names


@pytest.mark.parametrize("cfg", BUNDLED, ids=[p.name for p in BUNDLED])
def test_bundled_config_passes_check(module_built, cfg, tmp_path):
    r = subprocess.run([sipg.KAMAILIO, "-c", "-f", str(cfg), "-L", sipg.mpath(),
                        f"--substdef=!SG_RUNDIR!{tmp_path}!g"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "config file ok" in (r.stdout + r.stderr).lower()


def example(kam_factory, tmp_path, **defines):
    return sipg.start_example(kam_factory, tmp_path, sipg.REPO / "kamailio-cfg" / "sipguard.cfg",
                              **defines)


def test_example_config_behaves(kam_factory, tmp_path):
    """kamailio-cfg/sipguard.cfg as shipped (port and runtime dir moved):
    OPTIONS answered, a flood banned and then dropped early, ::1 keyed per /64,
    the allowlisted source never limited, the state file written on stop."""
    kam = example(kam_factory, tmp_path, SG_BAN_TIME='"20s"')
    DST = "127.0.0.1"
    assert sipg.udp_run("127.0.0.9", DST, kam.port, 5, wait=0.5).answered == 5
    fl = sipg.udp_run("127.0.0.10", DST, kam.port, 60, wait=0.5)
    assert 30 <= fl.answered <= 32, fl
    b = kam.wait_log(lambda: kam.bans(src="127.0.0.10"), timeout=3, what="BAN")
    assert b[0]["duration"] == "20" and b[0]["reason"] == "flood", b
    assert sipg.udp_run("127.0.0.10", DST, kam.port, 20, wait=0.5).answered == 0
    assert kam.stats()["dropped"] >= 20  # early_drop is on in the example
    v6 = sipg.udp_run("::1", "::1", kam.port, 60, wait=0.5)
    assert 30 <= v6.answered <= 32, v6
    kam.wait_log(lambda: kam.bans(src="::1", key="::/64"), timeout=3, what="v6 BAN")
    al = sipg.udp_run("127.0.0.250", DST, kam.port, 200, wait=1.0)
    assert al.answered == 200, al
    with sipg.TcpClient("127.0.0.11", DST, kam.port) as t:
        assert t.run(3).answered == 3
    assert kam.stop() == 0
    assert (kam.rundir / "sipguard.state").exists()

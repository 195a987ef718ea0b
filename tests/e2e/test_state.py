"""state_file: bans survive a restart with their remaining time."""
import time

import pytest

import sipg
from conftest import q

DST = "127.0.0.1"


def restored(kam):
    return [b for b in kam.bans() if b["reason"] == "restored"]


@pytest.fixture(scope="module")
def restarted(kam_module_factory):
    """Bans made, Kamailio stopped (SIGTERM: shutdown save) and started again."""
    state = kam_module_factory.tmp / "sipguard.state"
    kam = kam_module_factory(name="state", ban_time='"60s"', state_file=q(str(state)),
                             save_interval='"600s"')
    fl = sipg.udp_run("127.0.0.2", DST, kam.port, 60, wait=0.5)
    assert 30 <= fl.answered <= 32, fl
    kam.kamcmd("sipguard.ban", "127.0.0.3", "300")
    kam.kamcmd("sipguard.ban", "2001:db8:5::1", "1000")
    kam.kamcmd("sipguard.ban", "127.0.0.4", "permanent")
    kam.kamcmd("sipguard.ban", "127.0.0.5", "2")     # will have expired by the restart
    kam.wait_log(lambda: len(kam.bans()) == 5, timeout=3, what="5 BAN lines")
    time.sleep(2.5)
    t_stop = time.monotonic()
    rc = kam.stop()
    assert rc == 0, f"kamailio exited with {rc}\n{kam.log_tail()}"
    assert state.exists() and state.stat().st_size > 0, "state file not written on shutdown"
    n_before = len(kam.bans())
    time.sleep(1.0)
    kam.start()
    down = time.monotonic() - t_stop
    time.sleep(0.5)
    return kam, down, n_before


def test_bans_restored_after_restart(restarted):
    kam, down, _ = restarted
    bans = kam.sg_list()["bans"]
    assert set(bans) == {"127.0.0.2", "127.0.0.3", "2001:db8:5::/64", "127.0.0.4"}, \
        kam.last_list_raw
    # remaining time, not the original duration
    assert 60 - 2.5 - down - 2 <= bans["127.0.0.2"]["remaining"] <= 58, bans["127.0.0.2"]
    assert 300 - 2.5 - down - 2 <= bans["127.0.0.3"]["remaining"] <= 298, bans["127.0.0.3"]
    assert bans["127.0.0.4"]["remaining"] == "permanent"
    assert bans["127.0.0.2"]["offences"] == 1
    time.sleep(1.2)  # the sweep recounts active bans
    assert kam.stats()["active_bans"] == 4, kam.stats()

    assert sipg.udp_run("127.0.0.2", DST, kam.port, 2, wait=0.5).answered == 0
    assert sipg.udp_run("127.0.0.3", DST, kam.port, 2, wait=0.5).answered == 0
    assert sipg.udp_run("127.0.0.4", DST, kam.port, 2, wait=0.5).answered == 0
    assert sipg.check_ip(kam.port, "2001:db8:5::77") == -2
    assert sipg.udp_run("127.0.0.5", DST, kam.port, 1, wait=1.0).answered == 1
    assert sipg.udp_run("127.0.0.6", DST, kam.port, 1, wait=1.0).answered == 1


def test_restored_bans_logged(restarted):
    """Each restored ban logs its BAN line (reason=restored, the remaining
    duration), so fail2ban re-bans after a restart too."""
    kam, down, _ = restarted
    rest = {b["key"]: b for b in restored(kam)}
    assert set(rest) == {"127.0.0.2", "127.0.0.3", "2001:db8:5::/64", "127.0.0.4"}, \
        (rest, kam.log_tail(30))
    assert 60 - 2.5 - down - 3 <= int(rest["127.0.0.2"]["duration"]) <= 60 - 2.5, rest
    assert 300 - 2.5 - down - 3 <= int(rest["127.0.0.3"]["duration"]) <= 300 - 2.5, rest
    assert rest["127.0.0.4"]["duration"] == "permanent", rest
    assert rest["127.0.0.2"]["offences"] == "1", rest
    assert rest["127.0.0.2"]["src"] == "127.0.0.2"


def test_escalation_survives_restart(restarted):
    kam, _, _ = restarted
    # the next ban of 127.0.0.2 is its 2nd offence: 60 s * 2
    kam.kamcmd("sipguard.unban", "127.0.0.2")
    time.sleep(2.2)  # let the allowance refill
    sipg.udp_run("127.0.0.2", DST, kam.port, 60, wait=0.5)
    b = kam.wait_log(lambda: [x for x in kam.bans(src="127.0.0.2") if x["reason"] == "flood"
                              and x["offences"] == "2"], timeout=3, what="2nd flood BAN")
    assert b[0]["duration"] == "120", b


def test_periodic_save_survives_kill(kam_factory, tmp_path):
    """save_interval works: a SIGKILLed Kamailio (no shutdown save) still
    gets its bans back."""
    state = tmp_path / "sipguard.state"
    kam = kam_factory(name="psave", ban_time='"60s"', state_file=q(str(state)),
                      save_interval='"1s"')
    kam.kamcmd("sipguard.ban", "127.0.0.7", "300")
    time.sleep(3.0)  # at least one periodic save
    assert state.exists() and state.stat().st_size > 0, "no periodic save"
    kam.kill()  # SIGKILL: no shutdown save
    kam.start()
    time.sleep(0.5)
    assert "127.0.0.7" in kam.sg_list()["bans"], kam.last_list_raw
    assert sipg.udp_run("127.0.0.7", DST, kam.port, 2, wait=0.5).answered == 0


def test_corrupt_state_file_is_ignored(kam_factory, tmp_path):
    state = tmp_path / "sipguard.state"
    state.write_bytes(b"\x00garbage\xff" * 100)
    kam = kam_factory(name="corrupt", state_file=q(str(state)))
    assert kam.running()
    assert "corrupt" in kam.log_text_since_start().lower()
    assert kam.sg_list()["bans"] == {}
    assert sipg.udp_run("127.0.0.2", DST, kam.port, 1).answered == 1


def test_missing_state_dir_fails_or_reports(kam_factory, tmp_path):
    """An unwritable state file path is reported on save (not silently lost)."""
    state = tmp_path / "no-such-dir" / "sipguard.state"
    kam = kam_factory(name="nodir", state_file=q(str(state)), save_interval='"1s"')
    kam.kamcmd("sipguard.ban", "127.0.0.8", "300")
    time.sleep(2.5)
    log = kam.log_text_since_start()
    errs = [l for l in log.splitlines() if "ERROR" in l and "state" in l.lower()]
    assert errs, kam.log_tail()

"""state_file: bans survive a restart with their remaining time."""
import time

import pytest

import sipg
from conftest import q

DST = "127.0.0.1"


def restored(kam):
    return [b for b in kam.bans() if b["reason"] == "restored"]


def wait_stats(kam, pred, timeout=5.0, what="statistics"):
    """Poll the statistics until pred(stats) holds, within `timeout`; returns
    them. For what the once-a-second sweep recounts: polled instead of
    sleeping past a sweep."""
    last = []

    def check():
        last[:] = [kam.stats()]
        return last[0] if pred(last[0]) else None

    try:
        return kam.wait_log(check, timeout=timeout, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}\nlast statistics: {last}") from None


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
    t_banned = time.monotonic()
    # the 2 s ban ends (the sweep logs it), and at least 2 s pass for the
    # remaining times to show
    kam.wait_log(lambda: kam.unbans(key="127.0.0.5"), timeout=5, what="UNBAN of 127.0.0.5")
    time.sleep(max(0.0, t_banned + 2.0 - time.monotonic()))
    t_stop = time.monotonic()
    rc = kam.stop()
    assert rc == 0, f"kamailio exited with {rc}\n{kam.log_tail()}"
    assert state.exists() and state.stat().st_size > 0, "state file not written on shutdown"
    n_before = len(kam.bans())
    time.sleep(1.0)  # down for a while: restored end times are wall time
    kam.start()      # returns once the control socket answers
    down = time.monotonic() - t_stop
    return kam, down, t_stop - t_banned


def test_bans_restored_after_restart(restarted):
    kam, down, up = restarted
    bans = kam.sg_list()["bans"]
    assert set(bans) == {"127.0.0.2", "127.0.0.3", "2001:db8:5::/64", "127.0.0.4"}, \
        kam.last_list_raw
    # remaining time, not the original duration
    assert 60 - up - down - 2 <= bans["127.0.0.2"]["remaining"] <= 58, bans["127.0.0.2"]
    assert 300 - up - down - 2 <= bans["127.0.0.3"]["remaining"] <= 298, bans["127.0.0.3"]
    assert bans["127.0.0.4"]["remaining"] == "permanent"
    assert bans["127.0.0.2"]["offences"] == 1
    wait_stats(kam, lambda s: s["active_bans"] == 4, what="active_bans 4 (the sweep recounts)")

    assert sipg.udp_run("127.0.0.2", DST, kam.port, 2, wait=0.5).answered == 0
    assert sipg.udp_run("127.0.0.3", DST, kam.port, 2, wait=0.5).answered == 0
    assert sipg.udp_run("127.0.0.4", DST, kam.port, 2, wait=0.5).answered == 0
    assert sipg.check_ip(kam.port, "2001:db8:5::77") == -2
    assert sipg.udp_run("127.0.0.5", DST, kam.port, 1, wait=1.0).answered == 1
    assert sipg.udp_run("127.0.0.6", DST, kam.port, 1, wait=1.0).answered == 1


def test_restored_bans_logged(restarted):
    """Each restored ban logs its BAN line (reason=restored, the remaining
    duration), so fail2ban re-bans after a restart too."""
    kam, down, up = restarted
    rest = {b["key"]: b for b in restored(kam)}
    assert set(rest) == {"127.0.0.2", "127.0.0.3", "2001:db8:5::/64", "127.0.0.4"}, \
        (rest, kam.log_tail(30))
    assert 60 - up - down - 3 <= int(rest["127.0.0.2"]["duration"]) <= 60 - 2, rest
    assert 300 - up - down - 3 <= int(rest["127.0.0.3"]["duration"]) <= 300 - 2, rest
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
    # a periodic save writes the ban (within a second or two)
    kam.wait_log(lambda: state.exists() and "127.0.0.7 " in state.read_text(), timeout=5,
                 what="a periodic save with the ban")
    kam.kill()  # SIGKILL: no shutdown save
    kam.start()  # returns once the control socket answers
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


def _names_param_in_error(out: str, name: str) -> bool:
    return any("ERROR" in l and "sipguard" in l and name in l for l in out.splitlines())


@pytest.mark.parametrize("param", ["state_file", "fraud_state_file"])
def test_unwritable_state_file_refuses_start(kam_factory, tmp_path, param):
    """A state file whose directory is missing cannot be saved: Kamailio
    refuses to start, with an error naming the parameter (it used to start
    and fail every save)."""
    state = tmp_path / "no-such-dir" / "sipguard.state"
    if param == "state_file":
        kam = kam_factory(name="nodir", start=False, state_file=q(str(state)),
                          save_interval='"1s"')
    else:
        kam = kam_factory(name="nodirf", start=False,
                          extra=f'modparam("sipguard", "fraud_state_file", "{state}")')
    failed, out = sipg.start_fails(kam)
    assert failed, f"kamailio started with an unwritable {param}:\n{out[-3000:]}"
    assert _names_param_in_error(out, param), out[-3000:]
    assert "does not exist" in out, out[-3000:]
    assert not state.parent.exists()
    # the same path in an existing directory: starts, and the file is written
    state.parent.mkdir()
    kam.start()
    assert kam.running()
    if param == "state_file":
        assert state.exists(), "state_file not written at start"


def _state_line(key, secs, offences=1, reason="flood", prefix=""):
    until = int((time.time() + secs) * 1000)
    return f"{key} {until} {offences} {reason}{prefix}\n"


def test_bad_lines_skipped_good_ones_restored(kam_factory, tmp_path):
    """A state file with bad lines among good ones: each bad line is
    skipped with one warning naming its line number, every good line is
    restored (the whole file used to be discarded as corrupt)."""
    state = tmp_path / "sipguard.state"
    text = "# sipguard state v1\n# key until_unix_ms|permanent offences reason [prefix]\n"
    text += _state_line("127.0.0.11", 300)                        # 3
    text += "127.0.0.x 1795000000000 1 flood\n"                   # 4: bad address
    text += _state_line("127.0.0.12", 300, 2, "scanner")          # 5
    text += "127.0.0.13 soon 1 flood\n"                           # 6: bad end time
    text += "127.0.0.14 permanent 1 grumpy\n"                     # 7: unknown reason
    text += "127.0.0.15 permanent 1 manual\n"                     # 8
    text += "x" * 5000 + "\n"                                      # 9: too long
    text += _state_line("2001:db8:42::/64", 300)                  # 10
    text += _state_line("198.51.100.0/24", 300, 1, "scanner", " prefix")  # 11
    text += "127.0.0.16 1 2 3 4 5\n"                               # 12: 6 fields
    state.write_text(text)
    kam = kam_factory(name="badlines", state_file=q(str(state)), save_interval='"600s"')
    bans = kam.sg_list()["bans"]
    assert set(bans) == {"127.0.0.11", "127.0.0.12", "127.0.0.15", "2001:db8:42::/64",
                         "198.51.100.0/24"}, kam.last_list_raw
    assert bans["127.0.0.12"]["reason"] == "scanner" and bans["127.0.0.12"]["offences"] == 2
    assert bans["127.0.0.15"]["remaining"] == "permanent"
    log = kam.log_text_since_start()
    skipped = [l for l in log.splitlines() if "; line skipped" in l]
    assert len(skipped) == 5, skipped
    for n, why in [(4, "bad address"), (6, "bad end time"), (7, "unknown reason"),
                   (9, "line too long"), (12, "expected 4 fields")]:
        assert any(f"state_file {state}:{n}: {why}" in l and "WARNING" in l for l in skipped), \
            (n, why, skipped)
    assert "corrupt" not in log.lower(), kam.log_tail()
    assert sipg.udp_run("127.0.0.11", DST, kam.port, 2, wait=0.5).answered == 0
    assert sipg.check_ip(kam.port, "198.51.100.7") == -2     # the restored prefix ban
    assert sipg.check_ip(kam.port, "2001:db8:42::9") == -2
    assert sipg.udp_run("127.0.0.13", DST, kam.port, 1, wait=1.0).answered == 1
    assert len(restored(kam)) == 5, restored(kam)


def test_oversize_state_file_not_read(kam_factory, tmp_path):
    """A 1 GB (sparse) state file, far more than a 64-entry table can have
    written: not read at all (one error line, with its size), moved aside
    to sipguard.too-large, and Kamailio starts at once with an empty table
    (it used to read the whole file into memory first)."""
    state = tmp_path / "sipguard.state"
    with open(state, "wb") as f:
        f.write(("# sipguard state v1\n" + _state_line("127.0.0.11", 300)).encode())
        f.truncate(1 << 30)
    t0 = time.monotonic()
    kam = kam_factory(name="huge", table_size=64, state_file=q(str(state)))
    assert time.monotonic() - t0 < 15
    assert kam.running()
    log = kam.log_text_since_start()
    errs = [l for l in log.splitlines() if "ERROR" in l and "state_file" in l]
    assert len(errs) == 1, errs
    assert "1073741824 bytes" in errs[0] and "not read" in errs[0], errs
    aside = tmp_path / "sipguard.too-large"
    assert aside.exists() and aside.stat().st_size == 1 << 30
    assert kam.sg_list()["bans"] == {}, kam.last_list_raw
    assert sipg.udp_run("127.0.0.11", DST, kam.port, 1, wait=1.0).answered == 1
    # the fresh state file was written at start, small
    assert state.exists() and state.stat().st_size < 4096

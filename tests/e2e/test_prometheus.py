"""sipguard's statistics through Kamailio's xhttp_prom: the example
kamailio-cfg/sipguard-prometheus.cfg scraped with a real HTTP client
(urllib) while a flood runs, the gauges (active bans, suspended accounts)
going up and down, and the Grafana dashboard querying only metrics the
endpoint serves."""
from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request

import pytest

import sipg
from test_fraud import fraud_kam

PROM_CFG = sipg.REPO / "kamailio-cfg" / "sipguard-prometheus.cfg"
METRICS_CFG = sipg.REPO / "kamailio-cfg" / "prometheus" / "metrics.cfg"
DASHBOARD = sipg.REPO / "kamailio-cfg" / "prometheus" / "grafana-dashboard.json"
LINE = re.compile(r"^kamailio_sipguard_(\w+) (\d+)(?: \d+)?$")
STATS = ["checked", "passed", "allowlisted", "limited", "rejected", "bans", "unbans", "dropped",
         "untracked", "evictions", "active_bans", "entries_used", "table_size", "scanners",
         "enumerations", "auth_failures", "auth_bans", "throttles", "throttled_auth",
         "throttled_users", "normalized", "fraud_denied", "fraud_suspended", "active_calls",
         "suspended_accounts", "blocklisted", "blocklist_entries", "fraud_anomalies_destination",
         "fraud_anomalies_spend"]


def get(port: int, path: str = "/metrics", timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(port: int) -> dict:
    status, body = get(port)
    assert status == 200, (status, body)
    out = {}
    for ln in body.splitlines():
        m = LINE.match(ln)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def poll(port: int, pred, timeout: float = 5.0, what: str = "metrics") -> dict:
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(port)
        if pred(m):
            return m
        assert time.monotonic() < deadline, f"{what} not reached: {m}"
        time.sleep(0.2)


@pytest.fixture
def prom_kam(kam_factory, tmp_path):
    port = sipg.free_port()
    kam = sipg.start_example(kam_factory, tmp_path, PROM_CFG, SG_PROM_PORT=str(port),
                             SG_BAN_TIME='"20s"')
    kam.prom_port = port
    return kam


def test_every_statistic_served(prom_kam):
    m = scrape(prom_kam.prom_port)
    assert sorted(m) == sorted(STATS), m
    assert m["table_size"] == 65536 and m["checked"] == 0 and m["active_bans"] == 0


def test_counters_move_during_a_flood(prom_kam):
    port = prom_kam.prom_port
    before = scrape(port)
    done = {}

    def flood():
        s = sipg.Sprayer("127.0.0.1", prom_kam.port)
        try:
            done.update(s.flood("127.0.0.10", rate=200, seconds=3.0))
        finally:
            s.close()

    t = threading.Thread(target=flood)
    t.start()
    during = []
    try:
        deadline = time.monotonic() + 10
        while t.is_alive() and time.monotonic() < deadline:
            during.append(scrape(port))
            time.sleep(0.3)
    finally:
        t.join(timeout=15)
    assert not t.is_alive() and done["sent"] >= 300, done
    # scraped while the flood ran, and the counters grew between scrapes
    assert len(during) >= 3, during
    # received = checked by the script + dropped early once banned
    seen = [m["checked"] + m["dropped"] for m in during]
    assert seen == sorted(seen) and seen[-1] > seen[0] >= before["checked"], seen
    after = poll(port, lambda m: m["active_bans"] == 1, what="active_bans 1")
    assert after["bans"] == before["bans"] + 1 and after["limited"] == 1, after
    # early drop: the rest of the flood never reached the script
    assert after["dropped"] > 0, after
    assert after["entries_used"] >= 1
    # the gauge goes down again: the ban lifted by RPC
    prom_kam.kamcmd("sipguard.unban", "127.0.0.10")
    m = poll(port, lambda m: m["active_bans"] == 0, what="active_bans back to 0")
    assert m["unbans"] == after["unbans"] + 1


def test_metrics_only_on_the_metrics_port(prom_kam):
    assert get(prom_kam.prom_port, "/other")[0] == 404
    assert get(prom_kam.port, "/metrics")[0] == 403  # the SIP port
    # SIP still works beside it
    assert sipg.udp_run("127.0.0.9", "127.0.0.1", prom_kam.port, 3, wait=0.5).answered == 3


def test_suspended_accounts_gauge(kam_factory, tmp_path):
    cfg = tmp_path / "fraud-prom.cfg"
    cfg.write_text(f'#!KAMAILIO\nimport_file "{sipg.FRAUD_CFG}"\nimport_file "{METRICS_CFG}"\n')
    port = sipg.free_port()
    kam = fraud_kam(kam_factory, tmp_path, cfg=cfg, SG_PROM_PORT=str(port))
    assert scrape(port)["suspended_accounts"] == 0
    kam.kamcmd("sipguard.suspend", "alice")
    kam.kamcmd("sipguard.suspend", "bob")
    m = poll(port, lambda m: m["suspended_accounts"] == 2, what="suspended_accounts 2")
    assert m["fraud_suspended"] == 2 and m["active_calls"] == 0, m
    kam.kamcmd("sipguard.unsuspend", "alice")
    m = poll(port, lambda m: m["suspended_accounts"] == 1, what="suspended_accounts 1")
    assert m["fraud_suspended"] == 2, "a counter does not go down"


def test_grafana_dashboard_queries_served_metrics(prom_kam):
    dash = json.loads(DASHBOARD.read_text())
    served = {f"kamailio_sipguard_{k}" for k in scrape(prom_kam.prom_port)}
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs, "no queries in the dashboard"
    used = set()
    for e in exprs:
        used |= set(re.findall(r"kamailio_sipguard_\w+", e))
    assert used and used <= served, used - served
    # every level is shown as it is, every counter as a rate
    for gauge in ["active_bans", "throttled_users", "suspended_accounts", "active_calls"]:
        assert any(re.search(rf"(?<!rate\()(?<!increase\()kamailio_sipguard_{gauge}\b", e)
                   for e in exprs), gauge
    for counter in ["checked", "limited", "bans", "dropped"]:
        assert any(re.search(rf"(rate|increase)\(kamailio_sipguard_{counter}(\{{[^}}]*\}})?\[", e)
                   for e in exprs), counter

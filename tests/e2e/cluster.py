"""A cluster of real Kamailio nodes for the sipguard cluster tests: each
node runs kamailio-cfg/sipguard-cluster.cfg (dmq + sipguard, cluster=1) on
its own loopback address 127.0.1.<n> (DMQ tells nodes apart by source
address), all on one port, the first node being every node's seed.
Every wait is bounded in time."""
from __future__ import annotations

import signal
import socket
import time
import uuid
from pathlib import Path

import sipg

CLUSTER_CFG = sipg.REPO / "kamailio-cfg" / "sipguard-cluster.cfg"


def node_addr(i: int) -> str:
    """Address of node i (0-based)."""
    return f"127.0.1.{i + 1}"


def _port_free(addrs, port: int) -> bool:
    for a in addrs:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((a, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


class Cluster:
    def __init__(self, factory, n: int = 3, children: int = 2, cfg: Path | None = None,
                 **defines):
        self.factory = factory
        self.cfg = Path(cfg or CLUSTER_CFG)
        self.tmp = Path(factory.tmp)
        self.port = next(p for p in (sipg.free_port() for _ in range(20))
                         if _port_free([node_addr(i) for i in range(n)], p))
        self.nodes = [self._node(i, children, defines) for i in range(n)]

    def _node(self, i: int, children: int, defines: dict) -> sipg.Kamailio:
        rundir = self.tmp / f"node{i + 1}-run"
        rundir.mkdir(parents=True, exist_ok=True)
        d = {"SG_CHILDREN": str(children), "SG_ADDR4": node_addr(i)}
        d.update({k if k.startswith("SG_") else "SG_" + k.upper(): v for k, v in defines.items()})
        k = sipg.Kamailio(
            cfg=self.cfg, workdir=self.tmp, name=f"node{i + 1}", port=self.port, defines=d,
            extra_args=[f"--substdef=!SG_RUNDIR!{rundir}!g",
                        f"--substdef=!SG_NODE!{node_addr(i)}:{self.port}!g",
                        f"--substdef=!SG_SEED!{node_addr(0)}:{self.port}!g"])
        k.rundir = rundir
        k.ctl = rundir / "kamailio_ctl"
        k.no_default_defines = True
        k.addr = node_addr(i)
        self.factory.started.append(k)
        return k

    def start(self, timeout: float = 30.0, wait: bool = True) -> "Cluster":
        """Start every node; `wait`: until the cluster formed (sipguard's
        own view: a config without sipguard passes False)."""
        for k in self.nodes:
            k.start()
        if wait:
            self.wait_joined(timeout)
        return self

    def wait_joined(self, timeout: float = 30.0, nodes=None):
        """Until every node lists every other as a dmq node and its sync is done."""
        nodes = nodes or self.nodes
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.dmq_nodes(k) >= len(self.nodes) and info(k)["synced"] == 1
                   for k in nodes):
                return
            time.sleep(0.2)
        raise AssertionError("cluster did not form: " + "; ".join(
            f"{k.name}: {k.kamcmd('dmq.list_nodes', check=False).stdout!r}" for k in nodes))

    @staticmethod
    def dmq_nodes(k) -> int:
        out = k.kamcmd("dmq.list_nodes", check=False).stdout
        return out.count("status: active")

    def restart(self, i: int) -> sipg.Kamailio:
        k = self.nodes[i]
        k.kill()
        k.start()
        return k

    def pause(self, i: int):
        self.nodes[i].proc.send_signal(signal.SIGSTOP)
        for pid in self.nodes[i].group_pids():
            try:
                import os
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass

    def resume(self, i: int):
        import os
        for pid in self.nodes[i].group_pids():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def info(k) -> dict:
    """sipguard.cluster's top-level figures."""
    out = k.kamcmd("sipguard.cluster").stdout
    res = {}
    for line in out.splitlines():
        line = line.strip()
        if ":" in line and not line.endswith("{"):
            key, _, v = line.partition(":")
            if key not in res:
                res[key] = sipg._num(v.strip())
    return res


def banned_keys(k) -> set:
    return set(k.sg_list("1", "100000")["bans"])


def answered(src: str, node: sipg.Kamailio, wait: float = 0.3) -> bool:
    """One OPTIONS from src to node: answered?"""
    with sipg.UdpClient(src, node.addr, node.port) as c:
        return c.run(1, wait=wait).answered == 1


def wait_until(pred, timeout: float, step: float = 0.05):
    """Seconds until pred() held, or None after timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def kdmq(src: str, node: sipg.Kamailio, body: str, peer: str = "sipguard",
         from_host: str | None = None, wait: float = 1.0) -> int | None:
    """A KDMQ request to node's DMQ peer `peer` from `src` (a forged one:
    From claims to be node `from_host`). Returns the status code or None."""
    from_host = from_host or node_addr(0)
    callid = uuid.uuid4().hex
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((src, 0))
        sport = s.getsockname()[1]
        msg = (f"KDMQ sip:{peer}@{node.addr}:{node.port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {src}:{sport};branch=z9hG4bK{callid[:12]};rport\r\n"
               f"From: <sip:{from_host}:{node.port}>;tag={callid[:8]}\r\n"
               f"To: <sip:{node.addr}:{node.port}>\r\n"
               f"Call-ID: {callid}\r\nCSeq: 1 KDMQ\r\nMax-Forwards: 1\r\n"
               f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n{body}")
        s.sendto(msg.encode(), (node.addr, node.port))
        s.settimeout(wait)
        try:
            data = s.recv(65535)
        except socket.timeout:
            return None
        r = sipg.parse_sip_reply(data)
        return r.code if r else None
    finally:
        s.close()


AUTH_CFG = sipg.REPO / "kamailio-cfg" / "sipguard-auth.cfg"
FRAUD_CFG = sipg.REPO / "kamailio-cfg" / "sipguard-fraud.cfg"

# an example bundle made a cluster node: dmq loaded first, cluster=1, KDMQ
# handed to dmq before any check (sipguard's peer trusts only dmq nodes)
_AS_NODE = [
    ('loadmodule "sipguard.so"\n',
     'loadmodule "dmq.so"\nloadmodule "sipguard.so"\n'
     'modparam("dmq", "server_address", "sip:SG_NODE")\n'
     'modparam("dmq", "notification_address", "sip:SG_SEED")\n'
     'modparam("dmq", "multi_notify", 1)\n'
     'modparam("sipguard", "cluster", 1)\n'),
    ("request_route {\n",
     'request_route {\n\tif($rm == "KDMQ") {\n\t\tdmq_handle_message();\n\t\texit;\n\t}\n'),
]


def _node_cfg(src: Path, dst: Path, edits: list) -> Path:
    text = src.read_text()
    for old, new in _AS_NODE + edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    dst.write_text(text)
    return dst


def auth_cluster_cfg(tmp: Path, user_maxretry: int) -> Path:
    """kamailio-cfg/sipguard-auth.cfg (registrar, digest auth, the guessing
    defences) made a cluster node, with user_maxretry of the test's."""
    subs = sipg.REPO / "kamailio-cfg" / "auth" / "subscribers.cfg"
    return _node_cfg(AUTH_CFG, Path(tmp) / "sipguard-auth-cluster.cfg", [
        ('include_file "auth/subscribers.cfg"', f'include_file "{subs}"'),
        ('modparam("sipguard", "user_maxretry", 20)',
         f'modparam("sipguard", "user_maxretry", {user_maxretry})'),
    ])


def fraud_cluster_cfg(tmp: Path) -> Path:
    """kamailio-cfg/sipguard-fraud.cfg (tm + dialog + toll fraud) made a
    cluster node."""
    return _node_cfg(FRAUD_CFG, Path(tmp) / "sipguard-fraud-cluster.cfg", [])


def users(k) -> dict:
    """{user: entry} from sipguard.users."""
    return {u.get("user"): u for u in sipg.leaf_structs(sipg.parse_tree(
        k.kamcmd("sipguard.users").stdout))}


def throttled(k, user: str) -> bool:
    u = users(k).get(user)
    return bool(u) and sipg._num(u["throttled"]) > 0

#!/usr/bin/env python3
"""Turn an APIBAN answer into a sipguard blocklist file.

APIBAN (apiban.org) answers GET /api/<key>/banned/<ID> with JSON such as
{"ipaddress": ["192.0.2.1", "198.51.100.7"], "ID": "1700000000"}: the
addresses banned since ID, and the ID to ask from next time. This script
writes them as sipguard's blocklist_file (one address or CIDR a line, '#'
comments), atomically (a temporary file renamed over the old one), so
`kamcmd sipguard.reload_blocklist` never reads half a file.

    curl -s https://apiban.org/api/$KEY/banned/100 > /tmp/apiban.json
    apiban-to-blocklist.py /tmp/apiban.json /etc/kamailio/blocklist.txt
    kamcmd sipguard.reload_blocklist

--append keeps the addresses already in the output file (for the answers
after the first, which hold only new bans); --max N refuses to write more
than N entries (sipguard's blocklist_max). Values that are not an IPv4 or
IPv6 address or network (APIBAN answers ["no new bans"] when there are none)
are skipped with a warning on stderr. The next ID is printed on stdout.

Python 3 standard library only. Exit status: 0 written, 1 bad input, 2 usage.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import tempfile


def networks(values, warn) -> list:
    """The canonical text of each value that is an address or network."""
    out = []
    for v in values:
        try:
            net = ipaddress.ip_network(str(v).strip(), strict=False)
        except ValueError:
            warn(f"skipped {v!r}: not an IPv4 or IPv6 address or network")
            continue
        full = net.prefixlen == net.max_prefixlen
        out.append(str(net.network_address) if full else str(net))
    return out


def read_blocklist(path: str) -> list:
    """The entries of an existing blocklist file (comments dropped)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.split("#", 1)[0].strip() for line in f]
    except FileNotFoundError:
        return []
    return [line for line in lines if line]


def write_atomic(path: str, text: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".blocklist-", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="APIBAN JSON answer -> sipguard blocklist_file")
    p.add_argument("answer", help="the APIBAN JSON answer, '-' for stdin")
    p.add_argument("output", help="the blocklist file to write")
    p.add_argument("--append", action="store_true",
                   help="keep the entries already in the output file")
    p.add_argument("--max", type=int, default=0,
                   help="refuse to write more entries than this (blocklist_max)")
    a = p.parse_args(argv)

    def warn(msg):
        print(f"apiban-to-blocklist: {msg}", file=sys.stderr)

    try:
        if a.answer == "-":
            doc = json.load(sys.stdin)
        else:
            with open(a.answer, encoding="utf-8") as f:
                doc = json.load(f)
    except (OSError, ValueError) as e:
        warn(f"cannot read the answer: {e}")
        return 1
    if not isinstance(doc, dict) or not isinstance(doc.get("ipaddress"), list):
        warn('the answer has no "ipaddress" list')
        return 1
    new = networks(doc["ipaddress"], warn)
    old = read_blocklist(a.output) if a.append else []
    entries = list(dict.fromkeys(old + new))
    if a.max and len(entries) > a.max:
        warn(f"{len(entries)} entries, more than --max {a.max}: {a.output} left as it was")
        return 1
    next_id = str(doc.get("ID", ""))
    head = f"# sipguard blocklist from APIBAN (ID {next_id}): {len(entries)} entries\n"
    write_atomic(a.output, head + "".join(e + "\n" for e in entries))
    print(next_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())

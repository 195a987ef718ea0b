"""The user name the guessing defences judge is Kamailio's own $rU / $tU.

The module spares parsing a URI whose user part Kamailio's parser would
leave empty (the core's rule, sip::uri::lacks_user: a sip:/sips: URI
without '@'). This differential test sends each URI form as R-URI and as
To URI and compares $sipguard(target_user), read before anything else
parses the URIs, with the $rU and $tU that Kamailio's parser gives the
script: for REGISTER the To user, otherwise the R-URI user, or the To user
when the R-URI has none.
"""
from __future__ import annotations

import re

import pytest

from auth_tools import RawClient

# URI forms: users, no users, schemes in other cases, '@' in odd places,
# tel: (a number is its user), parse errors
FORMS = [
    "sip:127.0.0.1",
    "sip:127.0.0.1:5060",
    "sip:1001@127.0.0.1",
    "SIP:1001@127.0.0.1",
    "SIP:example.org",
    "sIpS:example.org:5061;transport=tls",
    "sips:1001@example.org",
    "sip:[::1]:5060",
    "sip:1001:secret@example.org",
    "sip:example.org:5060;user=phone",
    "sip:+4930123456@example.org;user=phone",
    "sip:host;x=a@b",
    "sip:host?h=a@b",
    "sip:%40@example.org",
    "sip:alice%40home@example.org",
    "sip:@example.org",
    "sip:a@b@c",
    "sip:example.org;lr;maddr=10.0.0.1",
    "tel:+12025550100",
    "tel:555;phone-context=+1202",
    "TEL:+12025550100",
    "urn:service:sos",
    "sip:1001;tag=x@example.org",
    "sip:trailing.example.org.",
]


def probe(cli: RawClient, method: str, ruri: str, to: str) -> dict:
    r = cli.transact(method, ruri, frm="sip:probe@127.0.0.1", to=to,
                     headers=["X-Target-Probe: 1"], timeout=3.0)
    assert r is not None, f"no reply to {method} {ruri} / To {to}"
    assert r.code == 200, (method, ruri, to, r.code)

    def val(name: str) -> str:
        m = re.fullmatch(r"\[(.*)\]", r.header(name) or "")
        assert m, (name, r.header(name))
        v = m.group(1)
        return "" if v == "<null>" else v

    return {"target": val("X-Target"), "ru": val("X-RU"), "tu": val("X-TU")}


@pytest.mark.parametrize("method", ["OPTIONS", "REGISTER", "INVITE"])
def test_target_user_is_kamailios_user(kam_module_factory, method):
    kam = kam_module_factory(f"target-{method.lower()}")
    cli = RawClient("127.0.9.1", kam.port)
    try:
        checked = 0
        for form in FORMS:
            # the form as R-URI (To with a user), then as To (R-URI without)
            for ruri, to in ((form, "sip:2002@127.0.0.1"), ("sip:127.0.0.1", form)):
                v = probe(cli, method, ruri, to)
                want = v["tu"] if method == "REGISTER" or not v["ru"] else v["ru"]
                assert v["target"] == want, (method, ruri, to, v)
                checked += 1
        assert checked == 2 * len(FORMS)
    finally:
        cli.close()


def test_forms_cover_both_answers(kam_module_factory):
    """The forms above include URIs with and without a user part in
    Kamailio's parser, both as sip: without '@' and as other schemes, so
    the comparison exercises the spared parse and the parsed path."""
    kam = kam_module_factory("target-cover")
    cli = RawClient("127.0.9.2", kam.port)
    try:
        users = {f: probe(cli, "OPTIONS", f, "sip:2002@127.0.0.1")["ru"] for f in FORMS}
    finally:
        cli.close()
    assert users["sip:127.0.0.1"] == "" and users["SIP:example.org"] == ""
    assert users["sip:1001@127.0.0.1"] == "1001"
    assert users["tel:+12025550100"] == "+12025550100"
    assert users["sip:host;x=a@b"] != ""

"""What a URI dials, the forms refused rather than guessed, end to end
through kamailio-cfg/sipguard-fraud.cfg: a number of a length its country's
numbers never have, and a domain phone-context unless the operator lists
the domain (phone_context_domains) with the prefix it stands for."""
from __future__ import annotations

import sipg
from conftest import q
from test_fraud import FORMS_RULES, UacAndCallee, denials, fraud_kam

# (R-URI, final status, the R-URI the callee gets, the dial reason)
CASES = [
    ("tel:2071234567;phone-context=pbx.example.com", 486,
     "sip:+442071234567@127.0.0.1;user=phone", None),
    ("sip:2071234567;phone-context=PBX.Example.COM@127.0.0.1;user=phone", 486,
     "sip:+442071234567@127.0.0.1;user=phone", None),
    ("tel:2071234567;phone-context=other.example.com", 404, None,
     "bad number: phone-context is a domain"),
    ("sip:+449001@127.0.0.1", 404, None, "bad number: not a valid length for its country"),
    ("sip:+1212555010@127.0.0.1", 404, None, "bad number: not a valid length for its country"),
    ("tel:9001;phone-context=pbx.example.com", 404, None,
     "bad number: not a valid length for its country"),
]


def test_lengths_and_listed_domain_contexts(kam_factory, tmp_path):
    kam = fraud_kam(kam_factory, tmp_path, rules=FORMS_RULES,
                    SG_PHONE_CONTEXT_DOMAINS=q("pbx.example.com=+44"))
    ua = UacAndCallee(kam)
    try:
        got = [(u, *ua.invite("globe", u)) for u, _, _, _ in CASES]
    finally:
        ua.close()
    assert got == [(u, status, relayed) for u, status, relayed, _ in CASES], kam.log_tail(40)
    reasons = [why for _, _, why in denials(kam, "globe")]
    assert reasons == [why for *_, why in CASES if why], reasons


def test_a_bad_domain_list_refuses_to_start(kam_factory, tmp_path):
    kam = fraud_kam(kam_factory, tmp_path, start=False,
                    SG_PHONE_CONTEXT_DOMAINS=q("pbx.example.com=44"))
    failed, out = sipg.start_fails(kam)
    assert failed, out[-3000:]
    assert "parameter phone_context_domains: " in out, out[-3000:]

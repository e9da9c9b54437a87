"""Native unit tests (pytest): the policy's code, no wasm build."""

from portcullis import Trigger
from portcullis.testing import request

import app


def test_a_blocked_domain_is_denied_and_others_are_not():
    config = {"blocked_domains": ["example.net"]}
    blocked = request(Trigger.PRE_AUTHENTICATION).attr("email", "eve@Example.net").config(config)
    assert not app.evaluate(blocked.build()).allowed
    other = request(Trigger.PRE_AUTHENTICATION).attr("email", "ada@acme.example").config(config)
    assert app.evaluate(other.build()).allowed


def test_tokens_carry_the_plan():
    verdict = app.evaluate(request(Trigger.PRE_TOKEN_GENERATION).config({"plan": "pro"}).build())
    assert verdict.id_claim_value("plan") == "pro"

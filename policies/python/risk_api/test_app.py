"""Native unit tests of the Python risk-api policy (pytest, no wasm build)."""

import pytest

from portcullis import PolicyError, Trigger
from portcullis.testing import request

from risk_api.app import evaluate


def decide(trigger, answer):
    r = request(trigger)
    if answer is not None:
        r = r.data("risk", answer)
    return evaluate(r.build())


def test_a_high_score_is_denied_and_tokens_carry_the_level():
    assert not decide(Trigger.PRE_AUTHENTICATION, {"score": 0.93}).allowed
    token = decide(Trigger.PRE_TOKEN_GENERATION, {"score": 0.6})
    assert token.id_claim_value("risk_level") == "elevated"
    assert decide(Trigger.PRE_TOKEN_GENERATION, {"score": 0.1}).id_claim_value("risk_level") == "low"


def test_without_an_answer_the_sign_in_is_allowed_with_reduced_functionality():
    assert decide(Trigger.PRE_AUTHENTICATION, None).allowed
    assert decide(Trigger.PRE_TOKEN_GENERATION, None).id_claim_value("risk_level") == "unknown"


def test_a_malformed_answer_is_an_error():
    for bad in ({"score": 7}, {"risk": "high"}, {"score": True}):
        with pytest.raises(PolicyError):
            decide(Trigger.PRE_AUTHENTICATION, bad)

"""Native unit tests of the Python email-domain policy (pytest, no wasm build)."""

import pytest

from email_domain.app import evaluate
from portcullis import PolicyError, Trigger
from portcullis.testing import request

DOMAINS = {"domains": ["acme.example"]}


def signin(email, verified="true"):
    return request(Trigger.PRE_AUTHENTICATION).attr("email", email).attr("email_verified", verified)


def test_a_verified_address_in_the_domain_is_allowed():
    assert evaluate(signin("ada@ACME.example").config(DOMAINS).build()).allowed


def test_an_unverified_address_is_denied_unless_configured():
    assert not evaluate(signin("ada@acme.example", "false").config(DOMAINS).build()).allowed
    relaxed = {**DOMAINS, "require_verified": False}
    assert evaluate(signin("ada@acme.example", "false").config(relaxed).build()).allowed


def test_subdomains_only_when_asked():
    assert not evaluate(signin("ada@eu.acme.example").config(DOMAINS).build()).allowed
    assert evaluate(signin("ada@eu.acme.example").config({**DOMAINS, "subdomains": True}).build()).allowed


def test_missing_domains_is_a_rule_failure():
    with pytest.raises(PolicyError):
        evaluate(signin("ada@acme.example").build())

"""The request's token source, federation and trusted context; the backend signing helper."""

import base64
import hashlib
import hmac
import json

import pytest

from portcullis import EVERY_SIGN_IN, TokenSource, Trigger
from portcullis.context import METADATA_KEY, sign_context
from portcullis.testing import request


def test_token_source_and_trusted_context_read_as_the_host_holds_them():
    refresh = request(Trigger.PRE_TOKEN_GENERATION).source("TokenGeneration_RefreshTokens").build()
    assert refresh.token_source() == TokenSource.REFRESH_TOKENS
    assert refresh.is_refresh()
    assert refresh.trusted() is None
    m2m = request(Trigger.PRE_TOKEN_GENERATION).source("TokenGeneration_ClientCredentials").build()
    assert m2m.is_machine_to_machine()
    sign_in = (
        request(Trigger.PRE_AUTHENTICATION)
        .federated(first=True)
        .trusted(ip="203.0.113.7", fields={"risk_score": 12})
        .client_meta("ip", "10.0.0.1")
        .build()
    )
    assert sign_in.token_source() == TokenSource.NONE
    assert sign_in.is_federated() and sign_in.is_first_federated()
    assert sign_in.trusted_ip() == "203.0.113.7"
    assert sign_in.trusted_field("risk_score") == "12"
    assert sign_in.client_meta("ip") == "10.0.0.1"
    assert EVERY_SIGN_IN == [Trigger.PRE_AUTHENTICATION, Trigger.PRE_TOKEN_GENERATION]


def test_sign_context_makes_the_envelope_format_the_host_verifies():
    key = "acme-context-key-0123456789abcdef0123456789"
    envelope = sign_context(key, "acme", user="ada", ip="203.0.113.7", now_ms=1767268800000, nonce="n-1")
    version, payload, mac = envelope.split(".")
    assert version == "v1"
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims == {"tenant": "acme", "iat_ms": 1767268800000, "nonce": "n-1", "user": "ada", "ip": "203.0.113.7"}
    expected = hmac.new(key.encode(), f"portcullis-context.v1.acme.{payload}".encode(), hashlib.sha256).digest()
    assert mac == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()
    assert METADATA_KEY == "portcullis_context"
    with pytest.raises(ValueError):
        sign_context("short", "acme")

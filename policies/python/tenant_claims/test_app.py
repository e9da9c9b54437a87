"""Native unit tests of the Python tenant-claims policy (pytest, no wasm build)."""

from portcullis import Trigger
from portcullis.testing import request
from tenant_claims.app import evaluate


def test_tenant_claims_and_scope():
    verdict = evaluate(request(Trigger.PRE_TOKEN_GENERATION).tenant("acme").config({"roles": ["member"]}).build())
    assert verdict.id_claim_value("tenant_id") == "acme"
    assert verdict.id_claim_value("roles") == ["member"]
    assert verdict.scopes_add == ["tenant:acme"]


def test_roles_from_data_win_and_claims_are_suppressed():
    r = request(Trigger.PRE_TOKEN_GENERATION).config({"roles": ["member"], "suppress": ["phone_number"]})
    verdict = evaluate(r.data("member", {"roles": ["owner"]}).build())
    assert verdict.id_claim_value("roles") == ["owner"]
    assert verdict.id_suppress == ["phone_number"]

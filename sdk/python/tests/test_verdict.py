"""The Python SDK's verdict builder lowers to the contract's verdict record."""

from wit_world.imports import types

from portcullis import Verdict


def test_a_deny_lowers_to_the_contracts_deny():
    raw = Verdict.deny("Not allowed").suppress("phone_number")._raw()
    assert raw.decision == types.Decision_Deny("Not allowed")
    assert raw.id_suppress == ["phone_number"]


def test_claims_are_json_text_and_groups_keep_their_order():
    raw = (
        Verdict.allow()
        .id_claim("tenant_id", "acme")
        .access_claim("roles", ["member"])
        .add_scope("tenant:acme")
        .groups(["staff"], preferred_role=None)
        ._raw()
    )
    assert raw.decision == types.Decision_Allow()
    assert raw.id_claims == [types.Claim("tenant_id", '"acme"')]
    assert raw.access_claims == [types.Claim("roles", '["member"]')]
    assert raw.scopes_add == ["tenant:acme"]
    assert raw.groups == types.GroupOverride(["staff"], [], None)


def test_counter_changes_are_kept_in_order_and_dropped_natively():
    verdict = Verdict.allow().count("attempts", 3).reset("attempts").count("ip")
    assert verdict.counter_changes == [("attempts", 3), ("attempts", None), ("ip", 1)]
    # Natively there is no host: handing them over is a no-op, never an error.
    verdict._ask_for_counts()
    assert verdict._raw().decision == types.Decision_Allow()

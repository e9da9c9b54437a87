"""Adds tenant claims in pre token generation: ``tenant_id`` and ``roles`` (from the data
item ``member``, else from configuration) to the ID and access tokens, a ``tenant:<id>``
scope, and suppresses the configured claims. The Python twin of ``policies/tenant-claims``.

Configuration: ``{"roles": ["member"], "suppress": ["phone_number"], "scope_prefix":
"tenant:"}``, all optional. Data item ``member``: ``{"roles": ["admin"]}``.
"""

from portcullis import PolicyError, Trigger, Verdict, policy

FIELDS = {"roles", "suppress", "scope_prefix"}


@policy(
    triggers=[Trigger.PRE_TOKEN_GENERATION],
    description="adds tenant_id and roles claims and suppresses configured claims",
    name="tenant-claims-py",
)
def evaluate(request):
    config = request.config()
    unknown = sorted(set(config) - FIELDS)
    if unknown:
        raise PolicyError(f"invalid rule configuration: unknown field `{unknown[0]}`")
    member = request.data("member")
    roles = member.get("roles", []) if isinstance(member, dict) else config.get("roles", [])
    tenant = request.tenant()
    prefix = config.get("scope_prefix") or "tenant:"
    verdict = (
        Verdict.allow()
        .id_claim("tenant_id", tenant)
        .id_claim("roles", roles)
        .access_claim("tenant_id", tenant)
        .access_claim("roles", roles)
        .add_scope(prefix + tenant)
    )
    for claim in config.get("suppress", []):
        verdict = verdict.suppress(claim)
    return verdict

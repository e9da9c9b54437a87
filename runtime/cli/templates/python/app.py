"""{{name}}: a Portcullis sign-in policy.

Every path to a token (pre-authentication and pre token generation, so refreshes and first
federated sign-ins too): blocks users whose email is in one of ``blocked_domains``.
Pre token generation: adds a ``plan`` claim to the ID token of everyone else.
Configuration (manifest.json, or a test case's ``config``):
``{"blocked_domains": ["example.net"], "plan": "free"}``, both optional.
"""

from portcullis import EVERY_SIGN_IN, PolicyError, Trigger, Verdict, policy


@policy(
    name="{{name}}",
    triggers=EVERY_SIGN_IN,
    description="blocks configured email domains; adds a plan claim",
)
def evaluate(request):
    config = request.config()
    unknown = sorted(set(config) - {"blocked_domains", "plan"})
    if unknown:
        raise PolicyError(f"invalid rule configuration: unknown field `{unknown[0]}`")
    email = request.attr("email") or ""
    domain = email.rpartition("@")[2].lower()
    if domain in (d.lower() for d in config.get("blocked_domains", [])):
        return Verdict.deny("Sign-in with this email address is not allowed")
    if request.trigger() == Trigger.PRE_TOKEN_GENERATION:
        return Verdict.allow().id_claim("plan", config.get("plan", "free"))
    return Verdict.allow()

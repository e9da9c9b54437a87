"""Asks an external risk service about each sign-in, through a lookup the host makes. The
Python twin of ``policies/risk-api`` (Rust): same configuration, same decisions.

The manifest entry declares the lookup (``"lookups": {"risk": {"url": …, "fallback":
true}}``); the service answers ``{"score": 0.0–1.0}``. A score above ``deny_above`` is
denied; otherwise the tokens carry ``risk_level`` (``low``, ``elevated``), and when the
service gave no answer the sign-in is allowed with reduced functionality:
``risk_level: "unknown"``.
"""

from portcullis import EVERY_SIGN_IN, PolicyError, Trigger, Verdict, policy

DEFAULTS = {
    "lookup": "risk",
    "deny_above": 0.8,
    "elevated_above": 0.5,
    "message": "This sign-in looks unusual. Contact your administrator",
}


@policy(
    triggers=EVERY_SIGN_IN,
    description="blocks sign-ins a risk service scores high (HTTP lookup); marks tokens with the risk level",
    name="risk-api-py",
)
def evaluate(request):
    config = request.config() or {}
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise PolicyError(f"invalid rule configuration: unknown field `{sorted(unknown)[0]}`")
    config = {**DEFAULTS, **config}
    answer = request.data(config["lookup"])
    if answer is None:
        level = "unknown"
    else:
        score = answer.get("score") if isinstance(answer, dict) else None
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise PolicyError("the risk service's answer has no score")
        if not 0.0 <= score <= 1.0:
            raise PolicyError("the risk service's score is outside 0 to 1")
        if score > config["deny_above"]:
            return Verdict.deny(config["message"])
        level = "elevated" if score > config["elevated_above"] else "low"
    verdict = Verdict.allow()
    if request.trigger() == Trigger.PRE_TOKEN_GENERATION:
        verdict = verdict.id_claim("risk_level", level).access_claim("risk_level", level)
    return verdict

"""Allows sign-in only for users whose verified ``email`` is in one of the configured
domains. The Python twin of ``policies/email-domain`` (Rust): same configuration, same
decisions.

Configuration: ``{"domains": ["example.com"], "subdomains": false, "require_verified":
true, "message": "Sign-in is restricted to company accounts"}``.
"""

from portcullis import PolicyError, Trigger, Verdict, policy

DEFAULT_MESSAGE = "Sign-in is restricted to approved email domains"


def _allowed(domain, config):
    domain = domain.lower()
    for allowed in config["domains"]:
        allowed = allowed.lstrip("@").lower()
        if domain == allowed or (
            config["subdomains"] and len(domain) > len(allowed) and domain.endswith("." + allowed)
        ):
            return True
    return False


@policy(
    triggers=[Trigger.PRE_AUTHENTICATION],
    description="allows only email addresses in the configured domains",
    name="email-domain-py",
)
def evaluate(request):
    given = request.config()
    unknown = sorted(set(given) - {"domains", "subdomains", "require_verified", "message"})
    if unknown:
        raise PolicyError(f"invalid rule configuration: unknown field `{unknown[0]}`")
    if not isinstance(given.get("domains"), list):
        raise PolicyError("invalid rule configuration: missing field `domains`")
    config = {"subdomains": False, "require_verified": True, "message": DEFAULT_MESSAGE, **given}
    if request.user_not_found():
        return Verdict.allow()
    if config["require_verified"] and request.attr("email_verified") != "true":
        return Verdict.deny(config["message"])
    email = request.attr("email") or ""
    _, at, domain = email.rpartition("@")
    if at and _allowed(domain, config):
        return Verdict.allow()
    return Verdict.deny(config["message"])

"""Blocks suspended users: a user attribute (``custom:suspended`` by default) set to
``true``, or a prefetched data item (alias ``user`` by default) whose ``suspended`` field
is true. The Python twin of ``policies/suspended-users`` (Rust): same configuration, same
decisions.

Configuration (all optional):
``{"attribute": "custom:suspended", "data": "user", "message": "Your account is suspended"}``.
"""

from portcullis import EVERY_SIGN_IN, PolicyError, Verdict, policy

DEFAULTS = {"attribute": "custom:suspended", "data": "user", "message": "Your account is suspended"}


@policy(
    # Every path to a token: refreshes and first federated sign-ins never pass pre-authentication.
    triggers=EVERY_SIGN_IN,
    description="blocks users flagged suspended by an attribute or a prefetched data item",
    name="suspended-users-py",
)
def evaluate(request):
    config = request.config()
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise PolicyError(f"invalid rule configuration: unknown field `{sorted(unknown)[0]}`")
    config = {**DEFAULTS, **config}
    if request.user_not_found():
        # Nothing to say about users that do not exist; Cognito fails them anyway.
        return Verdict.allow()
    flag = request.attr(config["attribute"])
    by_attribute = flag is not None and (flag.lower() == "true" or flag == "1")
    item = request.data(config["data"])
    by_data = isinstance(item, dict) and item.get("suspended") is True
    if by_attribute or by_data:
        return Verdict.deny(config["message"])
    return Verdict.allow()

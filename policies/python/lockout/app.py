"""Locks an identifier out after too many failed sign-in attempts within a window. The
Python twin of ``policies/lockout`` (Rust): same configuration, same decisions.

The host keeps the count (the manifest entry declares it under ``counters``, e.g.
``{"attempts": {"key": "user#{username}", "window_s": 900}}``): it adds one in
pre-authentication and resets it in post-authentication, so the count is the failed
attempts since the last success. From ``max_attempts`` on, the sign-in is blocked until the
window is over.

Configuration (all optional): ``{"counter": "attempts", "max_attempts": 5,
"allow_users": [], "allow_ips": [], "action": "block", "message": "Too many failed sign-in
attempts. Try again later"}``. ``allow_ips`` match the trusted IP only.
"""

import ipaddress

from portcullis import Level, PolicyError, Trigger, Verdict, log, policy

DEFAULTS = {
    "counter": "attempts",
    "max_attempts": 5,
    "allow_users": [],
    "allow_ips": [],
    "action": "block",
    "message": "Too many failed sign-in attempts. Try again later",
}


def _config(request):
    config = request.config() or {}
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise PolicyError(f"invalid rule configuration: unknown field `{sorted(unknown)[0]}`")
    config = {**DEFAULTS, **config}
    limit = config["max_attempts"]
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise PolicyError("`max_attempts` must be at least 1")
    if config["action"] not in ("block", "notify"):
        raise PolicyError(f"invalid rule configuration: unknown action `{config['action']}`")
    try:
        config["allow_ips"] = [ipaddress.ip_network(net) for net in config["allow_ips"]]
    except ValueError as error:
        raise PolicyError(f"invalid rule configuration: {error}") from error
    return config


def _trusted_ip(request):
    ip = request.trusted_ip()
    if ip is None:
        return None
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


@policy(
    triggers=[Trigger.PRE_AUTHENTICATION],
    description="blocks an identifier after N failed attempts within a window (host-kept counter)",
    name="lockout-py",
)
def evaluate(request):
    config = _config(request)
    count = request.counter(config["counter"])
    if count is None or count < config["max_attempts"]:
        return Verdict.allow()
    if request.user_name() in config["allow_users"]:
        return Verdict.allow()
    ip = _trusted_ip(request)
    if ip is not None and any(ip in net for net in config["allow_ips"]):
        return Verdict.allow()
    if config["action"] == "notify":
        log(Level.WARN, f"lockout threshold reached: {count} failed attempts (notify only)")
        return Verdict.allow()
    return Verdict.deny(config["message"])

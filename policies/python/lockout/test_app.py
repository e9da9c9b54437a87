"""Native unit tests of the Python lockout policy (pytest, no wasm build)."""

import pytest

from portcullis import PolicyError, Trigger
from portcullis.testing import request

from lockout.app import evaluate


def decide(count, config=None):
    r = request(Trigger.PRE_AUTHENTICATION).user_name("ada").trusted_ip("10.1.2.3")
    if config is not None:
        r = r.config(config)
    if count is not None:
        r = r.counter("attempts", count)
    return evaluate(r.build())


def test_the_attempt_after_max_is_blocked():
    assert all(decide(n).allowed for n in range(5))
    assert decide(5).deny_message == "Too many failed sign-in attempts. Try again later"
    assert not decide(3, {"max_attempts": 3}).allowed


def test_allow_lists_and_notify_let_the_user_through():
    assert decide(9, {"allow_users": ["ada"]}).allowed
    assert decide(9, {"allow_ips": ["10.0.0.0/8"]}).allowed
    assert not decide(9, {"allow_ips": ["192.168.0.0/16"]}).allowed
    assert decide(9, {"action": "notify"}).allowed
    assert decide(None).allowed


def test_bad_configuration_is_an_error():
    for bad in ({"max_attempts": 0}, {"action": "shout"}, {"allow_ips": ["nope"]}, {"x": 1}):
        with pytest.raises(PolicyError):
            decide(9, bad)

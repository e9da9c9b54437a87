"""Native unit tests of the Python suspended-users policy (pytest, no wasm build)."""

from portcullis import Trigger
from portcullis.testing import request

from suspended_users.app import evaluate


def test_suspended_attribute_denies():
    verdict = evaluate(request(Trigger.PRE_AUTHENTICATION).attr("custom:suspended", "true").build())
    assert verdict.deny_message == "Your account is suspended"


def test_suspended_data_item_denies():
    verdict = evaluate(request(Trigger.PRE_AUTHENTICATION).data("user", {"suspended": True}).build())
    assert not verdict.allowed


def test_active_user_allowed():
    r = request(Trigger.PRE_AUTHENTICATION).attr("custom:suspended", "false")
    assert evaluate(r.data("user", {"suspended": False}).build()).allowed


def test_describe_names_the_trigger():
    assert evaluate.describe().triggers == [Trigger.PRE_AUTHENTICATION, Trigger.PRE_TOKEN_GENERATION]

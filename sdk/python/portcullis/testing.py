"""Native test helpers: build a sign-in by hand and call the policy directly, with pytest.

The sign-in is the contract's own ``SignIn`` record (generated from ``sdk/wit/policy.wit``)
with the rule's configuration and data beside it, as the host lends them::

    from portcullis import Trigger
    from portcullis.testing import request
    verdict = evaluate(request(Trigger.PRE_AUTHENTICATION).attr("custom:suspended", "true").build())
"""

import json
from typing import Any, Optional

from wit_world.imports import types as _types

from . import Request

_SOURCES = {
    _types.Trigger.PRE_AUTHENTICATION: "PreAuthentication_Authentication",
    _types.Trigger.POST_AUTHENTICATION: "PostAuthentication_Authentication",
    _types.Trigger.PRE_TOKEN_GENERATION: "TokenGeneration_Authentication",
}


class _Fields:
    """A sign-in held in memory, read through the same methods as the host's."""

    def __init__(self, sign_in: "_types.SignIn", config: str, data: dict):
        self.s, self.c, self.d = sign_in, config, data

    def trigger(self):
        return self.s.trigger

    def trigger_source(self):
        return self.s.trigger_source

    def tenant(self):
        return self.s.tenant

    def user_pool_id(self):
        return self.s.user_pool_id

    def client_id(self):
        return self.s.client_id

    def user_name(self):
        return self.s.user_name

    def user_attribute(self, name):
        return next((v for k, v in self.s.user_attributes if k == name), None)

    def client_metadata_value(self, key):
        return next((v for k, v in self.s.client_metadata if k == key), None)

    def user_not_found(self):
        return self.s.user_not_found

    def new_device_used(self):
        return self.s.new_device_used

    def groups(self):
        return list(self.s.groups)

    def scopes(self):
        return list(self.s.scopes)

    def config(self):
        return self.c

    def data_value(self, key):
        return self.d.get(key)

    def now_unix_ms(self):
        return self.s.now_unix_ms

    def token_source(self):
        return self.s.token_source

    def federated(self):
        return self.s.federated

    def first_federated(self):
        return self.s.first_federated

    def trusted_context(self):
        return self.s.trusted


def _token_source(trigger_source: str) -> "_types.TokenSource":
    """The token source of a ``triggerSource`` (the host's mapping)."""
    kinds = {
        "Authentication": _types.TokenSource.AUTHENTICATION,
        "HostedAuth": _types.TokenSource.HOSTED_AUTH,
        "RefreshTokens": _types.TokenSource.REFRESH_TOKENS,
        "NewPasswordChallenge": _types.TokenSource.NEW_PASSWORD_CHALLENGE,
        "AuthenticateDevice": _types.TokenSource.AUTHENTICATE_DEVICE,
        "ClientCredentials": _types.TokenSource.CLIENT_CREDENTIALS,
    }
    if not trigger_source.startswith("TokenGeneration_"):
        return _types.TokenSource.NONE
    return kinds.get(trigger_source[len("TokenGeneration_"):], _types.TokenSource.OTHER)


class RequestBuilder:
    """Builds a :class:`portcullis.Request` for native tests."""

    def __init__(self, trigger: "_types.Trigger"):
        self.sign_in = _types.SignIn(
            trigger, _SOURCES[trigger], "1", "test", "us-east-1_test", "test-client",
            "test-user", [], [], False, None, [], [], 1_767_268_800_000,
            _token_source(_SOURCES[trigger]), False, False, None,
        )
        self.config_text = "null"
        self.items: dict = {}

    def tenant(self, tenant: str) -> "RequestBuilder":
        self.sign_in.tenant = tenant
        return self

    def user_name(self, name: str) -> "RequestBuilder":
        self.sign_in.user_name = name
        return self

    def trusted_ip(self, ip: str) -> "RequestBuilder":
        """A verified context envelope carrying the end user's IP address."""
        self.sign_in.trusted = _types.TrustedContext(ip, None, None, self.sign_in.now_unix_ms, [])
        return self

    def attr(self, name: str, value: str) -> "RequestBuilder":
        self.sign_in.user_attributes.append((name, value))
        return self

    def client_meta(self, key: str, value: str) -> "RequestBuilder":
        self.sign_in.client_metadata.append((key, value))
        return self

    def config(self, config: Any) -> "RequestBuilder":
        self.config_text = json.dumps(config)
        return self

    def data(self, key: str, value: Any) -> "RequestBuilder":
        self.items[key] = json.dumps(value)
        return self

    def counter(self, name: str, count: int, window_s: int = 900) -> "RequestBuilder":
        """Sets the counter ``name`` as the host hands a declared counter to the rule."""
        return self.data(name, {"count": count, "window_s": window_s, "resets_at_ms": None})

    def group(self, group: str) -> "RequestBuilder":
        self.sign_in.groups.append(group)
        return self

    def user_not_found(self) -> "RequestBuilder":
        self.sign_in.user_not_found = True
        return self

    def source(self, trigger_source: str) -> "RequestBuilder":
        """Sets the raw ``triggerSource`` (and the token source read from it)."""
        self.sign_in.trigger_source = trigger_source
        self.sign_in.token_source = _token_source(trigger_source)
        return self

    def federated(self, first: bool = False) -> "RequestBuilder":
        """Marks the user as federated (``first``: this is the first federated sign-in)."""
        self.sign_in.federated = True
        self.sign_in.first_federated = first
        return self

    def trusted(
        self,
        ip: Optional[str] = None,
        user_agent: Optional[str] = None,
        device_id: Optional[str] = None,
        fields: Optional[dict] = None,
    ) -> "RequestBuilder":
        """Sets the context the host verified: what the app's backend signed."""
        self.sign_in.trusted = _types.TrustedContext(
            ip, user_agent, device_id, self.sign_in.now_unix_ms,
            [(k, str(v)) for k, v in (fields or {}).items()],
        )
        return self

    def now_ms(self, now: int) -> "RequestBuilder":
        self.sign_in.now_unix_ms = now
        return self

    def build(self) -> Request:
        return Request(_Fields(self.sign_in, self.config_text, self.items))


def request(trigger: "_types.Trigger", user: Optional[str] = None) -> RequestBuilder:
    """A sign-in for ``trigger``: tenant ``test``, pool ``us-east-1_test``, client
    ``test-client``, user ``test-user``, time 2026-01-01T12:00:00Z."""
    builder = RequestBuilder(trigger)
    if user is not None:
        builder.sign_in.user_name = user
    return builder

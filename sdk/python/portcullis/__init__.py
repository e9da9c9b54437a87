"""Portcullis policies in Python: the same vocabulary as the Rust SDK.

A policy is a function from a :class:`Request` to a :class:`Verdict`, registered with
:func:`policy`::

    from portcullis import Trigger, Verdict, policy

    @policy(triggers=[Trigger.PRE_AUTHENTICATION], description="blocks suspended users")
    def evaluate(request):
        if request.attr("custom:suspended") == "true":
            return Verdict.deny("Your account is suspended")
        return Verdict.allow()

Build it into a component with no imports beyond the contract (`scripts/build-python`):
``componentize-py -d sdk/wit -w policy componentize --stub-wasi -p DIR -p sdk/python app``.
Raise :class:`PolicyError` (or let any exception escape) for a rule failure: the rule's
``on_error`` applies. The types come from the contract (``sdk/wit/policy.wit``), generated
by componentize-py into the ``wit_world`` package — inside the component by its build, for
native tests by ``tests/conftest.py``.
"""

import json
import sys
from typing import Any, Callable, Iterable, List, Optional

from wit_world.imports import host as _host
from wit_world.imports import types as _types

Trigger = _types.Trigger
Level = _types.Level
TokenSource = _types.TokenSource
TrustedContext = _types.TrustedContext

#: Every path to a token: pre-authentication and pre token generation (every token source,
#: refreshes and first federated sign-ins included). A rule that blocks declares these and
#: its manifest entry lists ``every-sign-in``.
EVERY_SIGN_IN = [Trigger.PRE_AUTHENTICATION, Trigger.PRE_TOKEN_GENERATION]

__all__ = [
    "Trigger",
    "Level",
    "TokenSource",
    "TrustedContext",
    "EVERY_SIGN_IN",
    "Verdict",
    "Request",
    "PolicyError",
    "policy",
    "log",
]


class PolicyError(Exception):
    """A rule failure: the host applies the rule's ``on_error``. Never shown to users."""


class Verdict:
    """What a policy decides: allow or deny, and the token changes it asks for."""

    def __init__(self, deny: Optional[str] = None):
        self.deny_message = deny
        self.id_claims: List[tuple] = []
        self.id_suppress: List[str] = []
        self.access_claims: List[tuple] = []
        self.access_suppress: List[str] = []
        self.scopes_add: List[str] = []
        self.scopes_suppress: List[str] = []
        self.group_override: Optional[tuple] = None
        #: Counter changes asked for, in order: ``(name, by)`` adds, ``(name, None)`` resets.
        self.counter_changes: List[tuple] = []

    @staticmethod
    def allow() -> "Verdict":
        """Lets the sign-in proceed."""
        return Verdict()

    @staticmethod
    def deny(message: str) -> "Verdict":
        """Blocks the sign-in; ``message`` is shown to the user, so it must be client-safe."""
        return Verdict(deny=message)

    @property
    def allowed(self) -> bool:
        """Whether the verdict allows the sign-in."""
        return self.deny_message is None

    def id_claim(self, name: str, value: Any) -> "Verdict":
        """Adds or overrides an ID-token claim (any JSON value)."""
        self.id_claims.append((name, value))
        return self

    def suppress(self, name: str) -> "Verdict":
        """Suppresses an ID-token claim."""
        self.id_suppress.append(name)
        return self

    def access_claim(self, name: str, value: Any) -> "Verdict":
        """Adds or overrides an access-token claim (V2/V3 events)."""
        self.access_claims.append((name, value))
        return self

    def suppress_access(self, name: str) -> "Verdict":
        """Suppresses an access-token claim (V2/V3 events)."""
        self.access_suppress.append(name)
        return self

    def add_scope(self, scope: str) -> "Verdict":
        """Adds a scope to the access token (V2/V3 events)."""
        self.scopes_add.append(scope)
        return self

    def suppress_scope(self, scope: str) -> "Verdict":
        """Removes a scope from the access token (V2/V3 events)."""
        self.scopes_suppress.append(scope)
        return self

    def groups(
        self,
        groups: Iterable[str],
        iam_roles: Iterable[str] = (),
        preferred_role: Optional[str] = None,
    ) -> "Verdict":
        """Replaces the user's groups (roles the override does not name stay the user's)."""
        self.group_override = (list(groups), list(iam_roles), preferred_role)
        return self

    def id_claim_value(self, name: str) -> Any:
        """The value this verdict sets for ID-token claim ``name`` (tests)."""
        return next((v for n, v in reversed(self.id_claims) if n == name), None)

    def count(self, name: str, by: int = 1) -> "Verdict":
        """Asks the host to add ``by`` (1 to 1000) to the counter ``name`` after the decision
        (one the rule's manifest entry declares under ``counters``), besides what the
        trigger implies. Applied only if this verdict is; at most 16 requests."""
        self.counter_changes.append((name, by))
        return self

    def reset(self, name: str) -> "Verdict":
        """Asks the host to reset the counter ``name`` after the decision."""
        self.counter_changes.append((name, None))
        return self

    def _ask_for_counts(self) -> None:
        """Hands the counter changes to the host (natively there is none: dropped)."""
        for name, by in self.counter_changes:
            change = _host.CounterChange_Reset() if by is None else _host.CounterChange_Add(by)
            try:
                _host.count(name, change)
            except NotImplementedError:
                return

    def _raw(self) -> "_types.Verdict":
        claims = lambda pairs: [  # noqa: E731
            _types.Claim(name, json.dumps(value, separators=(",", ":"))) for name, value in pairs
        ]
        decision = (
            _types.Decision_Allow()
            if self.deny_message is None
            else _types.Decision_Deny(self.deny_message)
        )
        groups = None
        if self.group_override is not None:
            groups = _types.GroupOverride(*self.group_override)
        return _types.Verdict(
            decision,
            claims(self.id_claims),
            list(self.id_suppress),
            claims(self.access_claims),
            list(self.access_suppress),
            list(self.scopes_add),
            list(self.scopes_suppress),
            groups,
        )


class Request:
    """One sign-in: each method reads one field from the host when called (in a component),
    or from a sign-in built by :mod:`portcullis.testing` (natively)."""

    def __init__(self, source: Any):
        self._source = source

    def trigger(self) -> "_types.Trigger":
        """The trigger kind."""
        return self._source.trigger()

    def trigger_source(self) -> str:
        """The raw Cognito ``triggerSource``."""
        return self._source.trigger_source()

    def tenant(self) -> str:
        """The tenant the host resolved for this sign-in."""
        return self._source.tenant()

    def user_pool_id(self) -> str:
        """The Cognito user pool id."""
        return self._source.user_pool_id()

    def client_id(self) -> Optional[str]:
        """The app client id, when the event carries one."""
        return self._source.client_id()

    def user_name(self) -> Optional[str]:
        """The Cognito user name (absent for machine-to-machine tokens)."""
        return self._source.user_name()

    def attr(self, name: str) -> Optional[str]:
        """The user attribute ``name`` (e.g. ``email``, ``custom:tenant_id``)."""
        return self._source.user_attribute(name)

    def client_meta(self, key: str) -> Optional[str]:
        """The client metadata (pre-auth: ``validationData``) value for ``key``."""
        return self._source.client_metadata_value(key)

    def user_not_found(self) -> bool:
        """Pre-auth with ``PreventUserExistenceErrors``: the user does not exist."""
        return self._source.user_not_found()

    def new_device_used(self) -> Optional[bool]:
        """Post-auth: whether a new device was used, when Cognito says."""
        return self._source.new_device_used()

    def groups(self) -> List[str]:
        """The user's groups."""
        return self._source.groups()

    def scopes(self) -> List[str]:
        """The requested scopes (pre token generation V2/V3)."""
        return self._source.scopes()

    def config(self) -> Any:
        """The rule's configuration from the manifest (``{}`` when it has none)."""
        text = self._source.config().strip()
        if text in ("", "null"):
            return {}
        try:
            return json.loads(text)
        except ValueError as error:
            raise PolicyError(f"invalid rule configuration: {error}") from error

    def data(self, key: str) -> Any:
        """The prefetched data item ``key`` as JSON, or ``None`` when the host found none."""
        text = self._source.data_value(key)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError as error:
            raise PolicyError(f"data item `{key}` is malformed: {error}") from error

    def counter(self, name: str) -> Optional[int]:
        """How many times the counter ``name`` (declared in the rule's manifest entry) was
        counted in its current window, or ``None`` when the host has no count for this
        sign-in (its key has no value). The host counts after the decision."""
        item = self.data(name)
        if item is None:
            return None
        count = item.get("count") if isinstance(item, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise PolicyError(f"counter `{name}` is malformed")
        return count

    def now_ms(self) -> int:
        """The current time in milliseconds since the Unix epoch, supplied by the host."""
        return self._source.now_unix_ms()

    def token_source(self) -> "_types.TokenSource":
        """Which path to a token this is (``TokenSource.NONE`` outside pre token generation)."""
        return self._source.token_source()

    def is_refresh(self) -> bool:
        """A refresh through ``REFRESH_TOKEN_AUTH``. A ``GetTokensFromRefreshToken`` refresh
        arrives as ``TokenGeneration_Authentication`` and cannot be told from a sign-in."""
        return self.token_source() == TokenSource.REFRESH_TOKENS

    def is_machine_to_machine(self) -> bool:
        """A machine-to-machine token (client credentials): no user, no ID token."""
        return self.token_source() == TokenSource.CLIENT_CREDENTIALS

    def is_federated(self) -> bool:
        """The user signs in through an external identity provider."""
        return self._source.federated()

    def is_first_federated(self) -> bool:
        """The user's first sign-in through an external provider, where the event shows it."""
        return self._source.first_federated()

    def trusted(self) -> Optional["_types.TrustedContext"]:
        """The context the app's backend signed and the host verified, or ``None``.
        :meth:`client_meta` is what the client says; this is what the backend vouches for."""
        return self._source.trusted_context()

    def trusted_ip(self) -> Optional[str]:
        """The trusted (backend-signed) IP address, if a verified context carries one."""
        context = self.trusted()
        return context.ip if context is not None else None

    def trusted_field(self, name: str) -> Optional[str]:
        """The trusted field ``name`` of a verified context, if present."""
        context = self.trusted()
        if context is None:
            return None
        return next((v for k, v in context.fields if k == name), None)


def log(level: "_types.Level", message: str) -> None:
    """Writes a line to the decision log (bounded by the host). Never log attribute values.
    Natively (no host to call), the line goes to standard error."""
    try:
        _host.log(level, message)
    except NotImplementedError:  # natively the generated import has no runtime behind it
        print(f"[{level.name}] {message}", file=sys.stderr)


class _Empty:
    """An empty sign-in for the warm-up: every field absent."""

    def __init__(self, trigger: "_types.Trigger"):
        self._trigger = trigger

    def trigger(self):
        return self._trigger

    def trigger_source(self):
        return ""

    def tenant(self):
        return ""

    def user_pool_id(self):
        return ""

    def client_id(self):
        return None

    def user_name(self):
        return None

    def user_attribute(self, name):
        return None

    def client_metadata_value(self, key):
        return None

    def user_not_found(self):
        return False

    def new_device_used(self):
        return None

    def groups(self):
        return []

    def scopes(self):
        return []

    def config(self):
        return "null"

    def data_value(self, key):
        return None

    def now_unix_ms(self):
        return 0

    def token_source(self):
        return TokenSource.NONE

    def federated(self):
        return False

    def first_federated(self):
        return False

    def trusted_context(self):
        return None


#: How often the warm-up runs the rule per trigger: CPython specializes a function's
#: bytecode after a few calls.
_WARM_UP_CALLS = 8


def _warm_up(evaluate: Callable, triggers: Iterable["_types.Trigger"]) -> None:
    """Runs the rule on an empty sign-in while the module is imported. The component is a
    snapshot taken after the import (componentize-py pre-initializes it), so every fresh
    instance starts with the paths the warm-up took already specialized. Rules are pure:
    this changes nothing but speed, and whatever the rule makes of an empty sign-in (even
    an exception) is discarded."""
    for trigger in triggers:
        for _ in range(_WARM_UP_CALLS):
            try:
                evaluate(Request(_Empty(trigger)))._raw()
            except Exception:  # a rule may refuse an empty sign-in: the warm-up only warms
                pass


def policy(
    *,
    triggers: List["_types.Trigger"],
    description: str,
    name: str = "python-policy",
    version: str = "0.1.0",
) -> Callable:
    """Registers ``evaluate`` as the module's policy: the component's ``evaluate`` and
    ``describe`` exports, through the class ``WitWorld`` componentize-py looks for."""

    def register(evaluate: Callable[[Request], Verdict]) -> Callable[[Request], Verdict]:
        class WitWorld:
            def evaluate(self, request: Any) -> "_types.Verdict":
                from componentize_py_types import Err

                try:
                    verdict = evaluate(Request(request))
                except PolicyError as error:
                    raise Err(str(error)) from None
                except Exception as error:  # a bug in the rule is a rule failure
                    raise Err(f"{type(error).__name__}: {error}") from None
                if not isinstance(verdict, Verdict):
                    raise Err(f"evaluate returned {type(verdict).__name__}, not a Verdict")
                verdict._ask_for_counts()
                return verdict._raw()

            def describe(self) -> "_types.Metadata":
                return _types.Metadata(name, version, description, list(triggers))

        module = sys.modules[evaluate.__module__]
        module.WitWorld = WitWorld
        evaluate.describe = WitWorld().describe
        _warm_up(evaluate, triggers)
        return evaluate

    return register

"""Signing trusted context for Portcullis, in the app's backend (not in a policy).

The backend knows what a public client cannot vouch for — the end user's IP address, user
agent, device, a risk score — and signs it with the tenant's context key; the app passes
the envelope to Cognito in ``ClientMetadata`` under :data:`METADATA_KEY`, and Portcullis
verifies it (signature, tenant, user, freshness, replay) before rules see it as trusted::

    from portcullis.context import METADATA_KEY, sign_context
    envelope = sign_context(key, "acme", user="ada", ip=request.remote_addr)
    cognito.initiate_auth(..., ClientMetadata={METADATA_KEY: envelope})

The format is ``v1.<payload>.<mac>``: base64url (unpadded) JSON, and HMAC-SHA256 with the
key over ``portcullis-context.v1.<tenant>.<payload>``. Only the standard library is used.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Mapping, Optional, Union

#: The client metadata key the envelope travels under.
METADATA_KEY = "portcullis_context"

#: The shortest key accepted, in bytes.
MIN_KEY = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_context(
    key: Union[str, bytes],
    tenant: str,
    *,
    user: Optional[str] = None,
    ip: Optional[str] = None,
    user_agent: Optional[str] = None,
    device_id: Optional[str] = None,
    fields: Optional[Mapping[str, object]] = None,
    now_ms: Optional[int] = None,
    nonce: Optional[str] = None,
) -> str:
    """The envelope for ``tenant`` signed with ``key`` (the tenant's context key, its text
    as the deployment holds it). ``user`` binds it to one Cognito user name."""
    key_bytes = key.strip().encode("utf-8") if isinstance(key, str) else key
    if len(key_bytes) < MIN_KEY:
        raise ValueError(f"a context key needs at least {MIN_KEY} bytes, not {len(key_bytes)}")
    claims: dict = {
        "tenant": tenant,
        "iat_ms": int(time.time() * 1000) if now_ms is None else int(now_ms),
        "nonce": nonce or secrets.token_hex(16),
    }
    for name, value in (("user", user), ("ip", ip), ("user_agent", user_agent), ("device_id", device_id)):
        if value is not None:
            claims[name] = value
    if fields:
        claims["fields"] = {str(k): str(v) for k, v in fields.items()}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    message = f"portcullis-context.v1.{tenant}.{payload}".encode("utf-8")
    mac = _b64(hmac.new(key_bytes, message, hashlib.sha256).digest())
    return f"v1.{payload}.{mac}"

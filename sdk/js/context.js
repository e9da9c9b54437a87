// Signing trusted context for Portcullis, in the app's backend (Node), not in a policy.
//
// The backend knows what a public client cannot vouch for (the end user's IP address, user
// agent, device, a risk score) and signs it with the tenant's context key; the app passes
// the envelope to Cognito in ClientMetadata under METADATA_KEY, and Portcullis verifies it
// (signature, tenant, user, freshness, replay) before rules see it as trusted:
//
//   import { METADATA_KEY, signContext } from "@portcullis/sdk/context";
//   const envelope = signContext(key, { tenant: "acme", user: "ada", ip: req.ip });
//   await cognito.send(new InitiateAuthCommand({ ..., ClientMetadata: { [METADATA_KEY]: envelope } }));
//
// Format: `v1.<payload>.<mac>`, base64url (unpadded) JSON and HMAC-SHA256 with the key over
// `portcullis-context.v1.<tenant>.<payload>`. Only node:crypto is used.

import { createHmac, randomBytes } from "node:crypto";

/** The client metadata key the envelope travels under. */
export const METADATA_KEY = "portcullis_context";

/** The shortest key accepted, in bytes. */
export const MIN_KEY = 32;

/** The envelope for `claims.tenant`, signed with `key` (the tenant's context key). */
export function signContext(key, { tenant, user, ip, userAgent, deviceId, fields, now, nonce }) {
  const keyBytes = typeof key === "string" ? Buffer.from(key.trim(), "utf8") : Buffer.from(key);
  if (keyBytes.length < MIN_KEY) throw new RangeError(`a context key needs at least ${MIN_KEY} bytes, not ${keyBytes.length}`);
  if (typeof tenant !== "string" || tenant === "") throw new TypeError("tenant is required");
  const claims = { tenant, iat_ms: Math.trunc(now ?? Date.now()), nonce: nonce ?? randomBytes(16).toString("hex") };
  if (user !== undefined) claims.user = user;
  if (ip !== undefined) claims.ip = ip;
  if (userAgent !== undefined) claims.user_agent = userAgent;
  if (deviceId !== undefined) claims.device_id = deviceId;
  if (fields !== undefined && Object.keys(fields).length > 0) {
    claims.fields = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)]));
  }
  const payload = Buffer.from(JSON.stringify(claims), "utf8").toString("base64url");
  const mac = createHmac("sha256", keyBytes).update(`portcullis-context.v1.${tenant}.${payload}`).digest("base64url");
  return `v1.${payload}.${mac}`;
}

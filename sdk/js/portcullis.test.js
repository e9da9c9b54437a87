// The SDK's verdict builder lowers to the contract's `verdict` record.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Verdict } from "./portcullis.js";

test("claims are JSON text; groups and scopes kept in order", () => {
  const raw = Verdict.allow().idClaim("tenant_id", "acme").accessClaim("roles", ["member"])
    .addScope("tenant:acme").groups(["staff"]).toRaw();
  assert.deepEqual(raw.decision, { tag: "allow" });
  assert.deepEqual(raw.idClaims, [{ name: "tenant_id", value: '"acme"' }]);
  assert.deepEqual(raw.accessClaims, [{ name: "roles", value: '["member"]' }]);
  assert.deepEqual(raw.scopesAdd, ["tenant:acme"]);
  assert.deepEqual(raw.groups, { groups: ["staff"], iamRoles: [], preferredRole: undefined });
});

test("a deny carries its message", () => {
  assert.deepEqual(Verdict.deny("No").suppress("phone_number").toRaw().idSuppress, ["phone_number"]);
  assert.equal(Verdict.deny("No").allowed, false);
});

test("the token source, federation and trusted context read as the host holds them", async () => {
  const { Request } = await import("./portcullis.js");
  const { request } = await import("./testing.js");
  const refresh = new Request(request("pre-token-generation").source("TokenGeneration_RefreshTokens").build());
  assert.equal(refresh.tokenSource(), "refresh-tokens");
  assert.equal(refresh.isRefresh(), true);
  assert.equal(refresh.trusted(), undefined);
  const m2m = new Request(request("pre-token-generation").source("TokenGeneration_ClientCredentials").build());
  assert.equal(m2m.isMachineToMachine(), true);
  const signIn = new Request(request("pre-authentication").federated(true)
    .trusted({ ip: "203.0.113.7", fields: { risk_score: 12 } }).clientMeta("ip", "10.0.0.1").build());
  assert.equal(signIn.tokenSource(), "none");
  assert.equal(signIn.isFederated(), true);
  assert.equal(signIn.isFirstFederated(), true);
  assert.equal(signIn.trustedIp(), "203.0.113.7");
  assert.deepEqual(signIn.trusted().fields, { risk_score: "12" });
  assert.equal(signIn.clientMeta("ip"), "10.0.0.1", "the client's own claim stays the client's");
});

test("signContext makes the envelope format the host verifies", async () => {
  const { createHmac } = await import("node:crypto");
  const { METADATA_KEY, signContext } = await import("./context.js");
  const key = "acme-context-key-0123456789abcdef0123456789";
  const envelope = signContext(key, { tenant: "acme", user: "ada", ip: "203.0.113.7", now: 1767268800000, nonce: "n-1" });
  const [version, payload, mac] = envelope.split(".");
  assert.equal(version, "v1");
  assert.deepEqual(JSON.parse(Buffer.from(payload, "base64url").toString()),
    { tenant: "acme", iat_ms: 1767268800000, nonce: "n-1", user: "ada", ip: "203.0.113.7" });
  const expected = createHmac("sha256", key).update(`portcullis-context.v1.acme.${payload}`).digest("base64url");
  assert.equal(mac, expected);
  assert.equal(METADATA_KEY, "portcullis_context");
  assert.throws(() => signContext("short", { tenant: "acme" }), RangeError);
});

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

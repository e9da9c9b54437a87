// Native unit tests of the TypeScript tenant-claims policy (node --test with tsx, no wasm build).
import assert from "node:assert/strict";
import { test } from "node:test";

import { request } from "../../../sdk/js/testing.js";
import { evaluate } from "./app.js";

test("tenant claims, roles from data, a tenant scope and suppressed claims", () => {
  const r = request("pre-token-generation").tenant("acme")
    .config({ roles: ["member"], suppress: ["phone_number"] }).data("member", { roles: ["owner"] });
  const raw = evaluate(r.build());
  assert.deepEqual(raw.idClaims, [
    { name: "tenant_id", value: '"acme"' },
    { name: "roles", value: '["owner"]' },
  ]);
  assert.deepEqual(raw.scopesAdd, ["tenant:acme"]);
  assert.deepEqual(raw.idSuppress, ["phone_number"]);
});

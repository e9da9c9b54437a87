// Native unit tests (node --test with tsx): the policy's code, no wasm build.
import assert from "node:assert/strict";
import { test } from "node:test";

import { request } from "@portcullis/sdk/testing";
import { evaluate } from "./app.js";

test("a blocked domain is denied and others are not", () => {
  const config = { blocked_domains: ["example.net"] };
  const blocked = request("pre-authentication").attr("email", "eve@Example.net").config(config);
  assert.equal(evaluate(blocked.build()).decision.tag, "deny");
  const other = request("pre-authentication").attr("email", "ada@acme.example").config(config);
  assert.equal(evaluate(other.build()).decision.tag, "allow");
});

test("tokens carry the plan", () => {
  const verdict = evaluate(request("pre-token-generation").config({ plan: "pro" }).build());
  assert.deepEqual(verdict.idClaims, [{ name: "plan", value: '"pro"' }]);
});

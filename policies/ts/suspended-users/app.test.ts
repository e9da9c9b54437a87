// Native unit tests of the TypeScript suspended-users policy (node --test with tsx, no wasm build).
import assert from "node:assert/strict";
import { test } from "node:test";

import { request } from "../../../sdk/js/testing.js";
import { describe, evaluate } from "./app.js";

test("a suspended attribute denies", () => {
  const verdict = evaluate(request("pre-authentication").attr("custom:suspended", "true").build());
  assert.deepEqual(verdict.decision, { tag: "deny", val: "Your account is suspended" });
});

test("a suspended data item denies", () => {
  const verdict = evaluate(request("pre-authentication").data("user", { suspended: true }).build());
  assert.equal(verdict.decision.tag, "deny");
});

test("an active user is allowed", () => {
  const r = request("pre-authentication").attr("custom:suspended", "false").data("user", { suspended: false });
  assert.equal(evaluate(r.build()).decision.tag, "allow");
});

test("an unknown configuration field is a rule failure", () => {
  assert.throws(() => evaluate(request("pre-authentication").config({ nope: 1 }).build()), /unknown field `nope`/);
});

test("describe names the trigger", () => {
  assert.deepEqual(describe().triggers, ["pre-authentication", "pre-token-generation"]);
});

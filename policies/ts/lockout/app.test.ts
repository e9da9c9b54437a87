// Native unit tests of the TypeScript lockout policy (node --test with tsx, no wasm build).
import assert from "node:assert/strict";
import { test } from "node:test";

import type { Json } from "../../../sdk/js/portcullis.js";
import { request } from "../../../sdk/js/testing.js";
import { evaluate } from "./app.js";

function decide(count: number | undefined, config: { [key: string]: Json } = {}) {
  let r = request("pre-authentication").userName("ada").trusted({ ip: "10.1.2.3" }).config(config);
  if (count !== undefined) r = r.counter("attempts", count);
  return evaluate(r.build()).decision.tag;
}

test("the attempt after max is blocked", () => {
  for (const n of [0, 1, 2, 3, 4]) assert.equal(decide(n), "allow");
  assert.equal(decide(5), "deny");
  assert.equal(decide(3, { max_attempts: 3 }), "deny");
});

test("allow lists and notify let the user through", () => {
  assert.equal(decide(9, { allow_users: ["ada"] }), "allow");
  assert.equal(decide(9, { allow_ips: ["10.0.0.0/8"] }), "allow");
  assert.equal(decide(9, { allow_ips: ["192.168.0.0/16"] }), "deny");
  assert.equal(decide(9, { action: "notify" }), "allow");
  assert.equal(decide(undefined), "allow");
});

test("a bad configuration is a rule failure", () => {
  const bad: { [key: string]: Json }[] = [{ max_attempts: 0 }, { action: "shout" }, { allow_ips: ["nope"] }, { x: 1 }];
  for (const config of bad) {
    assert.throws(() => decide(9, config));
  }
});

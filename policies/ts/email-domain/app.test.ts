// Native unit tests of the TypeScript email-domain policy (node --test with tsx, no wasm build).
import assert from "node:assert/strict";
import { test } from "node:test";

import { request } from "../../../sdk/js/testing.js";
import { evaluate } from "./app.js";

const signin = (email: string, verified = "true") =>
  request("pre-authentication").attr("email", email).attr("email_verified", verified);

test("a verified address in the domain is allowed", () => {
  assert.equal(evaluate(signin("ada@ACME.example").config({ domains: ["acme.example"] }).build()).decision.tag, "allow");
});

test("an unverified address is denied unless configured", () => {
  const config = { domains: ["acme.example"] };
  assert.equal(evaluate(signin("ada@acme.example", "false").config(config).build()).decision.tag, "deny");
  const relaxed = { ...config, require_verified: false };
  assert.equal(evaluate(signin("ada@acme.example", "false").config(relaxed).build()).decision.tag, "allow");
});

test("missing domains is a rule failure", () => {
  assert.throws(() => evaluate(signin("ada@acme.example").build()), /missing field `domains`/);
});

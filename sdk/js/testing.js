// Native test helpers (node --test): build a sign-in by hand and call the policy directly.
// The fields are those of the contract's `sign-in` record (see types/, `jco types`),
// with the rule's configuration and data beside it, read through the same methods the
// host's request has.
//
//   import { request } from "../../../sdk/js/testing.js";
//   const verdict = rule.evaluate(request("pre-authentication").attr("custom:suspended", "true").build());

import { Request } from "./portcullis.js";

const SOURCES = {
  "pre-authentication": "PreAuthentication_Authentication",
  "post-authentication": "PostAuthentication_Authentication",
  "pre-token-generation": "TokenGeneration_Authentication",
};

class Fields {
  constructor(signIn, config, data) {
    this.s = signIn;
    this.c = config;
    this.d = data;
  }
  trigger() { return this.s.trigger; }
  triggerSource() { return this.s.triggerSource; }
  tenant() { return this.s.tenant; }
  userName() { return this.s.userName; }
  userAttribute(name) { return this.s.userAttributes.find(([k]) => k === name)?.[1]; }
  clientMetadataValue(key) { return this.s.clientMetadata.find(([k]) => k === key)?.[1]; }
  userNotFound() { return this.s.userNotFound; }
  groups() { return [...this.s.groups]; }
  scopes() { return [...this.s.scopes]; }
  config() { return this.c; }
  dataValue(key) { return this.d.get(key); }
  nowUnixMs() { return BigInt(this.s.nowUnixMs); }
  tokenSource() { return this.s.tokenSource; }
  federated() { return this.s.federated; }
  firstFederated() { return this.s.firstFederated; }
  trustedContext() { return this.s.trusted; }
}

const TOKEN_SOURCES = {
  Authentication: "authentication", HostedAuth: "hosted-auth", RefreshTokens: "refresh-tokens",
  NewPasswordChallenge: "new-password-challenge", AuthenticateDevice: "authenticate-device",
  ClientCredentials: "client-credentials",
};

/** The token source of a `triggerSource` (the host's mapping). */
function tokenSourceOf(triggerSource) {
  if (!triggerSource.startsWith("TokenGeneration_")) return "none";
  return TOKEN_SOURCES[triggerSource.slice("TokenGeneration_".length)] ?? "other";
}

/** Builds a Request for native tests. */
export class RequestBuilder {
  constructor(trigger) {
    this.signIn = {
      trigger, triggerSource: SOURCES[trigger], eventVersion: "1", tenant: "test",
      userPoolId: "us-east-1_test", clientId: "test-client", userName: "test-user",
      userAttributes: [], clientMetadata: [], userNotFound: false, newDeviceUsed: undefined,
      groups: [], scopes: [], nowUnixMs: 1767268800000,
      tokenSource: tokenSourceOf(SOURCES[trigger]), federated: false, firstFederated: false,
      trusted: undefined,
    };
    this.configText = "null";
    this.items = new Map();
  }
  tenant(tenant) { this.signIn.tenant = tenant; return this; }
  attr(name, value) { this.signIn.userAttributes.push([name, value]); return this; }
  clientMeta(key, value) { this.signIn.clientMetadata.push([key, value]); return this; }
  config(config) { this.configText = JSON.stringify(config); return this; }
  data(key, value) { this.items.set(key, JSON.stringify(value)); return this; }
  /** Sets the counter `name` as the host hands a declared counter to the rule. */
  counter(name, count, windowS = 900) { return this.data(name, { count, window_s: windowS, resets_at_ms: null }); }
  /** Sets the Cognito user name. */
  userName(name) { this.signIn.userName = name; return this; }
  group(group) { this.signIn.groups.push(group); return this; }
  userNotFound() { this.signIn.userNotFound = true; return this; }
  now(unixMs) { this.signIn.nowUnixMs = unixMs; return this; }
  /** Sets the raw `triggerSource` (and the token source read from it). */
  source(triggerSource) {
    this.signIn.triggerSource = triggerSource;
    this.signIn.tokenSource = tokenSourceOf(triggerSource);
    return this;
  }
  /** Marks the user as federated (`first`: this is the first federated sign-in). */
  federated(first = false) { this.signIn.federated = true; this.signIn.firstFederated = first; return this; }
  /** Sets the context the host verified: what the app's backend signed. */
  trusted({ ip, userAgent, deviceId, fields = {} } = {}) {
    this.signIn.trusted = {
      ip, userAgent, deviceId, issuedAtMs: BigInt(this.signIn.nowUnixMs),
      fields: Object.entries(fields).map(([k, v]) => [k, String(v)]),
    };
    return this;
  }
  /** The request, as `policy(...).evaluate` receives it from the host. */
  build() { return new Fields(this.signIn, this.configText, this.items); }
}

/** A sign-in for `trigger`: tenant `test`, user `test-user`, time 2026-01-01T12:00:00Z. */
export function request(trigger) {
  return new RequestBuilder(trigger);
}

export { Request };

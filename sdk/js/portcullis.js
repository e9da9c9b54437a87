// Portcullis policies in JavaScript (and TypeScript, compiled to it): the same vocabulary
// as the Rust SDK. A policy module exports `evaluate` and `describe` made by `policy`:
//
//   import { policy, Verdict } from "@portcullis/sdk";
//   export const { evaluate, describe } = policy({
//     name: "suspended-users", triggers: ["pre-authentication"], description: "…",
//     evaluate(request) {
//       return request.attr("custom:suspended") === "true"
//         ? Verdict.deny("Your account is suspended") : Verdict.allow();
//     },
//   });
//
// Build: `scripts/build-js` (jco componentize with `-d all`: no WASI, no clocks, no
// randomness — a rule reads the time with `request.now()`). Natively (node --test), build
// requests with `testing.js`. The contract's types: `types/` (`jco types sdk/wit`).

/** A rule failure: the host applies the rule's `on_error`. Never shown to users. */
export class PolicyError extends Error {}

/** What a policy decides: allow or deny, and the token changes it asks for. */
export class Verdict {
  constructor(deny) {
    this.denyMessage = deny;
    this.idClaims = [];
    this.idSuppress = [];
    this.accessClaims = [];
    this.accessSuppress = [];
    this.scopesAdd = [];
    this.scopesSuppress = [];
    this.groupOverride = undefined;
  }
  /** Lets the sign-in proceed. */
  static allow() {
    return new Verdict(undefined);
  }
  /** Blocks the sign-in; the message is shown to the user, so it must be client-safe. */
  static deny(message) {
    return new Verdict(String(message));
  }
  /** Whether the verdict allows the sign-in. */
  get allowed() {
    return this.denyMessage === undefined;
  }
  /** Adds or overrides an ID-token claim (any JSON value). */
  idClaim(name, value) {
    this.idClaims.push([name, value]);
    return this;
  }
  /** Suppresses an ID-token claim. */
  suppress(name) {
    this.idSuppress.push(name);
    return this;
  }
  /** Adds or overrides an access-token claim (V2/V3 events). */
  accessClaim(name, value) {
    this.accessClaims.push([name, value]);
    return this;
  }
  /** Suppresses an access-token claim (V2/V3 events). */
  suppressAccess(name) {
    this.accessSuppress.push(name);
    return this;
  }
  /** Adds a scope to the access token (V2/V3 events). */
  addScope(scope) {
    this.scopesAdd.push(scope);
    return this;
  }
  /** Removes a scope from the access token (V2/V3 events). */
  suppressScope(scope) {
    this.scopesSuppress.push(scope);
    return this;
  }
  /** Replaces the user's groups (roles the override does not name stay the user's). */
  groups(groups, iamRoles = [], preferredRole = undefined) {
    this.groupOverride = { groups: [...groups], iamRoles: [...iamRoles], preferredRole };
    return this;
  }
  /** The contract's `verdict` record. */
  toRaw() {
    const claims = (pairs) => pairs.map(([name, value]) => ({ name, value: JSON.stringify(value) }));
    return {
      decision: this.allowed ? { tag: "allow" } : { tag: "deny", val: this.denyMessage },
      idClaims: claims(this.idClaims),
      idSuppress: [...this.idSuppress],
      accessClaims: claims(this.accessClaims),
      accessSuppress: [...this.accessSuppress],
      scopesAdd: [...this.scopesAdd],
      scopesSuppress: [...this.scopesSuppress],
      groups: this.groupOverride,
    };
  }
}

/** One sign-in: each method reads one field from the host when called. */
export class Request {
  constructor(source) {
    this.source = source;
  }
  /** `pre-authentication`, `post-authentication` or `pre-token-generation`. */
  trigger() {
    return this.source.trigger();
  }
  /** The raw Cognito `triggerSource`. */
  triggerSource() {
    return this.source.triggerSource();
  }
  /** The tenant the host resolved for this sign-in. */
  tenant() {
    return this.source.tenant();
  }
  /** The Cognito user name (absent for machine-to-machine tokens). */
  userName() {
    return this.source.userName();
  }
  /** The user attribute `name`, or undefined. */
  attr(name) {
    return this.source.userAttribute(name);
  }
  /** The client metadata (pre-auth: `validationData`) value for `key`, or undefined. */
  clientMeta(key) {
    return this.source.clientMetadataValue(key);
  }
  /** Pre-auth with PreventUserExistenceErrors: the user does not exist. */
  userNotFound() {
    return this.source.userNotFound();
  }
  /** The user's groups. */
  groups() {
    return this.source.groups();
  }
  /** The requested scopes (pre token generation V2/V3). */
  scopes() {
    return this.source.scopes();
  }
  /** The rule's configuration from the manifest ({} when it has none). */
  config() {
    const text = this.source.config().trim();
    if (text === "" || text === "null") return {};
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new PolicyError(`invalid rule configuration: ${error.message}`);
    }
  }
  /** The prefetched data item `key` as JSON, or undefined when the host found none. */
  data(key) {
    const text = this.source.dataValue(key);
    if (text === undefined || text === null) return undefined;
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new PolicyError(`data item \`${key}\` is malformed: ${error.message}`);
    }
  }
  /** How many times the counter `name` (declared in the rule's manifest entry) was counted
   * in its current window, or undefined when the host has no count for this sign-in (its
   * key has no value). The host counts after the decision. */
  counter(name) {
    const item = this.data(name);
    if (item === undefined) return undefined;
    const count = item !== null && typeof item === "object" ? item.count : undefined;
    if (!Number.isInteger(count) || count < 0) throw new PolicyError(`counter \`${name}\` is malformed`);
    return count;
  }
  /** The current time in milliseconds since the Unix epoch, supplied by the host. */
  now() {
    return Number(this.source.nowUnixMs());
  }
  /** Which path to a token: `none` outside pre token generation, else `authentication`,
   * `hosted-auth`, `refresh-tokens`, `new-password-challenge`, `authenticate-device`,
   * `client-credentials` or `other`. */
  tokenSource() {
    return this.source.tokenSource();
  }
  /** A refresh through REFRESH_TOKEN_AUTH. A GetTokensFromRefreshToken refresh arrives as
   * `TokenGeneration_Authentication` and cannot be told from a sign-in. */
  isRefresh() {
    return this.tokenSource() === "refresh-tokens";
  }
  /** A machine-to-machine token (client credentials): no user, no ID token. */
  isMachineToMachine() {
    return this.tokenSource() === "client-credentials";
  }
  /** The user signs in through an external identity provider. */
  isFederated() {
    return this.source.federated();
  }
  /** The user's first sign-in through an external provider, where the event shows it. */
  isFirstFederated() {
    return this.source.firstFederated();
  }
  /** The context the app's backend signed and the host verified, or undefined.
   * `clientMeta` is what the client says; this is what the backend vouches for. */
  trusted() {
    const context = this.source.trustedContext();
    if (context === undefined || context === null) return undefined;
    return {
      ip: context.ip ?? undefined,
      userAgent: context.userAgent ?? undefined,
      deviceId: context.deviceId ?? undefined,
      issuedAt: Number(context.issuedAtMs),
      fields: Object.fromEntries(context.fields),
    };
  }
  /** The trusted (backend-signed) IP address, if a verified context carries one. */
  trustedIp() {
    return this.trusted()?.ip;
  }
}

/** Every path to a token: a rule that blocks declares these triggers, and its manifest
 * entry lists `every-sign-in`, so refreshes and first federated sign-ins meet the block. */
export const EVERY_SIGN_IN = Object.freeze(["pre-authentication", "pre-token-generation"]);

/**
 * A policy's exports: `evaluate` (the contract's, wrapping `spec.evaluate`) and `describe`.
 * A `PolicyError` or any other exception is a rule failure.
 */
export function policy(spec) {
  const exports = {
    evaluate(request) {
      let verdict;
      try {
        verdict = spec.evaluate(new Request(request));
      } catch (error) {
        throw error instanceof PolicyError ? error.message : `${error?.name ?? "Error"}: ${error?.message ?? error}`;
      }
      if (!(verdict instanceof Verdict)) throw `evaluate returned ${typeof verdict}, not a Verdict`;
      return verdict.toRaw();
    },
    describe() {
      return {
        name: spec.name ?? "js-policy",
        version: spec.version ?? "0.1.0",
        description: spec.description ?? "",
        triggers: [...spec.triggers],
      };
    },
  };
  warmUp(exports, spec.triggers);
  return exports;
}

/**
 * Runs the policy once per trigger on an empty sign-in while the module loads. A component
 * is built from a snapshot taken after loading (componentize-js pre-initializes it), and
 * SpiderMonkey compiles a function's bytecode on its first call: warmed up, every fresh
 * instance starts with the SDK's and the rule's common paths compiled instead of compiling
 * them on each sign-in. Rules are pure, so this has no effect but speed; whatever the rule
 * makes of an empty sign-in (even an exception) is discarded.
 */
function warmUp(exports, triggers) {
  for (const trigger of triggers) {
    const empty = {
      trigger: () => trigger,
      triggerSource: () => "",
      tenant: () => "",
      userName: () => undefined,
      userAttribute: () => undefined,
      clientMetadataValue: () => undefined,
      userNotFound: () => false,
      groups: () => [],
      scopes: () => [],
      config: () => "null",
      dataValue: () => undefined,
      nowUnixMs: () => 0n,
      tokenSource: () => "none",
      federated: () => false,
      firstFederated: () => false,
      trustedContext: () => undefined,
    };
    try {
      exports.evaluate(empty);
    } catch {
      // A rule may refuse an empty sign-in: the warm-up only compiles.
    }
  }
}

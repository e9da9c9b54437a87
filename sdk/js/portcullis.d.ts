// Types of the Portcullis JavaScript/TypeScript SDK (portcullis.js). The contract's own
// types (`Trigger`, `SignIn`, the raw `Verdict` record, `Metadata`) are generated from
// sdk/wit/policy.wit by `jco types` into ./types (scripts/build-js regenerates them).

import type {
  Metadata,
  TokenSource,
  Trigger,
  TrustedContext as RawTrustedContext,
  Verdict as RawVerdict,
} from "./types/interfaces/portcullis-policy-types.js";

export type { Metadata, RawTrustedContext, RawVerdict, TokenSource, Trigger };

/** What the app's backend signed and the host verified (see `Request.trusted`). */
export interface TrustedContext {
  ip?: string;
  userAgent?: string;
  deviceId?: string;
  /** When the backend signed it, in milliseconds since the Unix epoch. */
  issuedAt: number;
  /** Other signed fields. */
  fields: Record<string, string>;
}

/** Every path to a token: pre-authentication and pre token generation. */
export declare const EVERY_SIGN_IN: readonly Trigger[];

/** Any JSON value: what a claim, a configuration or a data item holds. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A rule failure: the host applies the rule's `on_error`. Never shown to users. */
export declare class PolicyError extends Error {}

/** What a policy decides: allow or deny, and the token changes it asks for. */
export declare class Verdict {
  private constructor(deny: string | undefined);
  /** Lets the sign-in proceed. */
  static allow(): Verdict;
  /** Blocks the sign-in; the message is shown to the user, so it must be client-safe. */
  static deny(message: string): Verdict;
  /** Whether the verdict allows the sign-in. */
  readonly allowed: boolean;
  /** The deny message, when it denies. */
  readonly denyMessage: string | undefined;
  /** Adds or overrides an ID-token claim (any JSON value). */
  idClaim(name: string, value: Json): this;
  /** Suppresses an ID-token claim. */
  suppress(name: string): this;
  /** Adds or overrides an access-token claim (V2/V3 events). */
  accessClaim(name: string, value: Json): this;
  /** Suppresses an access-token claim (V2/V3 events). */
  suppressAccess(name: string): this;
  /** Adds a scope to the access token (V2/V3 events). */
  addScope(scope: string): this;
  /** Removes a scope from the access token (V2/V3 events). */
  suppressScope(scope: string): this;
  /** Replaces the user's groups (roles the override does not name stay the user's). */
  groups(groups: Iterable<string>, iamRoles?: Iterable<string>, preferredRole?: string): this;
  /** The contract's `verdict` record, as the host receives it. */
  toRaw(): RawVerdict;
}

/**
 * The request as the host hands it over: the contract's `request` resource (or, in native
 * tests, what `testing.request(...).build()` makes). Policies use {@link Request}.
 */
export interface HostRequest {
  trigger(): Trigger;
  triggerSource(): string;
  tenant(): string;
  userName(): string | undefined;
  userAttribute(name: string): string | undefined;
  clientMetadataValue(key: string): string | undefined;
  userNotFound(): boolean;
  groups(): string[];
  scopes(): string[];
  config(): string;
  dataValue(key: string): string | undefined;
  nowUnixMs(): bigint;
  tokenSource(): TokenSource;
  federated(): boolean;
  firstFederated(): boolean;
  trustedContext(): RawTrustedContext | undefined;
}

/** One sign-in: each method reads one field from the host when called. */
export declare class Request {
  constructor(source: HostRequest);
  /** `pre-authentication`, `post-authentication` or `pre-token-generation`. */
  trigger(): Trigger;
  /** The raw Cognito `triggerSource`, e.g. `TokenGeneration_RefreshTokens`. */
  triggerSource(): string;
  /** The tenant the host resolved for this sign-in. */
  tenant(): string;
  /** The Cognito user name (absent for machine-to-machine tokens). */
  userName(): string | undefined;
  /** The user attribute `name`, or undefined. */
  attr(name: string): string | undefined;
  /** The client metadata (pre-auth: `validationData`) value for `key`, or undefined. */
  clientMeta(key: string): string | undefined;
  /** Pre-auth with PreventUserExistenceErrors: the user does not exist. */
  userNotFound(): boolean;
  /** The user's groups. */
  groups(): string[];
  /** The requested scopes (pre token generation V2/V3). */
  scopes(): string[];
  /**
   * The rule's configuration from the manifest (`{}` when it has none). The type is the
   * author's claim: check what matters, a `PolicyError` fails the rule.
   */
  config<T = Record<string, Json>>(): T;
  /** The prefetched data item `key` as JSON, or undefined when the host found none. */
  data<T = Json>(key: string): T | undefined;
  /**
   * How many times the counter `name` (declared in the rule's manifest entry under
   * `counters`) was counted in its current window; undefined when the host has no count
   * for this sign-in. The host counts after the decision.
   */
  counter(name: string): number | undefined;
  /** The current time in milliseconds since the Unix epoch, supplied by the host. */
  now(): number;
  /** Which path to a token (`none` outside pre token generation). */
  tokenSource(): TokenSource;
  /** A refresh through REFRESH_TOKEN_AUTH (a GetTokensFromRefreshToken refresh arrives as
   * `TokenGeneration_Authentication` and cannot be told from a sign-in). */
  isRefresh(): boolean;
  /** A machine-to-machine token (client credentials). */
  isMachineToMachine(): boolean;
  /** The user signs in through an external identity provider. */
  isFederated(): boolean;
  /** The user's first sign-in through an external provider, where the event shows it. */
  isFirstFederated(): boolean;
  /** The context the app's backend signed and the host verified, or undefined. */
  trusted(): TrustedContext | undefined;
  /** The trusted (backend-signed) IP address, if any. */
  trustedIp(): string | undefined;
}

/** What `policy` needs: the triggers it runs for and the function that decides. */
export interface PolicySpec {
  /** The policy's name (`describe`); defaults to `js-policy`. */
  name?: string;
  /** Its version (`describe`); defaults to `0.1.0`. */
  version?: string;
  /** One line on what it does. */
  description?: string;
  /** The triggers it is written for: `publish` refuses a manifest that lists another. */
  triggers: Trigger[];
  /** Decides one sign-in. Throw a `PolicyError` (or anything) for a rule failure. */
  evaluate(request: Request): Verdict;
}

/** A policy's exports, as the contract names them. */
export interface PolicyExports {
  evaluate(request: HostRequest): RawVerdict;
  describe(): Metadata;
}

/** Makes the contract's `evaluate` and `describe` from a spec: export both. */
export declare function policy(spec: PolicySpec): PolicyExports;

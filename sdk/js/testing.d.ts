// Types of the native test helpers (testing.js).

import type { HostRequest, Json, Trigger } from "./portcullis.js";

export { Request } from "./portcullis.js";

/** Builds a request for native tests, field by field. */
export declare class RequestBuilder {
  constructor(trigger: Trigger);
  /** The tenant (default `test`). */
  tenant(tenant: string): this;
  /** A user attribute. */
  attr(name: string, value: string): this;
  /** A client metadata (pre-auth: `validationData`) entry. */
  clientMeta(key: string, value: string): this;
  /** The rule's configuration. */
  config(config: Json): this;
  /** A prefetched data item. */
  data(key: string, value: Json): this;
  /** A declared counter's count in its window (`window_s` default 900). */
  counter(name: string, count: number, windowS?: number): this;
  /** The Cognito user name. */
  userName(name: string): this;
  /** A group the user belongs to. */
  group(group: string): this;
  /** The user does not exist (pre-auth with PreventUserExistenceErrors). */
  userNotFound(): this;
  /** The sign-in time, in milliseconds since the Unix epoch. */
  now(unixMs: number): this;
  /** The raw `triggerSource` (and the token source read from it). */
  source(triggerSource: string): this;
  /** The user is federated (`first`: this is the first federated sign-in). */
  federated(first?: boolean): this;
  /** The context the host verified: what the app's backend signed. */
  trusted(context?: { ip?: string; userAgent?: string; deviceId?: string; fields?: Record<string, string | number> }): this;
  /** The request, as a policy's `evaluate` receives it from the host. */
  build(): HostRequest;
}

/** A sign-in for `trigger`: tenant `test`, user `test-user`, time 2026-01-01T12:00:00Z. */
export declare function request(trigger: Trigger): RequestBuilder;

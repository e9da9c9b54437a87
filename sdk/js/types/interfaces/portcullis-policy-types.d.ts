/** @module Interface portcullis:policy/types@0.2.1 **/
/**
 * The Cognito trigger the request comes from.
 * # Variants
 * 
 * ## `"pre-authentication"`
 * 
 * `PreAuthentication_Authentication`: may allow or deny the sign-in.
 * ## `"post-authentication"`
 * 
 * `PostAuthentication_Authentication`: side effects only; never blocks.
 * ## `"pre-token-generation"`
 * 
 * `TokenGeneration_*`: may add, override and suppress token claims.
 */
export type Trigger = 'pre-authentication' | 'post-authentication' | 'pre-token-generation';
/**
 * Which path to a token a pre token generation event is on, from its `triggerSource`.
 * 
 * A block that must hold runs on every path (see the manifest's `every-sign-in`): a
 * refresh never passes pre-authentication, and neither does a first federated sign-in.
 * # Variants
 * 
 * ## `"none"`
 * 
 * Not a token event: pre- or post-authentication.
 * ## `"authentication"`
 * 
 * `TokenGeneration_Authentication`: a sign-in through the API, and also a refresh
 * through `GetTokensFromRefreshToken` (refresh-token rotation), which Cognito sends
 * with this same source.
 * ## `"hosted-auth"`
 * 
 * `TokenGeneration_HostedAuth`: a sign-in through managed login, every federated
 * sign-in included.
 * ## `"refresh-tokens"`
 * 
 * `TokenGeneration_RefreshTokens`: a refresh through `REFRESH_TOKEN_AUTH`.
 * ## `"new-password-challenge"`
 * 
 * `TokenGeneration_NewPasswordChallenge`: a sign-in that set a new password.
 * ## `"authenticate-device"`
 * 
 * `TokenGeneration_AuthenticateDevice`: a sign-in with a remembered device.
 * ## `"client-credentials"`
 * 
 * `TokenGeneration_ClientCredentials`: machine-to-machine; no user, no ID token.
 * ## `"other"`
 * 
 * A `TokenGeneration_*` source this contract does not name.
 */
export type TokenSource = 'none' | 'authentication' | 'hosted-auth' | 'refresh-tokens' | 'new-password-challenge' | 'authenticate-device' | 'client-credentials' | 'other';
/**
 * What the app's backend vouched for: a context envelope signed with the tenant's
 * context key and verified by the host (signature, tenant, freshness, replay). Values a
 * client sends itself are in `client-metadata` and never here.
 */
export interface TrustedContext {
  /**
   * The end user's IP address as the backend saw it.
   */
  ip?: string,
  /**
   * The end user's user agent.
   */
  userAgent?: string,
  /**
   * The backend's device identifier.
   */
  deviceId?: string,
  /**
   * When the backend signed the envelope, in milliseconds since the Unix epoch.
   */
  issuedAtMs: bigint,
  /**
   * Any other fields the backend signed, as text.
   */
  fields: Array<[string, string]>,
}
/**
 * One prefetched data item: `value` is JSON text.
 */
export interface DataItem {
  key: string,
  value: string,
}
/**
 * One sign-in as the host holds it: what the `request` resource's methods read (all of
 * them but `config`, `data` and `data-value`, which are the running rule's own).
 * 
 * No function takes or returns this record, so it never crosses the boundary and
 * adding it left the contract's version alone: it is here so that the host, the
 * Cognito event parser and every SDK's native testing are generated from the one
 * description of what a sign-in carries.
 */
export interface SignIn {
  /**
   * The trigger kind.
   */
  trigger: Trigger,
  /**
   * The raw Cognito `triggerSource`, e.g. `TokenGeneration_RefreshTokens`.
   */
  triggerSource: string,
  /**
   * The raw Cognito event `version`.
   */
  eventVersion: string,
  /**
   * The tenant the host resolved for this sign-in.
   */
  tenant: string,
  /**
   * The Cognito user pool id.
   */
  userPoolId: string,
  /**
   * The app client id, when the event carries one.
   */
  clientId?: string,
  /**
   * The Cognito user name (absent for machine-to-machine tokens).
   */
  userName?: string,
  /**
   * The user's attributes, in the event's order.
   */
  userAttributes: Array<[string, string]>,
  /**
   * Pre-auth `validationData` or the trigger's `clientMetadata`.
   */
  clientMetadata: Array<[string, string]>,
  /**
   * Pre-auth with `PreventUserExistenceErrors`: the user does not exist.
   */
  userNotFound: boolean,
  /**
   * Post-auth: whether a new device was used, when Cognito says.
   */
  newDeviceUsed?: boolean,
  /**
   * The user's groups (`groupConfiguration.groupsToOverride`).
   */
  groups: Array<string>,
  /**
   * Requested scopes (pre token generation V2/V3).
   */
  scopes: Array<string>,
  /**
   * The current time in milliseconds since the Unix epoch, supplied by the host.
   */
  nowUnixMs: bigint,
  /**
   * Which path to a token this is (`none` outside pre token generation).
   */
  tokenSource: TokenSource,
  /**
   * The user signs in through an external identity provider (`identities`, or
   * `cognito:user_status` `EXTERNAL_PROVIDER`).
   */
  federated: boolean,
  /**
   * The user's first sign-in through an external provider, where the event shows it
   * (a hosted-auth token event whose provider identity was created moments ago).
   */
  firstFederated: boolean,
  /**
   * The context the app's backend signed, when it verified.
   */
  trusted?: TrustedContext,
}
/**
 * Allow or deny the sign-in.
 */
export type Decision = DecisionAllow | DecisionDeny;
/**
 * Let the sign-in proceed.
 */
export interface DecisionAllow {
  tag: 'allow',
}
/**
 * Block the sign-in; the message is shown to the end user, so it must be client-safe.
 */
export interface DecisionDeny {
  tag: 'deny',
  val: string,
}
/**
 * A claim to add or override: `value` is JSON text (a string claim is `"\"text\""`).
 */
export interface Claim {
  name: string,
  value: string,
}
/**
 * Replaces the user's groups in the tokens. Absent means "leave the groups alone".
 */
export interface GroupOverride {
  groups: Array<string>,
  iamRoles: Array<string>,
  preferredRole?: string,
}
/**
 * What a policy decides for one request.
 */
export interface Verdict {
  decision: Decision,
  /**
   * ID-token claims to add or override.
   */
  idClaims: Array<Claim>,
  /**
   * ID-token claims to suppress.
   */
  idSuppress: Array<string>,
  /**
   * Access-token claims to add or override (applied only for V2/V3 events).
   */
  accessClaims: Array<Claim>,
  /**
   * Access-token claims to suppress (V2/V3 only).
   */
  accessSuppress: Array<string>,
  /**
   * Scopes to add to the access token (V2/V3 only).
   */
  scopesAdd: Array<string>,
  /**
   * Scopes to remove from the access token (V2/V3 only).
   */
  scopesSuppress: Array<string>,
  /**
   * Replace the user's groups; absent leaves them as they are.
   */
  groups?: GroupOverride,
}
/**
 * What a policy says about itself.
 */
export interface Metadata {
  name: string,
  version: string,
  description: string,
  triggers: Array<Trigger>,
}
/**
 * Log severity.
 * # Variants
 * 
 * ## `"debug"`
 * 
 * ## `"info"`
 * 
 * ## `"warn"`
 * 
 * ## `"error"`
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

export class Request {
  /**
   * This type does not have a public constructor.
   */
  private constructor();
  /**
  * The trigger kind.
  */
  trigger(): Trigger;
  /**
  * The raw Cognito `triggerSource`, e.g. `TokenGeneration_RefreshTokens`.
  */
  triggerSource(): string;
  /**
  * The raw Cognito event `version`.
  */
  eventVersion(): string;
  /**
  * The tenant the host resolved for this sign-in.
  */
  tenant(): string;
  /**
  * The Cognito user pool id.
  */
  userPoolId(): string;
  /**
  * The app client id, when the event carries one.
  */
  clientId(): string | undefined;
  /**
  * The Cognito user name (absent for machine-to-machine tokens).
  */
  userName(): string | undefined;
  /**
  * The user attribute `name` (e.g. `email`, `custom:tenant_id`), if the user has it.
  */
  userAttribute(name: string): string | undefined;
  /**
  * All the user's attributes, in the event's order.
  */
  userAttributes(): Array<[string, string]>;
  /**
  * The value for `key` in pre-auth `validationData` or the trigger's
  * `clientMetadata`, if present.
  */
  clientMetadataValue(key: string): string | undefined;
  /**
  * All of pre-auth `validationData` or the trigger's `clientMetadata`.
  */
  clientMetadata(): Array<[string, string]>;
  /**
  * Pre-auth with `PreventUserExistenceErrors`: the user does not exist.
  */
  userNotFound(): boolean;
  /**
  * Post-auth: whether a new device was used, when Cognito says.
  */
  newDeviceUsed(): boolean | undefined;
  /**
  * The user's groups (`groupConfiguration.groupsToOverride`).
  */
  groups(): Array<string>;
  /**
  * Requested scopes (pre token generation V2/V3).
  */
  scopes(): Array<string>;
  /**
  * The rule's own configuration from the manifest, as JSON text (`null` if none).
  */
  config(): string;
  /**
  * The prefetched data item `key` (JSON text), if the rule declared it and the host
  * found it.
  */
  dataValue(key: string): string | undefined;
  /**
  * All the data items the rule declared and the host found.
  */
  data(): Array<DataItem>;
  /**
  * The current time in milliseconds since the Unix epoch, supplied by the host.
  */
  nowUnixMs(): bigint;
  /**
  * Which path to a token this is (`none` outside pre token generation).
  */
  tokenSource(): TokenSource;
  /**
  * The user signs in through an external identity provider.
  */
  federated(): boolean;
  /**
  * The user's first sign-in through an external provider, where the event shows it.
  */
  firstFederated(): boolean;
  /**
  * The context the app's backend signed and the host verified, if any. Client
  * metadata is what the client says; this is what the backend vouches for.
  */
  trustedContext(): TrustedContext | undefined;
}

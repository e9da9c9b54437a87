// Types of the trusted-context signing helper (context.js), for the app's backend.

/** The client metadata key the envelope travels under. */
export declare const METADATA_KEY: "portcullis_context";

/** The shortest key accepted, in bytes. */
export declare const MIN_KEY: number;

/** What the backend vouches for. */
export interface ContextClaims {
  /** The tenant the envelope is for (required). */
  tenant: string;
  /** Binds the envelope to one Cognito user name. */
  user?: string;
  ip?: string;
  userAgent?: string;
  deviceId?: string;
  /** Other fields, sent as text. */
  fields?: Record<string, string | number | boolean>;
  /** The signing time in milliseconds (default: now). */
  now?: number;
  /** A unique value (default: 128 random bits). */
  nonce?: string;
}

/** The envelope for `claims.tenant`, signed with `key` (the tenant's context key). */
export declare function signContext(key: string | Uint8Array, claims: ContextClaims): string;

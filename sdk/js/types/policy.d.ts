// world portcullis:policy/policy@0.2.1
export type Request = import('./interfaces/portcullis-policy-types.js').Request;
export type Verdict = import('./interfaces/portcullis-policy-types.js').Verdict;
export type Metadata = import('./interfaces/portcullis-policy-types.js').Metadata;
export type * as PortcullisPolicyHost021 from './interfaces/portcullis-policy-host.js'; // import portcullis:policy/host@0.2.1
export type * as PortcullisPolicyTypes021 from './interfaces/portcullis-policy-types.js'; // import portcullis:policy/types@0.2.1
/**
* Decides one sign-in. An `error` is a rule failure: the rule's `on_error` applies.
*/
export function evaluate(request: Request): Verdict;
/**
* Describes the policy (`portcullis publish` checks its triggers against the manifest's).
*/
export function describe(): Metadata;
export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };

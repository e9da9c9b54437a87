/** @module Interface portcullis:policy/host@0.2.1 **/
/**
 * Writes a line to the decision log. The host truncates long messages and drops lines
 * past a per-evaluation cap. Do not log user attribute values.
 */
export function log(level: Level, message: string): void;
export type Level = import('./portcullis-policy-types.js').Level;

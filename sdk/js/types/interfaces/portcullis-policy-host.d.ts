/** @module Interface portcullis:policy/host@0.2.1 **/
/**
 * Writes a line to the decision log. The host truncates long messages and drops lines
 * past a per-evaluation cap. Do not log user attribute values.
 */
export function log(level: Level, message: string): void;
/**
 * Asks the host to change the counter `name` (one the rule's manifest entry declares
 * under `counters`) after the decision, besides what the trigger implies. The host
 * applies the requests of a rule whose verdict is applied (an enforced rule that
 * returned a verdict), in order, to that sign-in's key of the counter; it ignores
 * names the rule did not declare and requests past 16 per evaluation.
 */
export function count(name: string, change: CounterChange): void;
export type Level = import('./portcullis-policy-types.js').Level;
/**
 * A change to one of the rule's counters.
 */
export type CounterChange = CounterChangeAdd | CounterChangeReset;
/**
 * Add this many (1 to 1000).
 */
export interface CounterChangeAdd {
  tag: 'add',
  val: number,
}
/**
 * Back to zero.
 */
export interface CounterChangeReset {
  tag: 'reset',
}

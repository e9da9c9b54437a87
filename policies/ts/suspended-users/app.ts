// Blocks suspended users: a user attribute (`custom:suspended` by default) set to `true`,
// or a prefetched data item (alias `user` by default) whose `suspended` field is true.
// The TypeScript twin of policies/suspended-users (Rust): same configuration, same
// decisions. Configuration (all optional):
// {"attribute": "custom:suspended", "data": "user", "message": "Your account is suspended"}
import { EVERY_SIGN_IN, PolicyError, Verdict, policy } from "../../../sdk/js/portcullis.js";

interface Config {
  attribute: string;
  data: string;
  message: string;
}

const DEFAULTS: Config = { attribute: "custom:suspended", data: "user", message: "Your account is suspended" };

export const { evaluate, describe } = policy({
  name: "suspended-users-ts",
  // Every path to a token: refreshes and first federated sign-ins never pass pre-authentication.
  triggers: [...EVERY_SIGN_IN],
  description: "blocks users flagged suspended by an attribute or a prefetched data item",
  evaluate(request) {
    const given = request.config<Partial<Config>>();
    const unknown = Object.keys(given).filter((k) => !(k in DEFAULTS)).sort();
    if (unknown.length > 0) throw new PolicyError(`invalid rule configuration: unknown field \`${unknown[0]}\``);
    const config: Config = { ...DEFAULTS, ...given };
    if (request.userNotFound()) return Verdict.allow();
    const flag = request.attr(config.attribute);
    const byAttribute = flag !== undefined && (flag.toLowerCase() === "true" || flag === "1");
    const item = request.data<{ suspended?: unknown }>(config.data);
    const byData = item !== null && typeof item === "object" && item.suspended === true;
    return byAttribute || byData ? Verdict.deny(config.message) : Verdict.allow();
  },
});

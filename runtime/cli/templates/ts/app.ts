// {{name}}: a Portcullis sign-in policy.
//
// Every path to a token (pre-authentication and pre token generation, so refreshes and
// first federated sign-ins too): blocks users whose email is in one of `blocked_domains`.
// Pre token generation: adds a `plan` claim to the ID token of everyone else.
// Configuration (manifest.json, or a test case's `config`):
// {"blocked_domains": ["example.net"], "plan": "free"}, both optional.
import { EVERY_SIGN_IN, PolicyError, Verdict, policy } from "@portcullis/sdk";

interface Config {
  blocked_domains?: string[];
  plan?: string;
}

export const { evaluate, describe } = policy({
  name: "{{name}}",
  triggers: [...EVERY_SIGN_IN],
  description: "blocks configured email domains; adds a plan claim",
  evaluate(request) {
    const config = request.config<Config>();
    const unknown = Object.keys(config).filter((k) => k !== "blocked_domains" && k !== "plan");
    if (unknown.length > 0) throw new PolicyError(`invalid rule configuration: unknown field \`${unknown[0]}\``);
    const email = request.attr("email") ?? "";
    const domain = email.slice(email.lastIndexOf("@") + 1).toLowerCase();
    if ((config.blocked_domains ?? []).some((d) => d.toLowerCase() === domain)) {
      return Verdict.deny("Sign-in with this email address is not allowed");
    }
    if (request.trigger() === "pre-token-generation") {
      return Verdict.allow().idClaim("plan", config.plan ?? "free");
    }
    return Verdict.allow();
  },
});

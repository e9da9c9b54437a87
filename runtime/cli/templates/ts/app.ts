// {{name}}: a Portcullis sign-in policy.
//
// Pre-authentication: blocks users whose email is in one of `blocked_domains`.
// Pre token generation: adds a `plan` claim to the ID token.
// Configuration (manifest.json, or a test case's `config`):
// {"blocked_domains": ["example.net"], "plan": "free"}, both optional.
import { PolicyError, Verdict, policy } from "@portcullis/sdk";

interface Config {
  blocked_domains?: string[];
  plan?: string;
}

export const { evaluate, describe } = policy({
  name: "{{name}}",
  triggers: ["pre-authentication", "pre-token-generation"],
  description: "blocks configured email domains; adds a plan claim",
  evaluate(request) {
    const config = request.config<Config>();
    const unknown = Object.keys(config).filter((k) => k !== "blocked_domains" && k !== "plan");
    if (unknown.length > 0) throw new PolicyError(`invalid rule configuration: unknown field \`${unknown[0]}\``);
    if (request.trigger() === "pre-token-generation") {
      return Verdict.allow().idClaim("plan", config.plan ?? "free");
    }
    const email = request.attr("email") ?? "";
    const domain = email.slice(email.lastIndexOf("@") + 1).toLowerCase();
    if ((config.blocked_domains ?? []).some((d) => d.toLowerCase() === domain)) {
      return Verdict.deny("Sign-in with this email address is not allowed");
    }
    return Verdict.allow();
  },
});

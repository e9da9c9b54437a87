// Allows sign-in only for users whose verified `email` is in one of the configured
// domains. The TypeScript twin of policies/email-domain (Rust): same configuration, same
// decisions. Configuration: {"domains": ["example.com"], "subdomains": false,
// "require_verified": true, "message": "Sign-in is restricted to company accounts"}
import { PolicyError, Verdict, policy } from "../../../sdk/js/portcullis.js";

interface Config {
  domains: string[];
  subdomains: boolean;
  require_verified: boolean;
  message: string;
}

const DEFAULT_MESSAGE = "Sign-in is restricted to approved email domains";
const KNOWN = ["domains", "subdomains", "require_verified", "message"];

function allowed(domain: string, config: Config): boolean {
  const d = domain.toLowerCase();
  return config.domains.some((entry) => {
    const a = entry.replace(/^@+/, "").toLowerCase();
    return d === a || (config.subdomains && d.length > a.length && d.endsWith(`.${a}`));
  });
}

export const { evaluate, describe } = policy({
  name: "email-domain-ts",
  triggers: ["pre-authentication"],
  description: "allows only email addresses in the configured domains",
  evaluate(request) {
    const given = request.config<Partial<Config>>();
    const unknown = Object.keys(given).filter((k) => !KNOWN.includes(k)).sort();
    if (unknown.length > 0) throw new PolicyError(`invalid rule configuration: unknown field \`${unknown[0]}\``);
    if (!Array.isArray(given.domains)) throw new PolicyError("invalid rule configuration: missing field `domains`");
    const config: Config = { subdomains: false, require_verified: true, message: DEFAULT_MESSAGE, ...given, domains: given.domains };
    if (request.userNotFound()) return Verdict.allow();
    if (config.require_verified && request.attr("email_verified") !== "true") return Verdict.deny(config.message);
    const email = request.attr("email") ?? "";
    const at = email.lastIndexOf("@");
    return at >= 0 && allowed(email.slice(at + 1), config) ? Verdict.allow() : Verdict.deny(config.message);
  },
});

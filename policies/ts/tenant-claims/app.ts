// Adds tenant claims in pre token generation: `tenant_id` and `roles` (from the data item
// `member`, else from configuration) to the ID and access tokens, a `tenant:<id>` scope,
// and suppresses the configured claims. The TypeScript twin of policies/tenant-claims.
import { PolicyError, Verdict, policy } from "../../../sdk/js/portcullis.js";

interface Config {
  roles?: string[];
  suppress?: string[];
  scope_prefix?: string;
}

const FIELDS = new Set(["roles", "suppress", "scope_prefix"]);

export const { evaluate, describe } = policy({
  name: "tenant-claims-ts",
  triggers: ["pre-token-generation"],
  description: "adds tenant_id and roles claims and suppresses configured claims",
  evaluate(request) {
    const config = request.config<Config>();
    const unknown = Object.keys(config).filter((k) => !FIELDS.has(k)).sort();
    if (unknown.length > 0) throw new PolicyError(`invalid rule configuration: unknown field \`${unknown[0]}\``);
    const member = request.data<{ roles?: string[] }>("member");
    const roles = member !== null && typeof member === "object" ? member.roles ?? [] : config.roles ?? [];
    const tenant = request.tenant();
    let verdict = Verdict.allow()
      .idClaim("tenant_id", tenant).idClaim("roles", roles)
      .accessClaim("tenant_id", tenant).accessClaim("roles", roles)
      .addScope((config.scope_prefix || "tenant:") + tenant);
    for (const claim of config.suppress ?? []) verdict = verdict.suppress(claim);
    return verdict;
  },
});

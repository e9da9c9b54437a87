// Locks an identifier out after too many failed sign-in attempts within a window. The
// TypeScript twin of policies/lockout (Rust): same configuration, same decisions.
//
// The host keeps the count (the manifest entry declares it under `counters`, e.g.
// {"attempts": {"key": "user#{username}", "window_s": 900}}): it adds one in
// pre-authentication and resets it in post-authentication, so the count is the failed
// attempts since the last success. From `max_attempts` on, the sign-in is blocked until the
// window is over. Configuration (all optional): {"counter": "attempts", "max_attempts": 5,
// "allow_users": [], "allow_ips": [], "action": "block", "message": "…"}. `allow_ips` are
// IPv4 CIDRs matched against the trusted IP only; `notify` allows.
import { PolicyError, Verdict, policy } from "../../../sdk/js/portcullis.js";

interface Config {
  counter: string;
  max_attempts: number;
  allow_users: string[];
  allow_ips: string[];
  action: "block" | "notify";
  message: string;
}

const DEFAULTS: Config = {
  counter: "attempts",
  max_attempts: 5,
  allow_users: [],
  allow_ips: [],
  action: "block",
  message: "Too many failed sign-in attempts. Try again later",
};

/** An IPv4 address as a number, or undefined. */
function ipv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** Whether `ip` is in the IPv4 CIDR `net`; a net that does not parse is a rule failure. */
function within(ip: number, net: string): boolean {
  const [base, bits] = net.split("/");
  const start = ipv4(base ?? "");
  const prefix = Number(bits);
  if (start === undefined || bits === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
    throw new PolicyError(`invalid rule configuration: \`${net}\` is not an IPv4 CIDR`);
  }
  const size = 2 ** (32 - prefix);
  return Math.floor(ip / size) === Math.floor(start / size);
}

export const { evaluate, describe } = policy({
  name: "lockout-ts",
  triggers: ["pre-authentication"],
  description: "blocks an identifier after N failed attempts within a window (host-kept counter)",
  evaluate(request) {
    const given = request.config<Partial<Config>>();
    const unknown = Object.keys(given).filter((k) => !(k in DEFAULTS)).sort();
    if (unknown.length > 0) throw new PolicyError(`invalid rule configuration: unknown field \`${unknown[0]}\``);
    const config: Config = { ...DEFAULTS, ...given };
    if (!Number.isInteger(config.max_attempts) || config.max_attempts < 1) {
      throw new PolicyError("`max_attempts` must be at least 1");
    }
    if (config.action !== "block" && config.action !== "notify") {
      throw new PolicyError(`invalid rule configuration: unknown action \`${String(config.action)}\``);
    }
    const count = request.counter(config.counter);
    if (count === undefined || count < config.max_attempts) return Verdict.allow();
    const user = request.userName();
    if (user !== undefined && config.allow_users.includes(user)) return Verdict.allow();
    const ip = ipv4(request.trustedIp() ?? "");
    if (ip !== undefined && config.allow_ips.some((net) => within(ip, net))) return Verdict.allow();
    return config.action === "notify" ? Verdict.allow() : Verdict.deny(config.message);
  },
});

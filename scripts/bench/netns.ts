/**
 * A private network namespace for the lossy rows: its own loopback at MTU 1 500, and iptables rules
 * (statistic match, random drop) on the loopback's INPUT chain for one port, both directions.
 * Nothing outside the namespace is touched.
 */
import { run } from "./proc.ts";

export const PATH_MTU = 1500;
const LOSS_CHAIN = "HOPLOSS";

async function must(argv: string[], ns?: string): Promise<void> {
  const r = await run(argv, { ns, timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.trim() || `exit ${r.code}`}`);
}

async function has(command: string): Promise<boolean> {
  const r = await run(["sh", "-c", `command -v ${command}`]).catch(() => null);
  return r !== null && r.code === 0;
}

function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** Installs Debian packages when a command is missing and we are root. Returns why not, or null. */
export async function ensureCommands(wanted: Record<string, string>): Promise<string | null> {
  const missing = [];
  for (const [command, pkg] of Object.entries(wanted)) {
    if (!(await has(command))) missing.push({ command, pkg });
  }
  if (missing.length === 0) return null;
  const names = missing.map((m) => m.command).join(", ");
  if (!isRoot()) return `${names} missing and not root (cannot apt-get install)`;
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  console.error(`· installing ${pkgs.join(" ")} (apt-get)`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  let r = await run(["apt-get", "install", "-y", ...pkgs], { env, timeoutMs: 300_000 });
  if (r.code !== 0) {
    await run(["apt-get", "update"], { env, timeoutMs: 300_000 });
    r = await run(["apt-get", "install", "-y", ...pkgs], { env, timeoutMs: 300_000 });
  }
  for (const m of missing) {
    if (!(await has(m.command))) return `${m.command} missing and apt-get install ${m.pkg} failed`;
  }
  return null;
}

/** Why the namespace rows cannot run here, or null if they can. */
export async function netnsUnavailable(): Promise<string | null> {
  if (!isRoot()) return "not root (ip netns and iptables need CAP_NET_ADMIN)";
  const missing = await ensureCommands({ ip: "iproute2", iptables: "iptables" });
  if (missing) return missing;
  return null;
}

export class Namespace {
  readonly name = `hopbench-${Deno.pid}`;
  #created = false;

  async create(): Promise<void> {
    await must(["ip", "netns", "add", this.name]);
    this.#created = true;
    await must(["ip", "link", "set", "lo", "up"], this.name);
    await must(["ip", "link", "set", "lo", "mtu", String(PATH_MTU)], this.name);
    // Without this, lo hands TCP segments of up to 64 KB to iptables as one packet, so "1 % loss"
    // would drop 1 % of 64 KB bursts: far fewer losses than a real path's per-1 500-byte packets.
    await must(["ip", "link", "set", "lo", "gso_max_segs", "1", "gso_max_size", String(PATH_MTU)], this.name);
  }

  /**
   * Lo at MTU 1 500 would fragment a larger UDP datagram and reassemble it before INPUT, so the
   * tunnel's packet size discovery would settle at 16 KB as on plain loopback. A real path drops
   * (or fragments and then loses per fragment) what does not fit: drop tunnel datagrams whose IP
   * packet exceeds the MTU, as a path with DF set would. Set once, before the tunnel starts; the
   * loss rules live in their own chain (HOPLOSS) so changing them never opens a gap in these.
   */
  async pathRules(udpPort: number): Promise<void> {
    await must(["iptables", "-N", LOSS_CHAIN], this.name);
    await must(["iptables", "-A", "INPUT", "-i", "lo", "-j", LOSS_CHAIN], this.name);
    await this.mtuRule(udpPort, true);
  }

  /** Adds (at the top of INPUT) or deletes the rule dropping tunnel datagrams larger than the MTU. */
  async mtuRule(udpPort: number, on: boolean): Promise<void> {
    for (const dir of ["--dport", "--sport"]) {
      await must([
        "iptables",
        ...(on ? ["-I", "INPUT", "1"] : ["-D", "INPUT"]),
        "-i",
        "lo",
        "-p",
        "udp",
        dir,
        String(udpPort),
        "-m",
        "length",
        "--length",
        `${PATH_MTU + 1}:65535`,
        "-j",
        "DROP",
      ], this.name);
    }
  }

  /** Random loss, both directions, on a UDP and/or a TCP port (replaces the previous loss rules). */
  async loss(o: { udpPort?: number; udpLoss?: number; tcpPort?: number; tcpLoss?: number }): Promise<void> {
    await must(["iptables", "-F", LOSS_CHAIN], this.name);
    const drop = (proto: string, dir: string, port: number, p: number) =>
      must([
        "iptables",
        "-A",
        LOSS_CHAIN,
        "-p",
        proto,
        dir,
        String(port),
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        String(p),
        "-j",
        "DROP",
      ], this.name);
    for (const dir of ["--dport", "--sport"]) {
      if (o.udpLoss && o.udpPort) await drop("udp", dir, o.udpPort, o.udpLoss);
      if (o.tcpLoss && o.tcpPort) await drop("tcp", dir, o.tcpPort, o.tcpLoss);
    }
  }

  /** Packets dropped by each rule so far (iptables -L -v -x). */
  async counters(): Promise<string> {
    const r = await run(["iptables", "-L", "-v", "-x", "-n"], { ns: this.name });
    return r.stdout;
  }

  async remove(): Promise<void> {
    if (!this.#created) return;
    this.#created = false;
    await run(["ip", "netns", "del", this.name], { timeoutMs: 20_000 });
  }

  /** Synchronous removal for a signal handler that must not wait. */
  removeSync(): void {
    if (!this.#created) return;
    this.#created = false;
    new Deno.Command("ip", { args: ["netns", "del", this.name], stdout: "null", stderr: "null" })
      .outputSync();
  }
}

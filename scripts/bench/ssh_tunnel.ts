/**
 * Reference row: `ssh -R` (OpenSSH) over loopback. A private sshd on a free 127.0.0.1 port with its
 * own host key and one authorized key, both generated into the bench's temp dir (the system's ssh
 * configuration is not read or changed), and `ssh -N -R 127.0.0.1:PORT:127.0.0.1:ORIGIN` to it: the
 * load then goes to PORT, which sshd listens on and forwards through the SSH connection to the origin.
 */
import { Proc, run, sleep } from "./proc.ts";
import { processTree, procStat } from "./cpu.ts";
import { ensureCommands } from "./netns.ts";

export interface SshTunnel {
  sshd: Proc;
  client: Proc;
  /** Where the load goes: sshd's end of the remote forward. */
  port: number;
  sshdPort: number;
  /** sshd's listener and the per-connection processes below it (privileged monitor, session child). */
  sshdPids: number[];
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Why the ssh -R row cannot run here (after trying apt-get as root), or null if it can. */
export async function sshUnavailable(): Promise<string | null> {
  return await ensureCommands({
    sshd: "openssh-server",
    ssh: "openssh-client",
    "ssh-keygen": "openssh-client",
  });
}

async function sshdPath(): Promise<string> {
  // sshd re-executes itself per connection and insists on an absolute path.
  const r = await run(["sh", "-c", "command -v sshd"]);
  const path = r.stdout.trim();
  if (r.code !== 0 || !path.startsWith("/")) {
    throw new Error("sshd not found on PATH (install openssh-server)");
  }
  return path;
}

async function keygen(file: string): Promise<void> {
  const r = await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hopbench", "-f", file]);
  if (r.code !== 0) throw new Error(`ssh-keygen -f ${file}: ${r.stderr.trim() || `exit ${r.code}`}`);
}

/** sshd writes its PidFile once it listens (probing the port instead would leave a log line per probe). */
async function waitPidFile(file: string, proc: Proc, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (proc.exited) throw new Error(`${proc.name} exited; see ${proc.logFile}:\n${await proc.tail()}`);
    const text = await Deno.readTextFile(file).catch(() => "");
    if (text.trim() !== "") return;
    await sleep(50);
  }
  throw new Error(
    `${proc.name}: no ${file} after ${timeoutMs} ms; see ${proc.logFile}:\n${await proc.tail()}`,
  );
}

async function waitForward(t: SshTunnel, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  while (performance.now() < deadline) {
    if (t.client.exited) {
      throw new Error(`ssh -R exited; see ${t.client.logFile}:\n${await t.client.tail()}`);
    }
    const r = await run([
      "curl",
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--max-time",
      "3",
      `http://127.0.0.1:${t.port}/small`,
    ]);
    last = `${r.stdout} ${r.stderr}`.trim();
    if (r.stdout === "200") return;
    await sleep(200);
  }
  throw new Error(`the ssh -R forward on 127.0.0.1:${t.port} never answered 200 (last: ${last})`);
}

/** Starts sshd and the ssh -R client; resolves once a request through the forward reaches the origin. */
export async function startSshTunnel(
  o: { dir: string; logDir: string; originPort: number },
): Promise<SshTunnel> {
  await Deno.mkdir(o.dir, { recursive: true });
  const hostKey = `${o.dir}/ssh_host_ed25519_key`;
  const userKey = `${o.dir}/id_ed25519`;
  await keygen(hostKey);
  await keygen(userKey);
  await Deno.copyFile(`${userKey}.pub`, `${o.dir}/authorized_keys`);
  const root = Deno.uid() === 0;
  const sshdPort = freePort();
  await Deno.writeTextFile(
    `${o.dir}/sshd_config`,
    [
      `Port ${sshdPort}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${o.dir}/sshd.pid`,
      `AuthorizedKeysFile ${o.dir}/authorized_keys`,
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      // root's shadow entry is often '*', which sshd without PAM takes for a locked account.
      `UsePAM ${root ? "yes" : "no"}`,
      // The keys sit in a temp dir whose modes sshd would otherwise reject.
      "StrictModes no",
      "AllowTcpForwarding yes",
      "GatewayPorts no",
      "X11Forwarding no",
      "PermitTTY no",
      "LogLevel ERROR",
      "",
    ].join("\n"),
  );
  const sshd = await sshdPath();
  let argv = [sshd, "-D", "-e", "-f", `${o.dir}/sshd_config`];
  let exists = true;
  try {
    Deno.statSync("/run/sshd");
  } catch {
    exists = false;
  }
  if (root && !exists) {
    // A root sshd needs its privilege separation directory /run/sshd. Rather than create it on the
    // system, sshd runs in a private mount namespace with a throwaway tmpfs on /run.
    argv = [
      "unshare",
      "-m",
      "sh",
      "-c",
      'mount -t tmpfs -o size=1m,mode=755 none /run && mkdir -m 755 /run/sshd && exec "$@"',
      "sshd",
      ...argv,
    ];
  }
  const sshdProc = new Proc("ssh-sshd", argv, `${o.logDir}/ssh-sshd.log`);
  try {
    await waitPidFile(`${o.dir}/sshd.pid`, sshdProc, 10_000);
  } catch (e) {
    await sshdProc.stop(2000);
    throw e;
  }
  const port = freePort();
  const user = root ? "root" : (await run(["id", "-un"])).stdout.trim();
  const client = new Proc("ssh-R", [
    "ssh",
    "-F",
    "/dev/null",
    "-N",
    "-T",
    "-i",
    userKey,
    "-p",
    String(sshdPort),
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    `UserKnownHostsFile=${o.dir}/known_hosts`,
    "-o",
    "ExitOnForwardFailure=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-R",
    `127.0.0.1:${port}:127.0.0.1:${o.originPort}`,
    `${user}@127.0.0.1`,
  ], `${o.logDir}/ssh-R.log`);
  const tunnel: SshTunnel = { sshd: sshdProc, client, port, sshdPort, sshdPids: [] };
  try {
    await waitForward(tunnel, 20_000);
  } catch (e) {
    await stopSshTunnel(tunnel);
    throw e;
  }
  tunnel.sshdPids = processTree(sshdProc.pid);
  return tunnel;
}

/** Waits until none of the pids runs (a zombie counts as ended); gives those still running. */
async function waitEnded(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const running = pids.filter((p) => {
      const s = procStat(p);
      return s !== null && s.state !== "Z";
    });
    if (running.length === 0 || performance.now() > deadline) return running;
    await sleep(50);
  }
}

/**
 * Stops the client (its session's sshd processes then end by themselves), then sshd; a session
 * process still running after that (they are sshd's children, started by this run) gets SIGKILL by pid.
 */
export async function stopSshTunnel(t: SshTunnel): Promise<void> {
  const below = processTree(t.sshd.pid).filter((p) => p !== t.sshd.pid);
  await t.client.stop(2000);
  await t.sshd.stop(3000);
  const left = await waitEnded(below, 3000);
  for (const pid of left) {
    // Only if that pid is still an sshd (a pid freed meanwhile could have been reused).
    if (!procStat(pid)?.comm.startsWith("sshd")) continue;
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* ended meanwhile */ }
  }
  const stuck = await waitEnded(left, 2000);
  if (stuck.length) throw new Error(`sshd session processes ${stuck.join(", ")} still run after SIGKILL`);
}

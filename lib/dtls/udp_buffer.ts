/**
 * A larger kernel receive buffer for the tunnel's UDP sockets, as quic-go does for QUIC (it asks for
 * 7 MB and warns when it cannot get it). Linux's default (net.core.rmem_default, 208 KiB) holds about
 * ten 16 KB datagrams: when the event loop is busy for a moment (writing a response to a browser), a
 * bulk transfer overflows it, the kernel drops datagrams, and the transport takes them for congestion.
 * Measured: a 10 MiB download lost 94 datagrams at the server's socket and ran at 54-163 MB/s.
 *
 * Deno does not expose setsockopt for UDP, so on Linux the socket's descriptor is found through
 * /proc (the inode of its local port) and SO_RCVBUF is set through libc by FFI. Off unless an
 * entrypoint asks for it (`setUdpReceiveBuffer`); without FFI permission, or off Linux, nothing changes.
 */

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;

/** What the entrypoints ask for: quic-go's figure. */
export const UDP_RECEIVE_BUFFER = 7 * 1024 * 1024;

let wanted = 0;

/** Bytes to ask for on every tunnel UDP socket opened afterwards (0: leave the system default). */
export function setUdpReceiveBuffer(bytes: number): void {
  wanted = bytes;
}

type Libc = Deno.DynamicLibrary<{
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"]; result: "i32" };
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"]; result: "i32" };
}>["symbols"];

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (Deno.build.os !== "linux" || Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return libc;
  }
  try {
    libc = Deno.dlopen("libc.so.6", {
      setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
      getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
    }).symbols;
  } catch { /* no libc by that name: stay with the default */ }
  return libc;
}

/** The socket inodes bound to local UDP port `port` (IPv4 and IPv6 tables). */
function inodesOfPort(port: number): Set<string> {
  const found = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1].endsWith(`:${hexPort}`)) found.add(f[9]);
    }
  }
  return found;
}

/** This process's descriptor of the UDP socket bound to `port`, if exactly one is found. */
function descriptorOfPort(port: number): number | undefined {
  const inodes = inodesOfPort(port);
  if (inodes.size === 0) return undefined;
  let fd: number | undefined;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    let link: string;
    try {
      link = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
    } catch {
      continue;
    }
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (!m || !inodes.has(m[1])) continue;
    if (fd !== undefined) return undefined; // two sockets on one port: do not guess
    fd = Number(entry.name);
  }
  return fd;
}

/**
 * Asks for the configured receive buffer on the UDP socket bound to local `port`. Returns the size
 * the kernel reports afterwards (Linux reports twice what was set, for its bookkeeping), or undefined
 * when nothing was done.
 */
export function enlargeReceiveBuffer(port: number): number | undefined {
  if (wanted <= 0) return undefined;
  const c = loadLibc();
  if (!c) return undefined;
  let fd: number | undefined;
  try {
    fd = descriptorOfPort(port);
  } catch {
    return undefined; // no /proc, or no read permission for it
  }
  if (fd === undefined) return undefined;
  const value = new Uint8Array(new Int32Array([wanted]).buffer);
  // SO_RCVBUFFORCE passes net.core.rmem_max when the process may (CAP_NET_ADMIN); else the capped one.
  if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, value, 4) !== 0) {
    c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, value, 4);
  }
  const got = new Int32Array(1);
  const len = new Uint32Array([4]);
  if (c.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, new Uint8Array(got.buffer), new Uint8Array(len.buffer)) !== 0) {
    return undefined;
  }
  return got[0];
}

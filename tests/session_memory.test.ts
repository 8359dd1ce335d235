/**
 * Idle session memory (issue 13): 150 client/server pairs in one child process (both ends' DTLS,
 * transport and control channel), measured after a full GC. Before the fixes a pair held ~145 kB
 * (a 16 KB packet buffer per connection on each end, a 64 KB receive buffer per client session and
 * the finished server handshake kept alive); now ~62 kB.
 */
import { assert } from "./support/assert.ts";

Deno.test("an idle client/server session pair holds at most 80 kB of heap and buffers", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      new URL("./support/session_memory.ts", import.meta.url).pathname,
      "150",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert(out.code === 0, `session_memory.ts failed: ${new TextDecoder().decode(out.stderr)}`);
  const r = JSON.parse(text.split("\n").pop()!);
  assert(r.server_sessions >= 150, `only ${r.server_sessions} sessions reached the server`);
  const total = r.heap_kb_per_pair + r.external_kb_per_pair;
  assert(r.external_kb_per_pair <= 24, `buffers per pair ${r.external_kb_per_pair} kB > 24 kB: ${text}`);
  assert(total <= 80, `heap + buffers per pair ${total.toFixed(1)} kB > 80 kB: ${text}`);
});

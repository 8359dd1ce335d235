import { assert, assertEquals, assertThrows } from "./support/assert.ts";
import { cpuMeter, parseProcStat, processTree } from "../scripts/bench/cpu.ts";
import { sleep } from "./support/wait.ts";

Deno.test("parseProcStat reads ppid, utime and stime after a command name with spaces and parentheses", () => {
  const line = "4242 (we (ird) name) S 17 4242 4242 0 -1 4194560 120 0 0 0 731 295 0 0 20 0 3 0 99 0 0";
  const s = parseProcStat(line);
  assertEquals(s, { pid: 4242, comm: "we (ird) name", state: "S", ppid: 17, utime: 731, stime: 295 });
});

Deno.test("parseProcStat names the problem when the line is not a stat line", () => {
  assertThrows(
    () => parseProcStat("no parentheses here"),
    (e) => /not a \/proc\/PID\/stat line/.test(String(e)),
  );
  assertThrows(() => parseProcStat("1 (x) S 0 1"), (e) => /field 14 missing/.test(String(e)));
});

Deno.test("processTree finds a grandchild; cpuMeter charges a busy one's CPU to its group, not an idle one's", async () => {
  // sh → (sh → busy loop) and a sleeping sibling; both children are started here and stopped below.
  const busy = new Deno.Command("sh", {
    args: ["-c", "sh -c 'i=0; while [ $i -lt 100000000 ]; do i=$((i+1)); done' & wait"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const idle = new Deno.Command("sleep", { args: ["30"], stdout: "null", stderr: "null" }).spawn();
  try {
    let tree: number[] = [];
    for (let i = 0; i < 50 && tree.length < 2; i++) {
      tree = processTree(busy.pid);
      await sleep(20);
    }
    assertEquals(tree[0], busy.pid);
    assert(tree.length === 2, `expected the shell and its child, got ${tree}`);
    const meter = await cpuMeter({ busy: tree, idle: [idle.pid] });
    // Poll rather than sleep a fixed time: on a busy machine the loop gets only a share of a core.
    let use = meter(1000);
    const deadline = performance.now() + 15_000;
    while (use.busy.cpuSeconds < 0.1 && performance.now() < deadline) {
      await sleep(100);
      use = meter(1000);
    }
    assert(use.busy.cpuSeconds >= 0.1, `busy group used ${use.busy.cpuSeconds} s in 15 s`);
    assert(use.idle.cpuSeconds <= 0.02, `idle group used ${use.idle.cpuSeconds} s`);
    assertEquals(use.busy.usPerRequest, use.busy.cpuSeconds * 1000);
    assertEquals(use.idle.processes, { [String(idle.pid)]: "sleep" });
  } finally {
    for (const pid of processTree(busy.pid).reverse()) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* ended */ }
    }
    idle.kill("SIGKILL");
    await busy.status;
    await idle.status;
  }
});

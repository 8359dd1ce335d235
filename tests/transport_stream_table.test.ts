/** The stream table against a Map as its model, under random opening and closing orders. */
import type { Stream } from "../lib/transport/stream.ts";
import { StreamTable } from "../lib/transport/stream_table.ts";
import { assert, assertEquals, assertThrows } from "./support/assert.ts";
import { seededRandom } from "../lib/testing/seeded_random.ts";

/** Stand-ins: the table only stores and returns them. */
function fakeStream(id: number): Stream {
  return { id } as unknown as Stream;
}

function sameContents(table: StreamTable, model: Map<number, Stream>, probeUpTo: number): void {
  assertEquals(table.size, model.size);
  assertEquals(
    [...table.values()].map((s) => s.id).sort((a, b) => a - b),
    [...model.keys()].sort((a, b) => a - b),
  );
  // Bidirectional ids only: the stream map refuses unidirectional ones (id & 2) before asking the table.
  for (let id = 0; id <= probeUpTo; id++) {
    if ((id & 2) === 0) assertEquals(table.get(id), model.get(id), `get(${id})`);
  }
}

for (const seed of [1, 2, 3, 4, 5]) {
  Deno.test(`stream table: matches a Map through 20 000 random opens and closes (seed ${seed})`, () => {
    const random = seededRandom(seed);
    const table = new StreamTable();
    const model = new Map<number, Stream>();
    const next = [0, 0];
    // A few streams live for the whole run (a control stream, a WebSocket) while thousands come and go.
    const keep = new Set<number>();
    for (let step = 0; step < 20_000; step++) {
      const bit = random() < 0.7 ? 1 : 0;
      if (random() < 0.52 || model.size === 0) {
        // Now and then an id is skipped, as a peer may open stream 8 before 4 arrives.
        next[bit] += random() < 0.05 ? 2 : 1;
        const id = (next[bit] - 1) * 4 + bit;
        const s = fakeStream(id);
        table.set(id, s);
        model.set(id, s);
        if (random() < 0.002) keep.add(id);
      } else {
        const ids = [...model.keys()].filter((id) => !keep.has(id));
        if (ids.length === 0) continue;
        // Mostly the oldest first (requests end in about the order they began), sometimes any.
        const id = random() < 0.7 ? Math.min(...ids) : ids[Math.floor(random() * ids.length)];
        assert(table.delete(id), `delete(${id})`);
        model.delete(id);
        assert(!table.delete(id), `a second delete(${id}) finds nothing`);
      }
      if (step % 1000 === 0) sameContents(table, model, Math.max(...next) * 4 + 4);
    }
    sameContents(table, model, Math.max(...next) * 4 + 4);
    for (const id of keep) assert(table.get(id) !== undefined, `long-lived stream ${id} still found`);
  });
}

Deno.test("stream table: a thousand streams open at once all stay reachable; ids never go backwards", () => {
  const table = new StreamTable();
  for (let i = 0; i < 1000; i++) table.set(i * 4 + 1, fakeStream(i * 4 + 1));
  assertEquals(table.size, 1000);
  for (let i = 0; i < 1000; i++) assertEquals(table.get(i * 4 + 1)?.id, i * 4 + 1);
  assertEquals(table.get(1000 * 4 + 1), undefined);
  assertThrows(
    () => table.set(5, fakeStream(5)),
    (e) => e instanceof Error && /out of order/.test(e.message),
  );
  for (let i = 999; i >= 0; i--) assert(table.delete(i * 4 + 1));
  assertEquals(table.size, 0);
  assertEquals([...table.values()], []);
});

/**
 * What grew between two V8 heap snapshots (Chrome DevTools format, e.g. from scale.ts --snapshots):
 * objects grouped by constructor (or type for strings, arrays, code...), counted and summed by self
 * size, biggest growth first; with `per`, also divided by that many (sessions).
 *   deno run -A scripts/bench/heap_diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot [per] [top]
 */

interface Group {
  count: number;
  bytes: number;
}

/** Self size and count per group of one snapshot. */
export function groups(snapshot: {
  snapshot: { meta: { node_fields: string[]; node_types: (string[] | string)[] } };
  nodes: number[];
  strings: string[];
}): Map<string, Group> {
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0] as string[];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const out = new Map<string, Group>();
  const { nodes, strings } = snapshot;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    const name = strings[nodes[i + nameAt]];
    // Objects by constructor; closures by function name; the rest (strings, code, arrays) by type.
    const key = type === "object" || type === "closure" || type === "native"
      ? `${type}:${name.slice(0, 60)}`
      : type === "array" || type === "hidden"
      ? `${type}:${name.slice(0, 40)}`
      : type;
    const g = out.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += nodes[i + sizeAt];
    out.set(key, g);
  }
  return out;
}

if (import.meta.main) {
  const [beforePath, afterPath, perText, topText] = Deno.args;
  const per = Number(perText ?? 1);
  const top = Number(topText ?? 40);
  const before = groups(JSON.parse(await Deno.readTextFile(beforePath)));
  const after = groups(JSON.parse(await Deno.readTextFile(afterPath)));
  const rows = [...after].map(([k, a]) => {
    const b = before.get(k) ?? { count: 0, bytes: 0 };
    return { k, count: a.count - b.count, bytes: a.bytes - b.bytes };
  }).sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  console.log(
    `growth: ${(total / 1024).toFixed(0)} kB in all, ${(total / per).toFixed(0)} B per unit (${per})`,
  );
  for (const r of rows.slice(0, top)) {
    console.log(
      `${(r.bytes / per).toFixed(0).padStart(7)} B ${
        (r.count / per).toFixed(2).padStart(7)
      } objs/unit  ${r.k}`,
    );
  }
}

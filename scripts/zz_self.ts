const p = JSON.parse(Deno.readTextFileSync(Deno.args[0]));
const re = new RegExp(Deno.args[1] ?? ".");
const byId = new Map<number, any>(); for (const n of p.nodes) byId.set(n.id, n);
const self = new Map<string, number>(); let busy = 0;
for (const s of p.samples) { const n = byId.get(s); if (n.callFrame.functionName === "(idle)") continue; busy++;
  const f = n.callFrame; if (!re.test(f.url)) continue; const k = `${f.functionName || "(anon)"} ${f.url.split("/").slice(-2).join("/")}:${f.lineNumber + 1}`; self.set(k, (self.get(k) ?? 0) + 1); }
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(Deno.args[2] ?? 25))) console.log(`${(v / busy * 100).toFixed(1)}%\t${k}`);

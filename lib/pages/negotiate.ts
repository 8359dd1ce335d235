/** Content negotiation for error pages: JSON or HTML by the request's Accept header. */

interface Range {
  type: string;
  q: number;
}

function parseAccept(accept: string): Range[] {
  const out: Range[] = [];
  for (const part of accept.split(",")) {
    const [type, ...params] = part.trim().toLowerCase().split(";");
    if (!type) continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.trim().split("=");
      if (k === "q") {
        const n = Number(v);
        q = Number.isFinite(n) ? Math.min(Math.max(n, 0), 1) : 0;
      }
    }
    out.push({ type: type.trim(), q });
  }
  return out;
}

/** The q an Accept list gives a media type and how specifically it was named (2 exact, 1 major wildcard, 0 full wildcard). */
function qualityOf(ranges: Range[], type: string): { specificity: number; q: number } {
  const [major] = type.split("/");
  let best: { specificity: number; q: number } | undefined;
  for (const r of ranges) {
    const specificity = r.type === type ? 2 : r.type === `${major}/*` ? 1 : r.type === "*/*" ? 0 : -1;
    if (specificity >= 0 && (best === undefined || specificity > best.specificity)) {
      best = { specificity, q: r.q };
    }
  }
  return best ?? { specificity: -1, q: 0 };
}

/**
 * True when the Accept header prefers application/json over text/html: higher q wins, then the
 * more specific range (so axios' default Accept, JSON then wildcards, gets JSON); HTML wins
 * exact ties and a missing header.
 */
export function prefersJson(accept: string | null): boolean {
  if (!accept) return false;
  const ranges = parseAccept(accept);
  const json = qualityOf(ranges, "application/json");
  const html = qualityOf(ranges, "text/html");
  if (json.q === 0) return false;
  return json.q > html.q || (json.q === html.q && json.specificity > html.specificity);
}

/** Path-prefix routing shared by both ends: the longest announced prefix that covers a path wins. */

/** The path part of a request-target (what routing and logs look at). */
export function pathOf(target: string): string {
  const q = target.indexOf("?");
  return q === -1 ? target : target.slice(0, q);
}

/** True when `prefix` covers `path` at a segment boundary ("/api" covers "/api", "/api/x", "/api?q", not "/apix"). */
export function prefixCovers(prefix: string, path: string): boolean {
  if (prefix === "/" || prefix === "") return true;
  const p = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  if (!path.startsWith(p)) return false;
  const next = path.charAt(p.length);
  return next === "" || next === "/" || next === "?";
}

/** The longest prefix among `items` covering `path`, or undefined. */
export function longestPrefix<T>(
  items: Iterable<T>,
  path: string,
  prefixOf: (item: T) => string,
): T | undefined {
  let best: T | undefined;
  let bestLen = -1;
  for (const item of items) {
    const prefix = prefixOf(item);
    if (prefix.length > bestLen && prefixCovers(prefix, path)) {
      best = item;
      bestLen = prefix.length;
    }
  }
  return best;
}

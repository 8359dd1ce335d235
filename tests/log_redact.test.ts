/** The logger writes secrets as "[redacted]": at the top level, one level down, and in child bindings. */
import { assertEquals } from "./support/assert.ts";
import { createLogger, redactSecrets, SECRET_FIELDS } from "../lib/log/logger.ts";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "debug", write: (l) => lines.push(JSON.parse(l)) });
  return { logger, lines };
}

Deno.test("log: secret fields are censored at the top level and one level down; the caller's object is untouched", () => {
  const { logger, lines } = capture();
  const fields = {
    domain: "app.test",
    client_api_key: "k".repeat(64),
    request: { authorization: "Bearer abc", path: "/x" },
    list: [{ password: "in an array: not a field of an object" }],
    deep: { one: { key: "two levels down" } },
  };
  logger.info(fields, "hello");
  const line = lines[0];
  assertEquals(line.msg, "hello");
  assertEquals(line.domain, "app.test");
  assertEquals(line.client_api_key, "[redacted]");
  assertEquals(line.request, { authorization: "[redacted]", path: "/x" });
  // pino's paths `key` and `*.key` covered exactly this much; deeper fields are the caller's to avoid.
  assertEquals(line.list, [{ password: "in an array: not a field of an object" }]);
  assertEquals(line.deep, { one: { key: "two levels down" } });
  assertEquals(fields.client_api_key, "k".repeat(64));
  assertEquals(fields.request.authorization, "Bearer abc");
});

Deno.test("log: every secret field name is censored, in child bindings too", () => {
  const { logger, lines } = capture();
  for (const name of SECRET_FIELDS) {
    logger.warn({ [name]: "secret", nested: { [name]: "s" } }, name);
    logger.child({ component: "t", [name]: "secret" }).warn(name);
  }
  assertEquals(lines.length, 2 * SECRET_FIELDS.length);
  for (let i = 0; i < lines.length; i += 2) {
    const [own, bound] = [lines[i], lines[i + 1]];
    const name = String(own.msg);
    assertEquals([own[name], own.nested], ["[redacted]", { [name]: "[redacted]" }]);
    assertEquals([bound[name], bound.component], ["[redacted]", "t"]);
  }
  const plain = { a: 1, b: { c: 2 } };
  assertEquals(redactSecrets(plain) === plain, true);
});

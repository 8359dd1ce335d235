/** Turns raw option strings into a typed config through zod, collecting every problem at once. */
import type { z } from "zod";
import {
  collectRaw,
  ConfigError,
  type ConfigProblem,
  type OptionSpec,
  shown,
  type Sources,
} from "./options.ts";

export type Schemas = Record<string, z.ZodType>;

export interface Built<T> {
  config: T;
  help: boolean;
  version: boolean;
}

/** Validates every option; throws ConfigError listing one problem per variable. */
export function buildConfig<T>(specs: OptionSpec[], schemas: Schemas, sources: Sources): Built<T> {
  const { raw, origin, parsed } = collectRaw(specs, sources);
  const out: Record<string, unknown> = {};
  const problems: ConfigProblem[] = [];
  if (parsed.help || parsed.version) return { config: {} as T, help: parsed.help, version: parsed.version };
  for (const spec of specs) {
    const value = raw[spec.key];
    const variable = origin[spec.key];
    if (value === undefined) {
      if (spec.default === undefined && !isOptional(schemas[spec.key])) {
        problems.push({ variable, message: `is required; set it like ${spec.env}=${spec.example}` });
      }
      continue;
    }
    const r = schemas[spec.key].safeParse(value);
    if (r.success) out[spec.key] = r.data;
    else {
      const msg = r.error.issues[0]?.message ?? "is invalid";
      problems.push({ variable, message: `${msg} (got ${shown(spec, value)}; e.g. ${spec.example})` });
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return { config: out as T, help: false, version: false };
}

function isOptional(schema: z.ZodType | undefined): boolean {
  return schema?.safeParse(undefined).success ?? false;
}

/** The entrypoints' reaction to bad configuration: one line per problem on stderr, exit code 2. */
export function exitOnConfigError(e: unknown, program: string): never {
  if (e instanceof ConfigError) {
    for (const p of e.problems) console.error(`${program}: ${p.variable} ${p.message}`);
    console.error(`${program}: see ${program} --help for every option`);
    Deno.exit(2);
  }
  throw e;
}

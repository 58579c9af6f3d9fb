/**
 * Validates a JSON document against its schema in schemas/<docName>.schema.json (draft 2020-12)
 * with ajv (npm, test-only, installed by scripts/setup_schema.sh into
 * /opt/ctre-test-tools/schema-node, or $CTRE_TEST_CACHE/schema-node), formats included:
 *
 *   await validate("prune", JSON.parse(stdout));   // throws, listing every error
 *
 * @module
 */
import { createRequire } from "node:module";
import { join } from "node:path";

const SCHEMAS = new URL("../../schemas/", import.meta.url);
const NODE_DIR = join(Deno.env.get("CTRE_TEST_CACHE") ?? "/opt/ctre-test-tools", "schema-node");

/** Why the validator cannot run here (for `ignore`), or null. */
export function validatorMissing(): string | null {
  try {
    Deno.statSync(join(NODE_DIR, "node_modules/ajv/dist/2020.js"));
    return null;
  } catch {
    return `ajv is not in ${NODE_DIR} (scripts/setup_schema.sh installs it)`;
  }
}

interface Compiled {
  (value: unknown): boolean;
  errors?: { instancePath: string; message?: string; params: unknown }[] | null;
}

const compiled = new Map<string, Compiled>();
let ajv: { compile(schema: unknown): Compiled } | undefined;

function validator(docName: string): Compiled {
  let v = compiled.get(docName);
  if (v !== undefined) return v;
  if (ajv === undefined) {
    const require = createRequire(join(NODE_DIR, "/"));
    const Ajv2020 = require("ajv/dist/2020").default;
    const formats = require("ajv-formats");
    ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
    (formats.default ?? formats)(ajv);
  }
  const schema = JSON.parse(Deno.readTextFileSync(new URL(`${docName}.schema.json`, SCHEMAS)));
  v = ajv!.compile(schema);
  compiled.set(docName, v);
  return v;
}

/** Throws, naming each violation, unless `value` is valid against schemas/<docName>.schema.json. */
export function validate(docName: string, value: unknown): void {
  const v = validator(docName);
  if (v(value)) return;
  const errors = (v.errors ?? []).map((e) =>
    `${e.instancePath || "/"} ${e.message ?? ""} ${JSON.stringify(e.params)}`
  );
  throw new Error(`Not a valid ${docName} document:\n  ${errors.join("\n  ")}`);
}

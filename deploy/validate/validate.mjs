// Checks Kubernetes manifests offline against the Kubernetes schema, with
// the models of the npm package kubernetes-models (each has a validate()).
//
//   node validate.mjs FILE...                    every document must be valid
//   node validate.mjs --syntax-only FILE...      YAML only (duplicate keys...)
//   node validate.mjs --expect-invalid FILE...   every file must be rejected,
//       for the reasons its "# expect-error: TEXT" lines name
//
// FILE may be "-" for standard input. A document is rejected for a YAML
// error (duplicate keys included), a missing apiVersion, kind or
// metadata.name, a kind kubernetes-models does not know, or a schema error
// (wrong type, missing required field, bad format). Unknown fields are NOT
// rejected: the models' schemas allow them.
//
// Exit status: 0 all as expected, 1 a check failed, 2 usage or setup error.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const USAGE =
  "usage: node validate.mjs [--syntax-only | --expect-invalid] FILE...";

// kubernetes-models lays its models out by API group and version:
// "apps/v1" -> kubernetes-models/apps/v1, "v1" -> kubernetes-models/v1.
async function modelFor(apiVersion, kind) {
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion)) {
    return { error: `apiVersion "${apiVersion}" is malformed` };
  }
  let models;
  try {
    models = await import(`kubernetes-models/${apiVersion}`);
  } catch {
    return { error: `apiVersion "${apiVersion}" is not a known API version` };
  }
  const model = models[kind];
  // Top-level resources carry their apiVersion and kind; nested types
  // (Probe, Container, ...) do not.
  if (typeof model !== "function" || model.kind !== kind) {
    return { error: `kind "${kind}" is not a resource of ${apiVersion}` };
  }
  return { model };
}

function formatSchemaError(error) {
  if (Array.isArray(error.errors) && error.errors.length > 0) {
    return error.errors.map((e) => {
      const where = e.instancePath || "/";
      const extra =
        e.keyword === "additionalProperties"
          ? ` (${e.params.additionalProperty})`
          : "";
      return `${where}: ${e.message}${extra}`;
    });
  }
  return [String(error.message ?? error)];
}

// Returns the problems of one YAML stream, one string each.
async function check(text, syntaxOnly) {
  const problems = [];
  const kinds = [];
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  let index = 0;
  for (const doc of docs) {
    const at = `document ${index++}`;
    for (const e of [...doc.errors, ...doc.warnings]) {
      problems.push(`${at}: YAML: ${e.message.split("\n")[0]}`);
    }
    if (doc.errors.length > 0 || syntaxOnly) continue;
    const object = doc.toJS({ maxAliasCount: 100 });
    if (object === null || object === undefined) continue;  // "---" alone
    if (typeof object !== "object" || Array.isArray(object)) {
      problems.push(`${at}: not a mapping`);
      continue;
    }
    const { apiVersion, kind } = object;
    const name = object.metadata?.name;
    const label = `${at} (${kind ?? "?"} ${name ?? "?"})`;
    if (typeof apiVersion !== "string" || typeof kind !== "string") {
      problems.push(`${label}: apiVersion and kind are required`);
      continue;
    }
    if (typeof name !== "string" || name === "") {
      problems.push(`${label}: metadata.name is required`);
    }
    const { model, error } = await modelFor(apiVersion, kind);
    if (error) {
      problems.push(`${label}: ${error}`);
      continue;
    }
    try {
      new model(object).validate();
      kinds.push(kind);
    } catch (e) {
      for (const line of formatSchemaError(e)) {
        problems.push(`${label}: ${line}`);
      }
    }
  }
  return { problems, kinds };
}

function read(file) {
  return readFileSync(file === "-" ? 0 : file, "utf8");
}

async function main(argv) {
  let mode = "validate";
  const files = [];
  for (const arg of argv) {
    if (arg === "--syntax-only") mode = "syntax";
    else if (arg === "--expect-invalid") mode = "invalid";
    else if (arg === "-h" || arg === "--help") {
      console.log(USAGE);
      return 0;
    } else if (arg.startsWith("--")) {
      console.error(`validate.mjs: unknown flag ${arg}\n${USAGE}`);
      return 2;
    } else files.push(arg);
  }
  if (files.length === 0) {
    console.error(USAGE);
    return 2;
  }
  let failed = false;
  for (const file of files) {
    let text;
    try {
      text = read(file);
    } catch (e) {
      console.error(`validate.mjs: ${file}: ${e.message}`);
      return 2;
    }
    const { problems, kinds } = await check(text, mode === "syntax");
    if (mode === "invalid") {
      const expected = [...text.matchAll(/^# expect-error: (.+)$/gm)].map(
        (m) => m[1].trim());
      const all = problems.join("\n");
      const missing = expected.filter((e) => !all.includes(e));
      if (problems.length === 0) {
        console.log(`FAIL ${file}: accepted, but it is broken on purpose`);
        failed = true;
      } else if (expected.length === 0) {
        console.log(`FAIL ${file}: has no "# expect-error:" line`);
        failed = true;
      } else if (missing.length > 0) {
        console.log(`FAIL ${file}: rejected, but not for: ` +
          missing.map((m) => `"${m}"`).join(", "));
        for (const p of problems) console.log(`       ${p}`);
        failed = true;
      } else {
        console.log(`ok   ${file}: rejected as expected`);
        for (const p of problems) console.log(`       ${p}`);
      }
      continue;
    }
    if (problems.length > 0) {
      console.log(`FAIL ${file}:`);
      for (const p of problems) console.log(`       ${p}`);
      failed = true;
    } else if (mode === "syntax") {
      console.log(`ok   ${file}: YAML`);
    } else {
      console.log(`ok   ${file}: ${kinds.length} documents (${kinds.join(", ")})`);
    }
  }
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(`validate.mjs: ${e.stack ?? e}`);
    process.exit(2);
  });

// Parse an AsyncAPI document with the AsyncAPI project's own parser (@asyncapi/parser,
// pinned in package-lock.json); exit 1 on any diagnostic of severity error, and print
// every diagnostic. The `asyncapi` gate of scripts/test runs it on what
// `manage.py asyncapi` writes (the document served at /v2/asyncapi.json).
//
//   node tools/asyncapi/validate.mjs FILE
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const file = process.argv[2];
if (!file) {
  console.error("usage: node tools/asyncapi/validate.mjs FILE");
  process.exit(2);
}
const names = { 0: "error", 1: "warning", 2: "information", 3: "hint" };
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(file, "utf8"));
for (const d of diagnostics) {
  const where = (d.path || []).join(".") || "(document)";
  console.log(`${names[d.severity] ?? d.severity}\t${d.code}\t${where}\t${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error).length;
const warnings = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning).length;
if (!document || errors > 0) {
  console.log(`${file}: ${errors} errors, ${warnings} warnings: not a valid AsyncAPI document`);
  process.exit(1);
}
const channels = document.channels().length;
const messages = document.components().messages().length;
console.log(
  `${file}: AsyncAPI ${document.version()}, ${channels} channels, ${messages} messages, ` +
    `${errors} errors, ${warnings} warnings`,
);

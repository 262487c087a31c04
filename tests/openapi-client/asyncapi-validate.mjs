// CI: validates an AsyncAPI document with the AsyncAPI initiative's own
// parser (@asyncapi/parser: the spec's JSON Schemas plus its semantic
// rules, such as "an operation's messages belong to its channel").
// Fails on any error or warning; informational notes (such as "a newer
// AsyncAPI version exists") are printed only.
//
//   node asyncapi-validate.mjs ASYNCAPI_JSON
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node asyncapi-validate.mjs ASYNCAPI_JSON');
  process.exit(2);
}
const { document, diagnostics } = await new Parser().parse(readFileSync(file, 'utf8'));
const names = ['error', 'warning', 'info', 'hint'];
let failed = !document;
for (const d of diagnostics) {
  console.log(`${names[d.severity] ?? d.severity}: ${d.code}: ${d.message} at ${JSON.stringify(d.path)}`);
  if (d.severity <= 1) failed = true;
}
if (failed) {
  console.error(`${file}: not a valid AsyncAPI document`);
  process.exit(1);
}
console.log(`${file}: valid AsyncAPI ${document.version()}`);

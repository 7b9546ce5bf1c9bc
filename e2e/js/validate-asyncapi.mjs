// Parses an AsyncAPI document (a file, JSON or YAML) with @asyncapi/parser
// and prints its diagnostics: {"errors":[…],"warnings":[…],"channels":N,…}.
// Exits 1 when there is an error (severity 0) or no document came out.
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const parser = new Parser();
const text = await readFile(process.argv[2], "utf8");
const { document, diagnostics } = await parser.parse(text);
const show = (d) => ({ code: d.code, message: d.message, path: d.path.join("/") });
const out = {
  errors: diagnostics.filter((d) => d.severity === 0).map(show),
  warnings: diagnostics.filter((d) => d.severity === 1).map(show),
  parsed: Boolean(document),
};
if (document) {
  out.version = document.version();
  out.channels = document.channels().length;
  out.operations = document.operations().length;
  out.messages = document.allMessages().length;
  out.servers = document.servers().length;
}
console.log(JSON.stringify(out));
process.exit(out.errors.length === 0 && document ? 0 : 1);

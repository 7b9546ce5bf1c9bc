// Validates an OpenAPI document (a file, JSON or YAML) with
// @seriousme/openapi-schema-validator, then resolves every $ref in it.
// Prints {"valid":…,"version":…,"errors":[…]} and exits 1 unless valid.
import { Validator } from "@seriousme/openapi-schema-validator";

const validator = new Validator();
const res = await validator.validate(process.argv[2]);
const out = { valid: res.valid, version: validator.version, errors: res.errors || [] };
if (res.valid) {
  try {
    validator.resolveRefs();
  } catch (err) {
    out.valid = false;
    out.errors.push({ message: "resolving $refs: " + err.message });
  }
}
console.log(JSON.stringify(out));
process.exit(out.valid ? 0 : 1);

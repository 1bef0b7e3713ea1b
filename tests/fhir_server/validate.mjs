// The tests' second FHIR R4 validator, beside fhir.resources: one JSON document (a
// resource, or a Bundle whose entries' resources are validated with it) per line on
// stdin, one JSON line per document on stdout, in order:
//   {"ok": true, "warnings": [...]}   or   {"ok": false, "issues": [...], "warnings": [...]}
// Each issue: {severity, code, details, diagnostics?, expression}. The process stays up
// for as many documents as come (blank lines are skipped); it ends when stdin closes.
import { createInterface } from 'node:readline';
import { checkResource, isError } from './r4.mjs';

function issue(raw) {
  const out = {
    severity: raw.severity,
    code: raw.code,
    details: raw.details?.text ?? raw.diagnostics ?? '',
    expression: raw.expression ?? [],
  };
  if (raw.diagnostics) {
    out.diagnostics = raw.diagnostics;
  }
  return out;
}

function answer(line) {
  let doc;
  try {
    doc = JSON.parse(line);
  } catch (err) {
    return { ok: false, issues: [issue({ severity: 'fatal', code: 'structure', details: { text: `not JSON: ${err.message}` } })] };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    return { ok: false, issues: [issue({ severity: 'fatal', code: 'structure', details: { text: 'not a JSON object' } })] };
  }
  let found;
  try {
    found = checkResource(doc).map(issue);
  } catch (err) {
    found = [issue({ severity: 'fatal', code: 'exception', details: { text: String(err?.message ?? err) } })];
  }
  const issues = found.filter(isError);
  const warnings = found.filter((each) => !isError(each));
  return issues.length ? { ok: false, issues, warnings } : { ok: true, warnings };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim()) {
    process.stdout.write(JSON.stringify(answer(line)) + '\n');
  }
}

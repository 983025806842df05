// validate.mjs - checks the answers a test program received against openapi.yaml.
//
//   node validate.mjs OPENAPI_YAML RESPONSES_JSONL
//
// RESPONSES_JSONL has one JSON object per answer, written by tests/lib/harness.c: method, url (as
// sent), admin (sent to the admin socket), status, headers (the raw header block) and body
// (base64). Each answer is matched to its path, method and status in the document; its body must
// have the documented media type and validate against the documented schema (ajv, JSON Schema
// 2020-12 as OpenAPI 3.1 uses it), an answer documented without content must have no body, and
// the headers the document describes (ETag, Location, Link, Retry-After, WWW-Authenticate) must be
// documented where they appear and match their schemas. Exit status 0 when every answer matches,
// 1 with one line per mismatch otherwise.
//
// Answers that this document does not describe are skipped by name, never silently: the admin
// socket's routes (secretsctl's, described in the README) and the Vault KV v2 compatibility routes
// under /v1/ (they follow Vault's own API). Rules the document states for every path are applied
// here: HEAD is GET without a body; a path that names no route is 404 and one whose segment breaks
// the path rules 400; a method a path does not serve is 405; 413 and 431 can answer anything.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const DOC_ID = 'openapi.yaml';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
// Headers whose presence must be documented for the answer that carries them.
const DESCRIBED_HEADERS = ['etag', 'location', 'link', 'retry-after', 'www-authenticate'];
// What any path may answer, as the document's description says, in the error form.
const ANY_PATH_STATUSES = new Set([413, 431]);

// Answers outside this document, skipped by rule: [reason, test(record, path)].
const SKIPPED = [
  ['admin socket (secretsctl\'s routes, not the public API)', (r) => r.admin],
  ['Vault KV v2 compatibility routes (they follow Vault\'s API)', (r, path) => path.startsWith('/v1/')],
];

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// The document's path templates as matchers, the most literal first (as OpenAPI asks).
function routesOf(doc) {
  const routes = Object.keys(doc.paths || {}).map((template) => {
    const parts = template.split(/(\{[^}]+\})/);
    const re = parts.map((p) => (p.startsWith('{') ? '([^/]+)' : escapeRegExp(p))).join('');
    const literal = parts.filter((p) => !p.startsWith('{')).join('').length;
    return { template, re: new RegExp(`^${re}$`), literal, item: doc.paths[template] };
  });
  routes.sort((a, b) => b.literal - a.literal);
  return routes;
}

function deref(doc, obj) {
  let o = obj;
  for (let i = 0; o && o.$ref && i < 16; i++) {
    if (!o.$ref.startsWith('#/')) throw new Error(`external $ref ${o.$ref} is not supported`);
    o = o.$ref.slice(2).split('/').reduce((acc, k) => acc?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
  }
  return o;
}

// The last header block of a raw answer (after any interim one) as a map of lower-case names.
function parseHeaders(raw) {
  const blocks = raw.split(/\r\n\r\n/).filter((b) => b.trim());
  const last = blocks.length ? blocks[blocks.length - 1] : '';
  const headers = {};
  for (const line of last.split(/\r\n/).slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return headers;
}

export function makeValidator(doc) {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema(doc, DOC_ID);
  const compiled = new Map();
  const schemaAt = (pointer) => {
    if (!compiled.has(pointer)) compiled.set(pointer, ajv.compile({ $ref: `${DOC_ID}#${pointer}` }));
    return compiled.get(pointer);
  };
  const routes = routesOf(doc);
  const errorPointer = '/components/schemas/Error';

  const pointerEscape = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');

  // Validate body text against the schema at pointer, as media type mediaType.
  function checkBody(pointer, mediaType, text, where, problems) {
    let value = text;
    if (mediaType === 'application/json') {
      try {
        value = JSON.parse(text);
      } catch (e) {
        problems.push(`${where}: the body is not JSON (${e.message})`);
        return;
      }
    }
    const validate = schemaAt(pointer);
    if (!validate(value)) {
      const errs = validate.errors.map((e) => `${e.instancePath || '/'} ${e.message}${e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ''}`);
      problems.push(`${where}: body does not match ${pointer}: ${errs.join('; ')} - body: ${text.slice(0, 300)}`);
    }
  }

  function checkError(rec, text, ctype, where, problems) {
    if (ctype !== 'application/json') {
      problems.push(`${where}: an error must be application/json, not "${ctype}"`);
      return;
    }
    checkBody(errorPointer, ctype, text, where, problems);
  }

  // One answer: 'ok', a skip reason, or problems pushed.
  return function check(rec, problems) {
    // The path as sent (a URL parser would resolve dot segments and escapes the server refuses).
    const path = rec.url.replace(/^[a-z]+:\/\/[^/]*/i, '').split(/[?#]/)[0];
    for (const [reason, test] of SKIPPED) if (test(rec, path)) return { skipped: reason };
    const body = Buffer.from(rec.body || '', 'base64').toString('utf8');
    const headers = parseHeaders(rec.headers || '');
    const ctype = (headers['content-type'] || '').split(';')[0].trim().toLowerCase();
    const method = rec.method.toUpperCase();
    const isHead = method === 'HEAD';
    const where = `${method} ${path} ${rec.status}`;
    const route = routes.find((r) => r.re.test(path));
    if (!route) {
      if (rec.status === 404 || rec.status === 400 || ANY_PATH_STATUSES.has(rec.status)) {
        if (!isHead) checkError(rec, body, ctype, `${where} (no route)`, problems);
        return {};
      }
      problems.push(`${where}: no path of openapi.yaml matches "${path}"`);
      return {};
    }
    const opName = isHead ? 'get' : method.toLowerCase();
    const op = METHODS.includes(opName) ? route.item[opName] : undefined;
    const label = `${method} ${route.template} ${rec.status}`;
    if (!op) {
      if (rec.status === 405 || ANY_PATH_STATUSES.has(rec.status) || (rec.status === 400 && !METHODS.includes(opName))) {
        if (!isHead) checkError(rec, body, ctype, `${label} (method not served)`, problems);
        if (rec.status === 405 && !headers.allow) problems.push(`${label}: a 405 without an Allow header`);
        return {};
      }
      problems.push(`${label}: openapi.yaml has no ${method} operation on ${route.template}`);
      return {};
    }
    const responses = op.responses || {};
    const key = [String(rec.status), `${String(rec.status)[0]}XX`, 'default'].find((k) => responses[k]);
    if (!key) {
      if (ANY_PATH_STATUSES.has(rec.status)) {
        if (!isHead) checkError(rec, body, ctype, label, problems);
        return {};
      }
      problems.push(`${label}: status ${rec.status} is not documented for ${method} ${route.template} (body: ${body.slice(0, 200)})`);
      return {};
    }
    const resp = deref(doc, responses[key]);
    const respHeaders = Object.fromEntries(Object.entries(resp.headers || {}).map(([k, v]) => [k.toLowerCase(), deref(doc, v)]));
    for (const h of DESCRIBED_HEADERS) {
      if (headers[h] === undefined) continue;
      if (!respHeaders[h]) {
        problems.push(`${label}: the answer carries ${h} but openapi.yaml does not document it for this status`);
        continue;
      }
      const schema = respHeaders[h].schema;
      if (schema) {
        let v = headers[h];
        if (schema.type === 'integer' && /^[0-9]+$/.test(v)) v = Number(v);
        const validate = ajv.compile(schema);
        if (!validate(v)) problems.push(`${label}: header ${h} "${headers[h]}" does not match its schema: ${ajv.errorsText(validate.errors)}`);
      }
    }
    for (const [h, spec] of Object.entries(respHeaders)) {
      if (spec.required && headers[h] === undefined) problems.push(`${label}: the required header ${h} is missing`);
    }
    const content = resp.content;
    if (!content) {
      if (body.length) problems.push(`${label}: openapi.yaml documents no body, the answer has ${body.length} bytes`);
      return {};
    }
    if (isHead) return {};
    if (!content[ctype]) {
      problems.push(`${label}: media type "${ctype}" is not documented (${Object.keys(content).join(', ')})`);
      return {};
    }
    // The schema's JSON pointer inside the document, through a components response when referenced.
    const pointer = responses[key].$ref
      ? `${responses[key].$ref.slice(1)}/content/${pointerEscape(ctype)}/schema`
      : `/paths/${pointerEscape(route.template)}/${opName}/responses/${key}/content/${pointerEscape(ctype)}/schema`;
    checkBody(pointer, ctype, body, label, problems);
    return {};
  };
}

export function validateLines(doc, lines) {
  const check = makeValidator(doc);
  const problems = [];
  const skipped = new Map();
  let checked = 0;
  for (const line of lines) {
    if (!line.trim()) continue;
    let rec;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      problems.push(`a recorded line is not JSON (${e.message}): ${line.slice(0, 200)}`);
      continue;
    }
    const res = check(rec, problems);
    if (res.skipped) skipped.set(res.skipped, (skipped.get(res.skipped) || 0) + 1);
    else checked++;
  }
  return { problems, checked, skipped };
}

function main() {
  const [docPath, recordsPath] = process.argv.slice(2);
  if (!docPath || !recordsPath) {
    console.error('usage: node validate.mjs OPENAPI_YAML RESPONSES_JSONL');
    process.exit(2);
  }
  const doc = YAML.parse(readFileSync(docPath, 'utf8'));
  const { problems, checked, skipped } = validateLines(doc, readFileSync(recordsPath, 'utf8').split('\n'));
  const skips = [...skipped].map(([why, n]) => `${n} skipped: ${why}`).join('; ');
  if (problems.length) {
    const unique = [...new Set(problems)];
    console.error(`openapi: ${unique.length} kinds of answers do not match openapi.yaml (${recordsPath}):`);
    for (const p of unique.slice(0, 40)) console.error(`  ${p}`);
    if (unique.length > 40) console.error(`  ... and ${unique.length - 40} more`);
    process.exit(1);
  }
  console.error(`openapi: ${checked} answers match openapi.yaml${skips ? `; ${skips}` : ''}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();

// validate.test.mjs - the validator that checks every test's answers against openapi.yaml refuses
// answers that drift from the document (a wrong body, an undocumented status, route, media type or
// header, a body on a 304) and accepts the right ones, so a green suite means the document holds.
//
//   SX_OPENAPI_DOC=openapi.yaml node --test validate.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { validateLines } from './validate.mjs';

const doc = YAML.parse(readFileSync(process.env.SX_OPENAPI_DOC || new URL('../../openapi.yaml', import.meta.url), 'utf8'));
const BASE = 'http://127.0.0.1:8080';
const SECRET = '/acme/web/envs/prod/secrets/DB_URL';

function answer(method, path, status, body, headers = {}, admin = false) {
  const h = { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'X-Request-Id': 'abc', ...headers };
  const block = `HTTP/1.1 ${status} X\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return JSON.stringify({ method, url: BASE + path, admin, status, headers: block, body: Buffer.from(text).toString('base64') });
}

function problems(...lines) {
  return validateLines(doc, lines).problems;
}

const secret = { name: 'DB_URL', description: null, hasValue: true, createdAt: '2026-11-26T15:46:21.123Z', updatedAt: '2026-11-26T15:46:21.123Z' };
const etag = { ETag: '"00000000000000a1"' };

test('answers that match the document pass', () => {
  assert.deepEqual(problems(
    answer('GET', SECRET, 200, secret, etag),
    answer('HEAD', SECRET, 200, '', etag),
    answer('GET', `${SECRET}/value`, 304, '', { ...etag, 'Content-Type': '' }),
    answer('GET', `${SECRET}/value?version=2`, 200, { name: 'DB_URL', value: 'x', version: 2, updatedAt: secret.updatedAt }, { ETag: `"${'ab'.repeat(16)}"` }),
    answer('GET', '/acme/web/envs/prod/values', 200, { DB_URL: 'x' }, { ETag: `"${'ab'.repeat(16)}"` }),
    answer('GET', '/acme/web/envs/prod/secrets', 200, [secret], { Link: '</acme/web/envs/prod/secrets?limit=1&after=DB_URL>; rel="next"' }),
    answer('POST', '/acme/web/envs/prod/secrets', 401, { error: 'a valid bearer token is required', code: 'unauthorized' }, { 'WWW-Authenticate': 'Bearer' }),
    answer('PATCH', SECRET, 405, { error: 'this path does not accept that method', code: 'method_not_allowed' }, { Allow: 'GET, PUT, DELETE' }),
    answer('GET', '/nowhere', 404, { error: 'no such route', code: 'not_found' }),
    answer('GET', '/v1/status', 200, { anything: 1 }, {}, true),
    answer('GET', '/v1/secret/data/x', 200, { data: {} }),
    answer('GET', '/acme/web/envs/prod/deleted-secrets', 200, [{ name: 'A', deletedAt: secret.createdAt, purgeAt: secret.updatedAt, versions: 3 }]),
  ), []);
});

test('a deliberately wrong body is refused', () => {
  const p = problems(answer('GET', SECRET, 200, { ...secret, value: 's3cr3t' }, etag));
  assert.equal(p.length, 1);
  assert.match(p[0], /GET \/\{o\}\/\{p\}\/envs\/\{envName\}\/secrets\/\{name\} 200: body does not match .*additional properties \(value\)/);
  assert.match(problems(answer('GET', SECRET, 200, { ...secret, hasValue: 'yes' }, etag))[0], /hasValue must be boolean/);
  assert.match(problems(answer('GET', SECRET, 200, { ...secret, createdAt: '26/11/2026' }, etag))[0], /createdAt/);
  assert.match(problems(answer('GET', SECRET, 404, { error: 'no secret', code: 'not_found', detail: 1 }))[0], /additional properties/);
  assert.match(problems(answer('GET', SECRET, 404, { code: 'not_found' }))[0], /must have required property 'error'/);
  assert.match(problems(answer('GET', SECRET, 200, 'not json', etag))[0], /not JSON/);
  assert.match(problems(answer('DELETE', SECRET, 200, { deleted: 'true', name: 'DB_URL' }))[0], /deleted must be equal to constant/);
});

test('undocumented statuses, routes, media types and headers are refused', () => {
  assert.match(problems(answer('GET', SECRET, 418, { error: 'x', code: 'teapot' }))[0], /status 418 is not documented/);
  assert.match(problems(answer('GET', '/acme/web/envs/prod/unknown-thing', 200, {}))[0], /no path of openapi.yaml matches/);
  assert.match(problems(answer('POST', SECRET, 200, secret))[0], /no POST operation/);
  assert.match(problems(answer('GET', SECRET, 200, secret, { ...etag, 'Content-Type': 'text/plain' }))[0], /media type "text\/plain" is not documented/);
  assert.match(problems(answer('GET', `${SECRET}/versions`, 200, [], { ETag: '"0000000000000001"' }))[0], /carries etag but openapi.yaml does not document it/);
  assert.match(problems(answer('GET', SECRET, 200, secret, { ETag: 'W/"weak"' }))[0], /header etag/);
  assert.match(problems(answer('GET', `${SECRET}/value`, 304, '{"value":"x"}', etag))[0], /documents no body/);
  assert.match(problems(answer('PUT', SECRET, 405, { error: 'x', code: 'method_not_allowed' }))[0], /status 405 is not documented/);
  assert.match(problems(answer('GET', SECRET, 200, secret))[0], /the required header etag is missing/);
  assert.match(problems(answer('POST', '/acme/web/envs/prod/secrets', 201, secret, etag))[0], /the required header location is missing/);
  assert.match(problems(answer('GET', SECRET, 401, { error: 'x', code: 'unauthorized' }))[0], /the required header www-authenticate is missing/);
});

// h2_oversized.js PORT - Node's own HTTP/2 client against a secretsd whose max_body_bytes is 4096.
// On one session, one after the other:
//   announced    content-length 8 MiB; 16 KiB of the body are written, then the client waits for
//                the answer before it writes the rest
//   unannounced  no content-length; 48 KiB written, then it waits, then 8 MiB more
//   healthz      GET /healthz, sent while the unannounced body is still being written
//   announced2   as announced: together more body bytes than the connection's 16 MiB window,
//                so the session only goes on if the server gives the window back for them
//   after        GET /healthz
// Prints one JSON line per request: {"name", "status", "code" (the JSON error code), "early" (the
// answer came before the body was complete), "error" (a client-side failure, else null)}.
'use strict';
const http2 = require('node:http2');

const port = Number(process.argv[2]);
const session = http2.connect(`http://127.0.0.1:${port}`);
session.on('error', (e) => console.log(JSON.stringify({ name: 'session', error: String(e) })));
const chunk = Buffer.alloc(16384, 'x');

function request(name, method, total, upfront, announce) {
  return new Promise((resolve) => {
    const path = method === 'GET' ? '/healthz' : '/acme/web/envs/dev/secrets';
    const headers = { ':method': method, ':path': path, 'content-type': 'application/json' };
    if (announce) headers['content-length'] = String(total);
    const req = session.request(headers, { endStream: total === 0 });
    let status = 0, body = '', sent = 0, done = false, early = false, answered = false;
    const timer = setTimeout(() => finish('no answer within 20 s'), 20000);
    const finish = (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      let code = null;
      try { code = JSON.parse(body).code; } catch (e) { /* not JSON */ }
      resolve({ name, status, code, early, error: error ? String(error) : null });
    };
    // Write until `limit` bytes are out, then call then().
    const pump = (limit, then) => {
      while (sent < limit && !req.destroyed) {
        const n = Math.min(chunk.length, limit - sent);
        sent += n;
        const more = req.write(n === chunk.length ? chunk : chunk.subarray(0, n));
        if (!more && sent < limit) { req.once('drain', () => pump(limit, then)); return; }
      }
      then();
    };
    req.on('response', (h) => {
      status = h[':status'];
      early = sent < total;
      answered = true;
      // The rest of the body, as a client that does not stop writing would send it.
      if (total) pump(total, () => req.end());
    });
    req.on('data', (d) => { body += d; });
    req.on('end', () => { if (!total) finish(null); });
    req.on('close', () => finish(answered ? null : `closed with code ${req.rstCode}`));
    req.on('finish', () => { if (answered) finish(null); });
    req.on('error', (e) => finish(e));
    if (total) pump(upfront, () => {});
  });
}

(async () => {
  const results = [];
  results.push(await request('announced', 'POST', 8 << 20, 16384, true));
  const unannounced = request('unannounced', 'POST', (8 << 20) + 49152, 49152, false);
  const health = request('healthz', 'GET', 0, 0, false);
  results.push(await unannounced, await health);
  results.push(await request('announced2', 'POST', 8 << 20, 16384, true));
  results.push(await request('after', 'GET', 0, 0, false));
  for (const r of results) console.log(JSON.stringify(r));
  session.close();
})();

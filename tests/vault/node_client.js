/*
 * node_client.js - node-vault (pinned in package.json) against secretsd's Vault KV v2 routes.
 *
 * Usage: VAULT_TOKEN=<owner token of the mount's org> node node_client.js URL MOUNT [CA_FILE]
 *
 * health, token lookup-self, KV v2 write and read of a map and of a secret (with check-and-set),
 * LIST as the LIST method and as ?list=1, a 404 and a 403, delete, undelete, destroy and delete of
 * the metadata. Prints one line per step and
 * "node-vault: ok" at the end; exits 1 at the first unexpected answer. The test values are made up.
 */
'use strict';
const fs = require('fs');
const [url, mount, ca] = process.argv.slice(2);
const token = process.env.VAULT_TOKEN;
const requestOptions = ca ? { ca: fs.readFileSync(ca) } : {};
const make = (opts) => require('node-vault')({ apiVersion: 'v1', endpoint: url, requestOptions, ...opts });
const vault = make({ token });

function check(cond, what) {
    if (!cond) {
        console.log(`FAIL: ${what}`);
        process.exit(1);
    }
    console.log(`ok: ${what}`);
}

async function status(promise) {
    try {
        await promise;
        return 200;
    } catch (e) {
        return e.response ? e.response.statusCode : String(e);
    }
}

(async () => {
    const health = await vault.health();
    check(health.initialized === true && health.sealed === false, 'health');
    const self = await vault.tokenLookupSelf();
    check(self.data.policies[0] === 'owner' && self.data.id !== token && !JSON.stringify(self).includes(token),
          'tokenLookupSelf names the role and never the token');

    await vault.write(`${mount}/data/app/node`, { data: { A: '1', B: 'two words' } });
    let r = await vault.read(`${mount}/data/app/node`);
    check(JSON.stringify(r.data.data) === JSON.stringify({ A: '1', B: 'two words' }), 'write and read a map');
    const w = await vault.write(`${mount}/data/app/node/A`, { data: { value: 'uno' }, options: { cas: 1 } });
    check(w.data.version === 2, 'write a secret with cas');
    r = await vault.read(`${mount}/data/app/node/A`);
    check(r.data.data.value === 'uno' && r.data.metadata.version === 2, 'read a secret');
    check(await status(vault.write(`${mount}/data/app/node/A`, { data: { value: 'x' }, options: { cas: 1 } })) === 400,
          'a stale cas is 400');

    let l = await vault.list(`${mount}/metadata/app/node`);
    check(JSON.stringify(l.data.keys) === JSON.stringify(['A', 'B']), 'list (LIST method)');
    l = await make({ token, noCustomHTTPVerbs: true }).list(`${mount}/metadata/app`);
    check(l.data.keys.includes('node/'), 'list (GET ?list=1)');

    check(await status(vault.read(`${mount}/data/app/node/NOPE`)) === 404, 'an unknown secret is 404');
    const stranger = make({ token: `sxt_${'0'.repeat(32)}_${'A'.repeat(43)}` });
    check(await status(stranger.read(`${mount}/data/app/node`)) === 403, 'an unknown token is 403');

    /* deletes: soft delete, undelete, destroy, metadata */
    await vault.delete(`${mount}/data/app/node/B`);
    check(await status(vault.read(`${mount}/data/app/node/B`)) === 404, 'delete of data/ hides the secret');
    await vault.write(`${mount}/undelete/app/node/B`, { versions: [1] });
    r = await vault.read(`${mount}/data/app/node/B`);
    check(r.data.data.value === 'two words', 'undelete brings it back');
    await vault.write(`${mount}/destroy/app/node/A`, { versions: [1] });
    check(await status(vault.read(`${mount}/data/app/node/A?version=1`)) === 404, 'destroy of a previous version');
    check(await status(vault.write(`${mount}/destroy/app/node/A`, { versions: [2] })) === 400,
          'destroy of the current version is 400');
    await vault.delete(`${mount}/metadata/app/node/A`);
    l = await vault.list(`${mount}/metadata/app/node`);
    check(JSON.stringify(l.data.keys) === JSON.stringify(['B']), 'delete of metadata/ removes the secret');
    await vault.write(`${mount}/undelete/app/node/A`, { versions: [2] });
    check(await status(vault.read(`${mount}/data/app/node/A`)) === 404, 'and leaves nothing to undelete');
    console.log('node-vault: ok');
})().catch((e) => {
    console.log(`FAIL: ${e.stack || e}`);
    process.exit(1);
});

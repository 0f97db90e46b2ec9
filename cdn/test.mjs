// Runs the CloudFront Function (cdn/viewer-request.js, or the file named by the first argument)
// under node on every case of cdn/vectors.json, which the Rust edge wrote
// (rendition::viewer_request), and compares what it does exactly: the status, code and field of
// a refusal (JSON, never cached), or the URI sent to the origin and the x-imgfn-request header.
// `node cdn/test.mjs`; tests/stack-check/tests/cdn.rs runs it. Exits 1 on any mismatch.
//
// The CloudFront runtime is shimmed: `cloudfront` (a key value store holding the case's
// url-keys), `crypto` (node's: createHmac and base64url digests, as the runtime documents), the
// request's rawQueryString(), the clock (Date.now), and strict mode. The function may import
// nothing else.

import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const source = readFileSync(process.argv[2] || here + 'viewer-request.js', 'utf8');
const vectors = JSON.parse(readFileSync(here + 'vectors.json', 'utf8'));

const imports = source.match(/^import .*$/gm) || [];
const expected = ["import cf from 'cloudfront';", "import crypto from 'crypto';"];
if (JSON.stringify(imports) !== JSON.stringify(expected)) {
  console.error(`the function imports ${JSON.stringify(imports)}, not ${JSON.stringify(expected)}`);
  process.exit(1);
}

let store; // the url-keys value of the running case (undefined: no such key)
const cf = {
  kvs: () => ({
    get: async (key) => {
      if (key !== 'url-keys' || store === undefined) throw new Error(`key not found: ${key}`);
      return store;
    },
  }),
};
const body = source.replace(/^import .*$/gm, '');
const handler = new Function('cf', 'crypto', `"use strict";\n${body}\nreturn handler;`)(cf, crypto);

function event(c) {
  const headers = {};
  if (c.accept !== null) headers.accept = { value: c.accept };
  const querystring = {};
  for (const pair of (c.query || '').split('&').filter((p) => p)) {
    const [name, value = ''] = pair.split(/=(.*)/s);
    const entry = (querystring[name] ||= { value });
    (entry.multiValue ||= []).push({ value });
  }
  return {
    version: '1.0',
    context: { eventType: 'viewer-request', distributionId: 'EDFDVBD6EXAMPLE' },
    viewer: { ip: '203.0.113.10' },
    request: {
      method: 'GET',
      uri: c.path,
      querystring,
      headers,
      cookies: {},
      rawQueryString: () => (c.query === null ? undefined : c.query),
    },
  };
}

function check(c, out) {
  const e = c.expect;
  const problems = [];
  const differ = (what, got, want) => {
    if (got !== want) problems.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  if (e.status !== undefined) {
    differ('status', out.statusCode, e.status);
    differ('cache-control', out.headers?.['cache-control']?.value, 'no-store');
    differ('content-type', out.headers?.['content-type']?.value, 'application/json');
    let error = {};
    try {
      error = JSON.parse(out.body.data).error;
    } catch (err) {
      problems.push(`body: ${err}`);
    }
    differ('code', error.code, e.code);
    differ('field', error.field, e.field);
  } else {
    differ('status', out.statusCode, undefined);
    differ('uri', out.uri, e.uri);
    differ('x-imgfn-request', out.headers?.['x-imgfn-request']?.value, e.request ?? undefined);
    differ('querystring', JSON.stringify(out.querystring), '{}');
  }
  return problems;
}

const realNow = Date.now;
let passed = 0;
let failed = 0;
for (const c of vectors.cases) {
  store = c.keys;
  Date.now = () => c.now * 1000;
  let problems;
  try {
    problems = check(c, await handler(event(c)));
  } catch (err) {
    problems = [`threw ${err && err.stack ? err.stack : err}`];
  } finally {
    Date.now = realNow;
  }
  if (problems.length) {
    failed++;
    console.log(`FAIL ${c.name}: ${c.path}${c.query === null ? '' : '?' + c.query}\n  ${problems.join('\n  ')}`);
  } else {
    passed++;
  }
}
console.log(`vectors: ${vectors.cases.length}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed || !passed ? 1 : 0);

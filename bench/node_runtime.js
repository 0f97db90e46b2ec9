// A Node + sharp Lambda function as Node's own runtime would run it, reduced to what the init
// benchmark needs (bench/init_time.py): at init it loads sharp, as a Node function doing image
// work does; then it polls the Lambda runtime API ($AWS_LAMBDA_RUNTIME_API) and handles each
// S3 event the way imgfn's `thumbnail` does by default: the source from S3, a 256 px WebP
// (quality 80) back. "S3" is bench/init_time.py's stub on 127.0.0.1, reached with plain unsigned
// HTTP: no AWS SDK is loaded, so this is a lower bound for a real Node function (the SDK v3's
// S3 client adds its own load time).
'use strict';
const sharp = require('sharp');
const http = require('http');

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const agent = new http.Agent({ keepAlive: true });

function call(method, url, body) {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'content-length': body.length } : {};
    const req = http.request(url, { method, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

async function handler(event) {
  const endpoint = process.env.AWS_ENDPOINT_URL;
  for (const record of event.Records) {
    const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, ' '));
    const src = await call('GET', `${endpoint}/${record.s3.bucket.name}/${encodeURI(key)}`);
    if (src.status !== 200) throw new Error(`GetObject ${key}: ${src.status}`);
    const out = await sharp(src.body).rotate().resize(256, 256, { fit: 'inside' }).webp({ quality: 80 }).toBuffer();
    const outKey = key.replace(/\.[^./]*$/, '') + '.webp';
    const put = await call('PUT', `${endpoint}/${process.env.IMGFN_OUTPUT_BUCKET}/${encodeURI(outKey)}`, out);
    if (put.status !== 200) throw new Error(`PutObject ${outKey}: ${put.status}`);
  }
  return null;
}

(async () => {
  const base = `http://${api}/2018-06-01/runtime/invocation`;
  for (;;) {
    const next = await call('GET', `${base}/next`);
    const id = next.headers['lambda-runtime-aws-request-id'];
    try {
      const result = await handler(JSON.parse(next.body.toString()));
      await call('POST', `${base}/${id}/response`, Buffer.from(JSON.stringify(result)));
    } catch (e) {
      const body = Buffer.from(JSON.stringify({ errorType: e.name, errorMessage: e.message }));
      await call('POST', `${base}/${id}/error`, body);
    }
  }
})();

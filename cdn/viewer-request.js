import cf from 'cloudfront';
import crypto from 'crypto';

// imgfn's CloudFront viewer-request function (runtime cloudfront-js-2.0): exactly what
// `viewer_request` in shared/imgfn-lambda/src/rendition.rs does, checked against the same
// vectors (cdn/vectors.json, cdn/test.mjs). /v1/... is put into normal form (a bad URL is 400
// naming the field), its HMAC-SHA256 signature and expiry checked against the keys in the
// KeyValueStore (403), its source key against the rendition prefixes (404), format=auto
// resolved from Accept; then the request goes to the output bucket at r/<key>/<steps>, with the
// viewer's URL in x-imgfn-request for the render function on a miss. /o/... is checked the same
// way and served as it is. Anything else is 404. Deployed inline in template.yaml by
// `cargo xtask sync`; the whole file counts against CloudFront's 10 KB.

// >>> generated: tables (cargo xtask sync writes this from the operation registry; edit the registry, not this)
const T = {"avif":true,"d":{"output":{"background":"#ffffffff","chroma_subsampling":"auto","compression_level":"6","depth":"8","effort":"4","keep_copyright":"false","keep_icc":"false","lossless":"false","progressive":"false","quality":"80"},"qr-overlay":{"dark":"#000000ff","ec_level":"M","gravity":"bottom_right","light":"#ffffffff","offset_x":"0","offset_y":"0","quiet_zone":"4","size":"200"},"round-corner":{},"thumbnail":{"filter":"lanczos3","fit":"inside","gravity":"center","upscale":"false"},"watermark":{"align":"center","color":"#ffffff","gravity":"bottom_right","offset_x":"0","offset_y":"0","opacity":"0.6","size":"4%"}},"n":{"qr":"qr-overlay","qr-overlay":"qr-overlay","resize":"thumbnail","round-corner":"round-corner","round-corners":"round-corner","round_corners":"round-corner","thumbnail":"thumbnail","watermark":"watermark","watermark-image":"watermark","watermark-text":"watermark","watermark_image":"watermark","watermark_text":"watermark"},"p":["uploads/","thumbnail/","watermark/","round-corner/","qr-overlay/","slice/","convert/","originals/"]};
// <<< generated: tables

const OUT = 'output';
const JSONH = {'content-type': {value: 'application/json'}, 'cache-control': {value: 'no-store'}};
const TEXT = {400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found'};
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

// A refusal: thrown, answered by the handler as JSON that is never cached.
function fail(status, code, message, field) {
  throw {status: status, code: code, message: message, field: field};
}
const bad = (field, message) => fail(400, 'invalid_params', message, field);

// ASCII lower case (Rust's to_ascii_lowercase).
const lc = s => s.replace(/[A-Z]+/g, c => c.toLowerCase());

// Every byte but A-Z a-z 0-9 - . _ ~ (and / when `slash`) as %XX, upper case.
function enc(s, slash) {
  const e = encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return slash ? e.replace(/%2F/g, '/') : e;
}

// UTF-8 length in bytes.
const len = s => enc(s).replace(/%../g, '.').length;

// Percent-decoding as Rust's percent_decode_str then from_utf8: a % not followed by two hex
// digits is kept; invalid UTF-8 is refused.
function dec(raw, field) {
  try {
    return decodeURIComponent(raw.replace(/%(?![0-9A-Fa-f]{2})/g, '%25'));
  } catch (e) {
    return bad(field, 'not valid percent-encoded UTF-8');
  }
}

// A source or output key (crate::keys::check), and not a folder.
function key(raw) {
  const k = dec(raw, 'key');
  const b = k.endsWith('/') ? k.slice(0, -1) : k;
  const why = !k ? 'the key is empty'
    : len(k) > 1024 ? 'the key is over 1024 bytes'
    : k[0] == '/' ? 'the key starts with /'
    : /[\x00-\x1f\x7f-\x9f]/.test(k) ? 'the key holds a control character'
    : b.split('/').some(s => s == '' || s == '.' || s == '..') ? 'the key has an empty, . or .. segment'
    : k.endsWith('/') ? 'a folder is not an image' : '';
  return why ? bad('key', why) : k;
}

// The steps segment in normal form: [[name, [[param, value], ...]], ...].
function steps(seg) {
  if (!seg) bad('steps', 'at least one step');
  const out = [];
  let output;
  seg.split(';').forEach((raw, i) => {
    const f = 'steps[' + i + ']';
    const parts = raw.split(',');
    const n = lc(parts.shift());
    const name = n == OUT ? OUT : has(T.n, n) ? T.n[n] : bad(f + '.op', JSON.stringify(n) + ' is not a rendition step; expected one of: ' + Object.keys(T.d).join(', '));
    const p = Object.create(null);
    parts.forEach(pair => {
      const j = pair.indexOf('=');
      if (j < 0) bad(f, JSON.stringify(pair) + ' is not param=value');
      const k = lc(pair.slice(0, j));
      const v = dec(pair.slice(j + 1), f + '.' + k);
      if (!k || k in p) bad(f + '.' + k, 'given twice (or without a name)');
      p[k] = v;
    });
    const d = T.d[name];
    const step = [name, Object.keys(p).filter(k => !has(d, k) || d[k] !== p[k]).sort().map(k => [k, p[k]])];
    if (name != OUT) out.push(step);
    else if (output) bad(f, 'one output step at most');
    else output = step;
  });
  if (output && output[1].length) out.push(output);
  if (!out.length) bad('steps', 'no operation and no output params');
  return out;
}

const segment = st => st.map(s => s[0] + s[1].map(p => ',' + p[0] + '=' + enc(p[1])).join('')).join(';');

// The query's exp (normalised as Rust's u64 writes it), the only query param a URL has.
function expiry(q) {
  let exp;
  (q || '').split('&').forEach(pair => {
    if (!pair) return;
    const j = pair.indexOf('=');
    if (j < 0 || pair.slice(0, j) != 'exp' || exp !== undefined) bad('query', JSON.stringify(pair) + ': only exp=<unix seconds> is allowed, once');
    exp = pair.slice(j + 1);
    if (!/^\+?[0-9]+$/.test(exp)) bad('exp', 'unix seconds');
    exp = exp.replace(/^\+?0*(?=[0-9])/, '');
    if (exp.length > 20 || (exp.length == 20 && exp > '18446744073709551615')) bad('exp', 'unix seconds');
  });
  return exp;
}

// What `format=auto` becomes for this Accept header (rendition::negotiate).
function negotiate(accept) {
  const takes = mime => (accept || '').split(',').some(part => {
    const f = part.split(';').map(x => x.trim());
    return lc(f[0]) == mime && !f.slice(1).some(x => /^q=0(\.0)?$/.test(x.replace(/ /g, '')));
  });
  return T.avif && takes('image/avif') ? 'avif' : takes('image/webp') ? 'webp' : 'auto-legacy';
}

// Parses the URL: what is signed, the signature, and where it goes.
function parse(path, q) {
  let rest, i, sig, k, st, exp, msg;
  if (path.startsWith('/v1/')) {
    rest = path.slice(4);
    i = rest.lastIndexOf('/');
    if (i < 0) bad('signature', 'missing');
    sig = rest.slice(i + 1);
    rest = rest.slice(0, i);
    i = rest.lastIndexOf('/');
    if (i < 0) bad('key', 'missing');
    k = key(rest.slice(0, i));
    st = steps(rest.slice(i + 1));
    exp = expiry(q);
    if (!sig) bad('signature', 'missing');
    msg = '/v1/' + enc(k, true) + '/' + segment(st);
  } else if (path.startsWith('/o/')) {
    rest = path.slice(3);
    i = rest.lastIndexOf('/');
    if (i < 0) bad('signature', 'missing');
    sig = rest.slice(i + 1);
    k = key(rest.slice(0, i));
    if (!sig) bad('signature', 'missing');
    exp = expiry(q);
    msg = '/o/' + enc(k, true);
  } else {
    fail(404, 'not_found', 'no such object: ' + path);
  }
  return {key: k, steps: st, exp: exp, sig: sig, msg: exp === undefined ? msg : msg + '?exp=' + exp};
}

// The key list `newest,previous` (crate::url_keys::parse); an invalid list verifies nothing.
function keyList(text) {
  const keys = (text || '').split(',').map(k => k.trim()).filter(k => k);
  return keys.length > 2 || keys.some(k => len(k) < 32) ? [] : keys;
}

// Constant-time comparison of two strings of the same length.
function same(a, b) {
  let x = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) x |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return x === 0;
}

async function handler(event) {
  const r = event.request;
  try {
    const u = parse(r.uri, r.rawQueryString());
    let text;
    try {
      text = await cf.kvs().get('url-keys');
    } catch (e) {
      text = '';
    }
    const sigs = keyList(text).map(k => crypto.createHmac('sha256', k).update(u.msg).digest('base64url').replace(/=+$/, ''));
    if (!sigs.some(s => same(s, u.sig))) fail(403, 'forbidden', 'the signature does not match the URL');
    if (u.exp !== undefined && Number(u.exp) < Math.floor(Date.now() / 1000)) fail(403, 'forbidden', 'the URL has expired');
    let origin = u.key;
    if (u.steps) {
      if (!T.p.some(p => u.key.length > p.length && u.key.startsWith(p))) fail(404, 'not_found', 'no such object: ' + u.key);
      const o = u.steps[u.steps.length - 1];
      if (o[0] == OUT) o[1].forEach(p => { if (p[0] == 'format' && p[1] == 'auto') p[1] = negotiate(r.headers.accept && r.headers.accept.value); });
      origin = 'r/' + enc(u.key, true) + '/' + segment(u.steps);
      if (len(origin) > 1024) bad('steps', 'the URL is too long: its stored key would pass 1024 bytes');
      r.headers['x-imgfn-request'] = {value: u.exp === undefined ? r.uri : r.uri + '?exp=' + u.exp};
    }
    r.uri = '/' + enc(origin, true);
    r.querystring = {};
    return r;
  } catch (e) {
    if (!e || !e.status) throw e;
    const body = {code: e.code, message: e.message};
    if (e.field !== undefined) body.field = e.field;
    return {statusCode: e.status, statusDescription: TEXT[e.status], headers: JSONH, body: {encoding: 'text', data: JSON.stringify({error: body})}};
  }
}

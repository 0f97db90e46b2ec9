//! The CDN's edge (`cdn/`): what `cdn/viewer-request.js` (the CloudFront Function) needs from
//! the registry, and the test vectors that keep it equal to the Rust edge.
//!
//! - `tables`: a region of `cdn/viewer-request.js`, one line of JSON: `n` every name a rendition
//!   step answers to (registry names and aliases) → the registry name; `d` each step's defaults
//!   as a URL writes them ([`rendition::defaults`]), the `output` step's included; `p` the
//!   default rendition prefixes ([`ApiConfig`]'s); `avif` whether `format=auto` may pick AVIF.
//! - `cdn/vectors.json`: [`cases`] run through [`rendition::viewer_request`], the specification
//!   of the edge; `cdn/test.mjs` runs the JavaScript on the same cases. The cases built by
//!   signing carry their key, message and signature: they are also signing test vectors for apps.
//! - template.yaml: the function's code, inlined as it is (`FunctionCode`), and the prefixes the
//!   refresh rule, the render role and the CDN's read grant name.

use std::fmt::Write as _;

use image_ops::OutputFormat;
use imgfn_lambda::api::ApiConfig;
use imgfn_lambda::rendition::{self, StoredUrl, OUTPUT_STEP};
use imgfn_lambda::url_keys;
use serde_json::{json, Map, Value};

/// The CloudFront Function, relative to the repository root.
pub const VIEWER_REQUEST: &str = "cdn/viewer-request.js";
/// The test vectors, relative to the repository root.
pub const VECTORS: &str = "cdn/vectors.json";
/// The KeyValueStore key that holds the URL key list (`newest,previous`).
pub const KVS_KEY: &str = "url-keys";

/// The newest key of the vectors' key list.
pub const NEWEST: &str = "imgfn-test-vector-key-newest-0123456789";
/// The previous key of the vectors' key list (still verifies).
pub const PREVIOUS: &str = "imgfn-test-vector-key-previous-0123456789";
/// A key nobody configured.
pub const STRANGER: &str = "imgfn-test-vector-key-stranger-0123456789";
/// The vectors' clock (unix seconds): 2027-01-15T08:00:00Z.
pub const NOW: u64 = 1_800_000_000;

/// The rendition prefixes of a deploy that does not set `IMGFN_RENDITION_PREFIXES`.
pub fn default_rendition_prefixes() -> Result<Vec<String>, String> {
    ApiConfig::from_lookup(|name| match name {
        "IMGFN_SOURCE_BUCKET" => Some("source".into()),
        "IMGFN_OUTPUT_BUCKET" => Some("output".into()),
        _ => None,
    })
    .map(|c| c.rendition_prefixes)
    .map_err(|e| format!("the API's default configuration: {e}"))
}

/// The `tables` region of `cdn/viewer-request.js`.
pub fn js_tables() -> Result<String, String> {
    let mut names = Map::new();
    let mut defaults = Map::new();
    for op in rendition::operations() {
        for name in std::iter::once(op.name).chain(op.aliases.iter().copied()) {
            names.insert(name.to_owned(), Value::from(op.name));
        }
        defaults.insert(op.name.to_owned(), json!(rendition::defaults(op.name)));
    }
    defaults.insert(OUTPUT_STEP.to_owned(), json!(rendition::defaults(OUTPUT_STEP)));
    let tables = json!({
        "n": names,
        "d": defaults,
        "p": default_rendition_prefixes()?,
        "avif": OutputFormat::from_content_type("image/avif").is_some(),
    });
    Ok(format!("const T = {tables};\n"))
}

/// The template's `FunctionCode` property: the function's code as it is, a YAML literal block.
pub fn template_function_code(js: &str) -> String {
    let mut out = String::from("      FunctionCode: |\n");
    for line in js.lines() {
        if !line.is_empty() {
            out.push_str("        ");
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The refresh rule's key filter: one `prefix` per default rendition prefix.
pub fn template_rendition_prefixes() -> Result<String, String> {
    Ok(default_rendition_prefixes()?.iter().map(|p| format!("                    - prefix: {p}\n")).collect())
}

/// The render role's reads: the default rendition prefixes of the source bucket.
pub fn template_render_sources(source_objects: &str) -> Result<String, String> {
    Ok(default_rendition_prefixes()?
        .iter()
        .map(|p| format!("                  - !Sub {source_objects}/{p}*\n"))
        .collect())
}

/// One input of the edge.
struct Case {
    name: String,
    path: String,
    query: Option<String>,
    accept: Option<String>,
    /// The KeyValueStore's `url-keys` value.
    keys: String,
    now: u64,
    /// For a URL built by signing: the key, the message and the signature.
    signed: Option<(String, String, String)>,
    /// The name of a case this one is equivalent to (same origin URI).
    same_as: Option<String>,
}

fn both() -> String {
    format!("{NEWEST},{PREVIOUS}")
}

impl Case {
    /// A URL as written, unsigned (or with a made-up signature).
    fn raw(name: &str, path: &str, query: Option<&str>) -> Case {
        Case {
            name: name.to_owned(),
            path: path.to_owned(),
            query: query.map(str::to_owned),
            accept: None,
            keys: both(),
            now: NOW,
            signed: None,
            same_as: None,
        }
    }

    /// `/v1/<key>/<steps>` as written (any spelling), signed with `key` over its normal form.
    fn v1(name: &str, key_segment: &str, steps: &str, query: Option<&str>, key: &str) -> Case {
        let unsigned = format!("/v1/{key_segment}/{steps}");
        let message = match rendition::parse(&format!("{unsigned}/x"), query) {
            Ok(signed) => signed.rendition.message(),
            Err(e) => panic!("vector {name}: {unsigned} does not parse: {e}"),
        };
        Case::signed(name, &unsigned, query, key, message)
    }

    /// `/o/<key>` as written, signed with `key` over its normal form.
    fn o(name: &str, key_segment: &str, query: Option<&str>, key: &str) -> Case {
        let unsigned = format!("/o/{key_segment}");
        let message = match StoredUrl::parse(&format!("{unsigned}/x"), query) {
            Ok((url, _)) => url.message(),
            Err(e) => panic!("vector {name}: {unsigned} does not parse: {e}"),
        };
        Case::signed(name, &unsigned, query, key, message)
    }

    fn signed(name: &str, unsigned: &str, query: Option<&str>, key: &str, message: String) -> Case {
        let signature = rendition::signature(key.as_bytes(), &message);
        Case {
            path: format!("{unsigned}/{signature}"),
            signed: Some((key.to_owned(), message, signature)),
            ..Case::raw(name, unsigned, query)
        }
    }

    fn accept(mut self, accept: &str) -> Case {
        self.accept = Some(accept.to_owned());
        self
    }

    fn keys(mut self, keys: &str) -> Case {
        self.keys = keys.to_owned();
        self
    }

    fn now(mut self, now: u64) -> Case {
        self.now = now;
        self
    }

    fn same_as(mut self, name: &str) -> Case {
        self.same_as = Some(name.to_owned());
        self
    }

    /// What the Rust edge does with this request.
    fn expect(&self, prefixes: &[String]) -> Value {
        let keys = url_keys::parse(&self.keys, "url-keys").unwrap_or_default();
        match rendition::viewer_request(
            &self.path,
            self.query.as_deref(),
            self.accept.as_deref(),
            &keys,
            self.now,
            prefixes,
        ) {
            Ok(route) => {
                json!({"uri": route.origin_uri(), "request": route.forwarded_request(&self.path)})
            }
            Err(e) => {
                let mut out = json!({"status": e.status(), "code": e.code()});
                if let Some(field) = e.field() {
                    out["field"] = Value::from(field);
                }
                out
            }
        }
    }
}

/// Accept headers of real browsers.
const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
const SAFARI_WITHOUT_AVIF: &str = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";

/// The hand-written inputs: every rule of the edge, accepted and refused.
fn cases() -> Vec<Case> {
    let (n, p) = (NEWEST, PREVIOUS);
    let photo = "originals/alice/beach.jpg";
    let width = "thumbnail,width=800;output,format=webp";
    let exp_later = (NOW + 3600).to_string();
    let exp_now = NOW.to_string();
    let exp_gone = (NOW - 1).to_string();
    let long_key = format!("originals/{}.jpg", "k".repeat(990));
    let over_key = format!("originals/{}.jpg", "k".repeat(1020));
    vec![
        // Accepted, and the spellings that mean the same.
        Case::v1("a rendition", photo, width, None, n),
        Case::v1("aliases and case", photo, "RESIZE,Width=800;OUTPUT,format=webp", None, n)
            .same_as("a rendition"),
        Case::v1("steps and params in another order", photo, "output,format=webp;thumbnail,width=800", None, n)
            .same_as("a rendition"),
        Case::v1(
            "defaults spelled out",
            photo,
            "thumbnail,fit=inside,gravity=center,upscale=false,width=800;output,format=webp,quality=80",
            None,
            n,
        )
        .same_as("a rendition"),
        Case::v1("an output step of defaults only is left out", photo, "thumbnail,width=64;output,quality=80", None, n),
        Case::v1("a key with a space, unicode, + and %", "originals/a%20b/%C3%BC+%25.jpg", "thumbnail,width=64", None, n),
        Case::v1("the same key, lower-case hex and %2B", "originals/a%20b/%c3%bc%2B%25.jpg", "thumbnail,width=64", None, n)
            .same_as("a key with a space, unicode, + and %"),
        Case::v1("a % that starts no escape is a %", "originals/100%.jpg", "thumbnail,width=64", None, n),
        Case::v1("a text watermark", photo, "watermark,text=%C2%A9%20ACME,color=%23000000,size=5%25", None, n),
        Case::v1("the same watermark, other spellings", photo, "watermark,size=5%25,COLOR=%23000000,text=%c2%a9%20ACME", None, n)
            .same_as("a text watermark"),
        // A text watermark's size, colour and alignment are unset in its params but mean one
        // value each (the registry's `implied`): spelled out, they are dropped.
        Case::v1("the optional colour left out", photo, "watermark,text=hi", None, n),
        Case::v1("a text watermark's defaults spelled out", photo, "watermark,text=hi,color=%23ffffff,size=4%25,align=center", None, n)
            .same_as("the optional colour left out"),
        Case::v1("+ in a value is a plus", photo, "watermark,text=a+b", None, n),
        Case::v1("%2B is the same plus", photo, "watermark,text=a%2Bb", None, n).same_as("+ in a value is a plus"),
        Case::v1("= in a value", photo, "qr,data=https:%2F%2Fexample.com%2F%3Fa=1", None, n),
        Case::v1("every rendition operation", "uploads/u1/x.png", "thumbnail,width=300,height=200,fit=cover;round-corners,radius=10%25;qr,data=hello;watermark,image=assets%2Flogo.png,scale=0.2;output,format=png", None, n),
        // Signatures, keys and expiry.
        Case {
            path: Case::v1("", photo, width, None, n).path.replace("width=800", "width=801"),
            ..Case::raw("tampered after signing", "", None)
        },
        Case::v1("signed with a key nobody configured", photo, width, None, STRANGER),
        Case::v1("signed with the previous key (rotation)", photo, width, None, p),
        Case::v1("signed with a retired key", photo, width, None, p).keys(n),
        Case::v1("the key list may have spaces", photo, width, None, p).keys(&format!(" {n} , {p} ")),
        Case::v1("three keys in the list: none verifies", photo, width, None, n).keys(&format!("{n},{p},{STRANGER}")),
        Case::v1("a key under 32 characters: none verifies", photo, width, None, n).keys(&format!("{n},short")),
        Case::v1("no keys in the store", photo, width, None, n).keys(""),
        Case::raw("a signature that is not base64url", &format!("/v1/{photo}/{width}/!!!"), None),
        Case::v1("expires later", photo, width, Some(&format!("exp={exp_later}")), n),
        Case::v1("expires this second", photo, width, Some(&format!("exp={exp_now}")), n),
        Case::v1("expired", photo, width, Some(&format!("exp={exp_gone}")), n),
        Case::v1("expires later, asked after that", photo, width, Some(&format!("exp={exp_later}")), n).now(NOW + 3601),
        Case::v1("exp is read as a number", photo, width, Some(&format!("exp=+000{exp_later}")), n),
        Case {
            query: Some(format!("exp={exp_later}")),
            ..Case::v1("exp added after signing", photo, width, None, n)
        },
        // Bad grammar: a 400 naming the field.
        Case::raw("no signature", "/v1/beach.jpg", None),
        Case::raw("no key", "/v1/thumbnail,width=8/sig", None),
        Case::raw("an empty signature", &format!("/v1/{photo}/{width}/"), None),
        Case::raw("an empty steps segment", &format!("/v1/{photo}//sig"), None),
        Case::raw("not a rendition step", &format!("/v1/{photo}/slice,rows=2/sig"), None),
        Case::raw("an empty step", &format!("/v1/{photo}/thumbnail,width=8;;/sig"), None),
        Case::raw("a param without a value", &format!("/v1/{photo}/thumbnail,width/sig"), None),
        Case::raw("a param given twice", &format!("/v1/{photo}/thumbnail,width=1,WIDTH=2/sig"), None),
        Case::raw("a param without a name", &format!("/v1/{photo}/thumbnail,=1/sig"), None),
        Case::raw("a value that is not UTF-8", &format!("/v1/{photo}/watermark,text=%FF/sig"), None),
        Case::raw("two output steps", &format!("/v1/{photo}/output,format=webp;thumbnail,width=8;output,quality=5/sig"), None),
        Case::raw("output defaults only", &format!("/v1/{photo}/output,quality=80/sig"), None),
        Case::raw("a .. segment", "/v1/originals/../secret.jpg/thumbnail,width=8/sig", None),
        Case::raw("an encoded .. segment", "/v1/originals/%2E%2E/secret.jpg/thumbnail,width=8/sig", None),
        Case::raw("an empty key segment", "/v1/originals//a.jpg/thumbnail,width=8/sig", None),
        Case::raw("a folder", "/v1/originals/dir//thumbnail,width=8/sig", None),
        Case::raw("a control character in the key", "/v1/originals/a%0A.jpg/thumbnail,width=8/sig", None),
        Case::raw("a key that is not UTF-8", "/v1/originals/a%C3.jpg/thumbnail,width=8/sig", None),
        Case::raw("a key over 1024 bytes", &format!("/v1/{over_key}/thumbnail,width=8/sig"), None),
        Case::v1("a stored key over 1024 bytes", &long_key, "thumbnail,width=800", None, n),
        Case::raw("exp that is not a number", &format!("/v1/{photo}/{width}/sig"), Some("exp=soon")),
        Case::raw("exp empty", &format!("/v1/{photo}/{width}/sig"), Some("exp=")),
        Case::raw("exp negative", &format!("/v1/{photo}/{width}/sig"), Some("exp=-1")),
        Case::raw("exp past u64", &format!("/v1/{photo}/{width}/sig"), Some("exp=18446744073709551616")),
        Case::raw("another query param", &format!("/v1/{photo}/{width}/sig"), Some("w=800")),
        Case::raw("exp twice", &format!("/v1/{photo}/{width}/sig"), Some("exp=1&exp=2")),
        Case::raw("exp without =", &format!("/v1/{photo}/{width}/sig"), Some("exp")),
        Case::raw("grammar is checked before the signature", &format!("/v1/{photo}/sepia/sig"), None),
        // Prefixes: a signed URL still reaches only the rendition prefixes.
        Case::v1("a source outside the rendition prefixes", "private/a.jpg", "thumbnail,width=8", None, n),
        Case::v1("an asset is not a source", "assets/logo.png", "thumbnail,width=8", None, n),
        // Accept.
        Case::v1("format=auto, Chrome", photo, "thumbnail,width=800;output,format=auto", None, n).accept(CHROME),
        Case::v1("format=auto, Safari without AVIF", photo, "thumbnail,width=800;output,format=auto", None, n)
            .accept(SAFARI_WITHOUT_AVIF),
        Case::v1("format=auto, WebP refused with q=0", photo, "thumbnail,width=800;output,format=auto", None, n)
            .accept("image/webp;q=0,image/png"),
        Case::v1("format=auto, q=0.0 with spaces", photo, "thumbnail,width=800;output,format=auto", None, n)
            .accept("image/webp; q = 0.0, image/jpeg"),
        Case::v1("format=auto, WebP with a low q", photo, "thumbnail,width=800;output,format=auto", None, n)
            .accept("IMAGE/WEBP;q=0.1"),
        Case::v1("format=auto, no Accept", photo, "thumbnail,width=800;output,format=auto", None, n),
        Case::v1("format=auto, */* only", photo, "thumbnail,width=800;output,format=auto", None, n).accept("*/*"),
        Case::v1("a fixed format ignores Accept", photo, width, None, n).accept(CHROME),
        // Stored outputs.
        Case::o("a stored output", "thumbnail/alice/beach.webp", None, n),
        Case::o("a stored output with a space and %", "processed/u1/a%20b%25.webp", None, p),
        Case::o("a stored output that expires", "processed/u1/x.webp", Some(&format!("exp={exp_later}")), n),
        Case::o("an expired stored output", "processed/u1/x.webp", Some(&format!("exp={exp_gone}")), n),
        Case {
            path: Case::o("", "thumbnail/alice/beach.webp", None, STRANGER).path,
            ..Case::raw("a forged stored output", "", None)
        },
        Case::raw("a stored output without a signature", "/o/thumbnail", None),
        Case::raw("a stored output with an empty signature", "/o/thumbnail/a.webp/", None),
        Case::raw("a stored output folder", "/o/thumbnail/dir//sig", None),
        Case::raw("a stored output with an empty key", "/o//sig", None),
        Case::raw("a stored output's signature is checked before its query", "/o/thumbnail/a.webp/", Some("exp=x")),
        // Everything else.
        Case::raw("the root", "/", None),
        Case::raw("favicon", "/favicon.ico", None),
        Case::raw("another version", "/v2/originals/a.jpg/thumbnail,width=8/sig", None),
        Case::raw("a stored rendition's own path", "/r/originals/alice/beach.jpg/thumbnail,width=800", None),
        Case::raw("v1 without its slash", "/v1", None),
    ]
}

/// `cdn/vectors.json`.
pub fn vectors() -> Result<String, String> {
    // Spellings said to be equivalent must route alike, or the vectors would teach a split cache.
    check_equivalences().map_err(|e| format!("{VECTORS}: {e}"))?;
    let prefixes = default_rendition_prefixes()?;
    let mut out = String::new();
    let _ = writeln!(out, "{{");
    let about = [
        "Test vectors of imgfn's edge (docs/delivery.md): what CloudFront's viewer-request function",
        "(cdn/viewer-request.js) and the Rust edge (rendition::viewer_request) do with a request.",
        "Written by `cargo xtask sync` from the Rust edge; do not edit. Each case: the viewer's path",
        "and raw query (null: no ?), its Accept header, the KeyValueStore's url-keys value, the clock",
        "(unix seconds); expect is an error {status, code, field?} or where the request goes: uri, the",
        "URI sent to the origin, and request, the x-imgfn-request header (null: not set). Cases built by",
        "signing give signed: the key (its UTF-8 bytes are the HMAC key), the message (the normal path,",
        "then ?exp=<n>) and the signature (base64url of HMAC-SHA256, no padding).",
    ];
    let _ = writeln!(out, "  \"about\": {},", json!(about.join(" ")));
    let _ = writeln!(out, "  \"cases\": [");
    let cases = cases();
    for (i, c) in cases.iter().enumerate() {
        let mut fields = vec![
            format!("\"name\": {}", json!(c.name)),
            format!("\"path\": {}", json!(c.path)),
            format!("\"query\": {}", json!(c.query)),
            format!("\"accept\": {}", json!(c.accept)),
            format!("\"keys\": {}", json!(c.keys)),
            format!("\"now\": {}", c.now),
        ];
        if let Some((key, message, signature)) = &c.signed {
            fields.push(format!(
                "\"signed\": {{\"key\": {}, \"message\": {}, \"signature\": {}}}",
                json!(key),
                json!(message),
                json!(signature)
            ));
        }
        if let Some(same) = &c.same_as {
            fields.push(format!("\"same_as\": {}", json!(same)));
        }
        fields.push(format!("\"expect\": {}", c.expect(&prefixes)));
        let comma = if i + 1 < cases.len() { "," } else { "" };
        let _ = writeln!(out, "    {{{}}}{comma}", fields.join(", "));
    }
    let _ = writeln!(out, "  ]");
    let _ = writeln!(out, "}}");
    Ok(out)
}

/// The signing examples of docs/delivery.md: a few vectors as a table.
pub fn docs_signing_examples() -> String {
    let mut out = String::from("| URL | key | message (what is signed) | signature |\n|---|---|---|---|\n");
    let examples =
        ["a rendition", "expires later", "a key with a space, unicode, + and %", "a stored output"];
    for c in cases().iter().filter(|c| examples.contains(&c.name.as_str())) {
        let Some((key, message, signature)) = &c.signed else { continue };
        let url = match &c.query {
            Some(q) => format!("{}?{q}", c.path),
            None => c.path.clone(),
        };
        let _ = writeln!(out, "| `{url}` | `{key}` | `{message}` | `{signature}` |");
    }
    out
}

/// Whether every equivalent case routes like the case it names (a guard on the vectors).
pub fn check_equivalences() -> Result<(), String> {
    let prefixes = default_rendition_prefixes()?;
    let cases = cases();
    for c in cases.iter().filter(|c| c.same_as.is_some()) {
        let name = c.same_as.as_deref().unwrap_or_default();
        let base = cases.iter().find(|b| b.name == name).ok_or_else(|| format!("no case {name:?}"))?;
        let (a, b) = (c.expect(&prefixes), base.expect(&prefixes));
        if a["uri"].is_null() || a["uri"] != b["uri"] {
            return Err(format!("{:?} routes to {a} but {name:?} to {b}", c.name));
        }
    }
    Ok(())
}

/// The render function's sample event, relative to the repository root.
pub const RENDER_EVENT: &str = "events/render.json";
/// The refresh function's sample event, relative to the repository root.
pub const REFRESH_EVENT: &str = "events/refresh.json";
/// The vector the sample events are made of: its source, its signed URL, its keys.
pub const SAMPLE_CASE: &str = "a rendition";
/// The source key of [`SAMPLE_CASE`].
const SAMPLE_SOURCE: &str = "originals/alice/beach.jpg";

/// `events/render.json`: what CloudFront sends the render function's URL on a miss of
/// [`SAMPLE_CASE`] (a Function URL event, payload 2.0, signed by origin access control): the
/// rewritten URI as the path, the viewer's URL in `x-imgfn-request`, Chrome's `Accept`.
pub fn render_event() -> Result<String, String> {
    let prefixes = default_rendition_prefixes()?;
    let c = cases().into_iter().find(|c| c.name == SAMPLE_CASE).ok_or("no sample case")?;
    let expect = c.expect(&prefixes);
    let (Some(uri), Some(request)) = (expect["uri"].as_str(), expect["request"].as_str()) else {
        return Err(format!("the sample case {SAMPLE_CASE:?} is not a rendition: {expect}"));
    };
    if !uri.contains(SAMPLE_SOURCE) {
        return Err(format!("the sample case {SAMPLE_CASE:?} does not render {SAMPLE_SOURCE}"));
    }
    let (uri, request, accept) = (json!(uri), json!(request), json!(CHROME));
    Ok(format!(
        r#"{{
  "version": "2.0",
  "routeKey": "$default",
  "rawPath": {uri},
  "rawQueryString": "",
  "headers": {{
    "accept": {accept},
    "host": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
    "user-agent": "Amazon CloudFront",
    "via": "2.0 0123456789abcdef0123456789abcdef.cloudfront.net (CloudFront)",
    "x-amz-cf-id": "EXAMPLEqHnGHeXE7cE8N5k1wNK5oJgJx3sFsaRLf8mw1a4s2Q8lS6w==",
    "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "x-amz-date": "20261124T120000Z",
    "x-amz-security-token": "EXAMPLE-SESSION-TOKEN",
    "x-amzn-trace-id": "Root=1-67891233-abcdef012345678912345678",
    "x-forwarded-for": "203.0.113.10",
    "x-forwarded-port": "443",
    "x-forwarded-proto": "https",
    "x-imgfn-request": {request}
  }},
  "requestContext": {{
    "accountId": "123456789012",
    "apiId": "abcdefghijklmnopqrstuvwxyz012345",
    "authorizer": {{
      "iam": {{
        "accessKey": "ASIAEXAMPLEKEY",
        "accountId": "123456789012",
        "callerId": "AROAEXAMPLEID:OriginAccessSession",
        "cognitoIdentity": null,
        "principalOrgId": null,
        "userArn": "arn:aws:sts::123456789012:assumed-role/OriginAccessControlRole/OriginAccessSession",
        "userId": "AROAEXAMPLEID:OriginAccessSession"
      }}
    }},
    "domainName": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
    "domainPrefix": "abcdefghijklmnopqrstuvwxyz012345",
    "http": {{
      "method": "GET",
      "path": {uri},
      "protocol": "HTTP/1.1",
      "sourceIp": "203.0.113.10",
      "userAgent": "Amazon CloudFront"
    }},
    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "routeKey": "$default",
    "stage": "$default",
    "time": "24/Nov/2026:12:00:00 +0000",
    "timeEpoch": 1795521600000
  }},
  "isBase64Encoded": false
}}
"#
    ))
}

/// `events/refresh.json`: what EventBridge sends the refresh function when the source of
/// [`SAMPLE_CASE`] is overwritten ("Object Created" from a bucket with EventBridge enabled).
pub fn refresh_event() -> String {
    let key = json!(SAMPLE_SOURCE);
    format!(
        r#"{{
  "version": "0",
  "id": "17793124-05d4-b198-2fde-7ededc63b103",
  "detail-type": "Object Created",
  "source": "aws.s3",
  "account": "123456789012",
  "time": "2026-11-24T12:00:00Z",
  "region": "us-east-1",
  "resources": ["arn:aws:s3:::imgfn-source"],
  "detail": {{
    "version": "0",
    "bucket": {{ "name": "imgfn-source" }},
    "object": {{
      "key": {key},
      "size": 1024,
      "etag": "d41d8cd98f00b204e9800998ecf8427e",
      "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
      "sequencer": "00617F08299329D189"
    }},
    "request-id": "N4N7GDK58NMKJ12R",
    "requester": "123456789012",
    "source-ip-address": "203.0.113.10",
    "reason": "PutObject"
  }}
}}
"#
    )
}

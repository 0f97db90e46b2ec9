//! The demo page the local edge serves at `/`: upload an image through the API under a trigger
//! prefix, then show what the trigger function wrote (its stored-output URL) and signed
//! renditions of the upload with `srcset`/`sizes` and a grid of variants, with their formats
//! and byte sizes.
//!
//! `/demo/sign?key=<source key>` signs the page's rendition URLs with the stack's URL key: it
//! stands in for the app's own server, which is where URLs are signed deployed (the key never
//! reaches a browser). It exists on the local edge only.

use bytes::Bytes;
use image_ops::ops;
use imgfn_lambda::rendition::{parse_steps, Rendition, StoredUrl};
use serde_json::json;

/// The page, with `{{API}}` replaced by the API's URL.
const INDEX: &str = include_str!("demo.html");

/// The widths of the responsive image's `srcset`.
pub const SRCSET_WIDTHS: [u32; 4] = [320, 640, 1024, 1600];

/// The operation whose trigger the page uploads for.
pub const TRIGGER_OP: &str = "thumbnail";

/// The grid's variants: a label and the rendition's steps.
pub const VARIANTS: [(&str, &str); 5] = [
    ("square crop", "thumbnail,width=400,height=400,fit=cover;output,format=auto"),
    ("text watermark", "thumbnail,width=640;watermark,text=imgfn%20demo,size=6%25;output,format=auto"),
    ("round corners", "thumbnail,width=400;round-corner,radius=12%25;output,format=auto"),
    (
        "QR code",
        "thumbnail,width=640;qr-overlay,data=https%3A%2F%2Fexample.com%2Fimgfn,size=160;output,format=auto",
    ),
    ("JPEG at quality 40", "thumbnail,width=640;output,format=jpeg,quality=40"),
];

/// The demo: where the API is, and the key that signs its URLs.
#[derive(Debug, Clone)]
pub struct Demo {
    pub api_url: String,
    pub url_key: Vec<u8>,
}

impl Demo {
    /// The response for `path` and `query`, if it is one of the demo's: content type and body,
    /// or a status, content type and body for a refusal.
    pub fn serve(&self, path: &str, query: Option<&str>) -> Option<(u16, &'static str, Bytes)> {
        match path {
            "/" | "/index.html" => {
                let page = INDEX.replace("{{API}}", self.api_url.trim_end_matches('/'));
                Some((200, "text/html; charset=utf-8", Bytes::from(page)))
            }
            "/demo/sign" => Some(match self.sign(query) {
                Ok(body) => (200, "application/json", Bytes::from(body)),
                Err(message) => {
                    let body =
                        json!({"error": {"code": "invalid_params", "field": "key", "message": message}});
                    (400, "application/json", Bytes::from(body.to_string()))
                }
            }),
            _ => None,
        }
    }

    fn sign(&self, query: Option<&str>) -> Result<String, String> {
        let raw = query
            .unwrap_or("")
            .split('&')
            .find_map(|p| p.strip_prefix("key="))
            .ok_or("give ?key=<source key>")?;
        let key = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| "not percent-encoded UTF-8".to_owned())?
            .into_owned();
        imgfn_lambda::keys::check(&key).map_err(|why| why.to_string())?;
        let url = |steps: &str| -> Result<String, String> {
            let steps = parse_steps(steps).map_err(|e| e.to_string())?;
            Ok(Rendition { key: key.clone(), steps, expires: None }.signed_path(&self.url_key))
        };
        let srcset = SRCSET_WIDTHS
            .iter()
            .map(|w| Ok(json!({"width": w, "url": url(&format!("thumbnail,width={w};output,format=auto"))?})))
            .collect::<Result<Vec<_>, String>>()?;
        let variants = VARIANTS
            .iter()
            .map(|(label, steps)| Ok(json!({"label": label, "url": url(steps)?})))
            .collect::<Result<Vec<_>, String>>()?;
        // What the trigger function writes for this upload, and its signed stored-output URL.
        let trigger = match key.split_once('/').and_then(|(prefix, rest)| Some((ops::find(prefix)?, rest))) {
            Some((op, rest)) if op.trigger.is_some() => {
                let output: serde_json::Value =
                    serde_json::from_str(op.trigger.as_ref().map_or("{}", |t| t.output)).unwrap_or_default();
                let extension = output["format"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| key.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()))
                    .unwrap_or_default();
                let out = imgfn_lambda::keys::image_key(
                    &imgfn_lambda::keys::trigger_base(op.name, rest),
                    &extension,
                );
                let url = StoredUrl { key: out.clone(), expires: None }.signed_path(&self.url_key);
                json!({"op": op.name, "key": out, "url": url})
            }
            _ => serde_json::Value::Null,
        };
        Ok(json!({"srcset": srcset, "variants": variants, "trigger": trigger}).to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_api_and_sign_refuses_bad_keys() {
        let demo = Demo { api_url: "http://127.0.0.1:9/".into(), url_key: b"k".repeat(32) };
        let (status, _, page) = demo.serve("/", None).unwrap();
        assert_eq!(status, 200);
        let page = String::from_utf8(page.to_vec()).unwrap();
        assert!(page.contains("const API = 'http://127.0.0.1:9';"));
        assert!(!page.contains("{{"));
        let (status, _, body) = demo.serve("/demo/sign", Some("key=uploads%2F..%2Fx.jpg")).unwrap();
        assert_eq!(status, 400, "{body:?}");
        let (status, _, body) = demo.serve("/demo/sign", Some("key=uploads%2Fa%20b.jpg")).unwrap();
        assert_eq!(status, 200);
        let urls: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(urls["srcset"].as_array().unwrap().len(), SRCSET_WIDTHS.len());
        assert_eq!(urls["variants"].as_array().unwrap().len(), VARIANTS.len());
        assert!(urls["srcset"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("/v1/uploads/a%20b.jpg/thumbnail,width=320;"));
        assert!(urls["trigger"].is_null(), "uploads/ is no trigger prefix");
        let (_, _, body) = demo.serve("/demo/sign", Some("key=thumbnail%2Fme%2Fa.jpg")).unwrap();
        let urls: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(urls["trigger"]["key"], "thumbnail/me/a.webp");
        assert!(urls["trigger"]["url"].as_str().unwrap().starts_with("/o/thumbnail/me/a.webp/"));
        assert!(demo.serve("/other", None).is_none());
    }
}

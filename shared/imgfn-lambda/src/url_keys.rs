//! The keys that sign rendition and stored-output URLs ([`crate::rendition`]).
//!
//! A key list is written `newest,previous`: at most two keys are active at once; the first
//! signs, both verify, so keys rotate without breaking URLs already handed out. Each key is
//! the UTF-8 bytes of its text (an app in any language signs with the same string), at least
//! [`MIN_KEY_LEN`] characters.
//!
//! Deployed, the list is the `SecretString` of a Secrets Manager secret
//! (`IMGFN_URL_KEYS_SECRET`), read at init and again every [`REFRESH`], so a rotation reaches
//! running functions within minutes and needs no redeploy (the CloudFront Function reads the
//! same list from its KeyValueStore). Locally and in tests it is `IMGFN_URL_KEYS` itself.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tracing::warn;

use crate::ConfigError;

/// Shortest key accepted: 32 characters (a random 32-character alphanumeric key carries
/// about 190 bits).
pub const MIN_KEY_LEN: usize = 32;

/// Most keys active at once.
pub const MAX_KEYS: usize = 2;

/// How often a secret is read again.
pub const REFRESH: Duration = Duration::from_secs(300);

/// Parses a key list (`newest,previous`). `var` names the variable in errors.
pub fn parse(list: &str, var: &'static str) -> Result<Vec<Vec<u8>>, ConfigError> {
    let keys: Vec<Vec<u8>> =
        list.split(',').map(str::trim).filter(|k| !k.is_empty()).map(|k| k.as_bytes().to_vec()).collect();
    if keys.is_empty() {
        return Err(ConfigError { var, message: "no key in the list".into() });
    }
    if keys.len() > MAX_KEYS {
        return Err(ConfigError {
            var,
            message: format!("{} keys; at most {MAX_KEYS} are active at once (newest,previous)", keys.len()),
        });
    }
    if let Some(i) = keys.iter().position(|k| k.len() < MIN_KEY_LEN) {
        return Err(ConfigError {
            var,
            message: format!("key {} is shorter than {MIN_KEY_LEN} characters", i + 1),
        });
    }
    Ok(keys)
}

/// The active URL keys, fixed or read from a secret (and re-read every [`REFRESH`]).
#[derive(Clone)]
pub struct UrlKeys {
    loaded: Arc<RwLock<Loaded>>,
    secret: Option<Secret>,
}

#[derive(Clone)]
struct Secret {
    client: crate::aws::AwsClient,
    id: String,
}

struct Loaded {
    keys: Vec<Vec<u8>>,
    at: Instant,
}

/// Never prints a key.
impl fmt::Debug for UrlKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.loaded.read().map(|l| l.keys.len()).unwrap_or(0);
        f.debug_struct("UrlKeys")
            .field("keys", &format_args!("{count} (redacted)"))
            .field("secret", &self.secret.as_ref().map(|s| s.id.as_str()))
            .finish()
    }
}

impl UrlKeys {
    /// Fixed keys (none: no URL verifies, and the render function refuses to start).
    pub fn fixed(keys: Vec<Vec<u8>>) -> UrlKeys {
        UrlKeys { loaded: Arc::new(RwLock::new(Loaded { keys, at: Instant::now() })), secret: None }
    }

    /// The keys in the Secrets Manager secret `id` (its `SecretString`: the key list), read now.
    pub async fn from_secret(client: &crate::aws::AwsClient, id: &str) -> Result<UrlKeys, ConfigError> {
        let secret = Secret { client: client.clone(), id: id.to_owned() };
        let keys = secret.read().await?;
        Ok(UrlKeys {
            loaded: Arc::new(RwLock::new(Loaded { keys, at: Instant::now() })),
            secret: Some(secret),
        })
    }

    /// Whether any key is configured.
    pub fn is_empty(&self) -> bool {
        self.loaded.read().map(|l| l.keys.is_empty()).unwrap_or(true)
    }

    /// The active keys, newest first; a secret older than [`REFRESH`] is read again first (if
    /// that fails, the keys read before stay active and the failure is logged).
    pub async fn current(&self) -> Vec<Vec<u8>> {
        let (keys, stale) = match self.loaded.read() {
            Ok(l) => (l.keys.clone(), l.at.elapsed() >= REFRESH),
            Err(_) => (Vec::new(), true),
        };
        let Some(secret) = self.secret.as_ref().filter(|_| stale) else { return keys };
        match secret.read().await {
            Ok(fresh) => {
                if let Ok(mut l) = self.loaded.write() {
                    *l = Loaded { keys: fresh.clone(), at: Instant::now() };
                }
                fresh
            }
            Err(e) => {
                warn!("URL keys: keeping the keys read before: {e}");
                if let Ok(mut l) = self.loaded.write() {
                    l.at = Instant::now();
                }
                keys
            }
        }
    }

    /// The key that signs (the newest), if any.
    pub async fn signing(&self) -> Option<Vec<u8>> {
        self.current().await.into_iter().next()
    }
}

impl Secret {
    async fn read(&self) -> Result<Vec<Vec<u8>>, ConfigError> {
        const VAR: &str = "IMGFN_URL_KEYS_SECRET";
        let failed = |message: String| ConfigError {
            var: VAR,
            message: format!("reading secret {}: {message}", self.id),
        };
        let text = get_secret_string(&self.client, &self.id).await.map_err(|e| failed(e.to_string()))?;
        let text = text.ok_or_else(|| ConfigError {
            var: VAR,
            message: format!("secret {} has no SecretString", self.id),
        })?;
        parse(&text, VAR)
    }
}

/// Secrets Manager's GetSecretValue (its JSON 1.1 protocol): the secret's `SecretString`, if
/// it has one.
pub(crate) async fn get_secret_string(
    client: &crate::aws::AwsClient,
    id: &str,
) -> Result<Option<String>, crate::Error> {
    const OPERATION: &str = "GetSecretValue";
    let config = client.config();
    let origin = config.endpoint_for("secretsmanager").map_or_else(
        || format!("https://secretsmanager.{}.{}", config.region, config.dns_suffix()),
        str::to_owned,
    );
    let request = crate::aws::Request {
        operation: OPERATION,
        service: "secretsmanager",
        region: config.region.clone(),
        method: http::Method::POST,
        origin,
        path: "/".into(),
        query: Vec::new(),
        headers: vec![
            ("content-type".into(), "application/x-amz-json-1.1".into()),
            ("x-amz-target".into(), "secretsmanager.GetSecretValue".into()),
        ],
        body: serde_json::json!({ "SecretId": id }).to_string().into(),
    };
    let response = client.send(&request).await?;
    let body = client.body(OPERATION, response, 1 << 20).await.map_err(|e| match e {
        crate::aws::BodyError::TooLarge(n) => crate::Error::S3 {
            operation: OPERATION,
            status: None,
            code: None,
            message: format!("an answer of {n} bytes"),
        },
        crate::aws::BodyError::Failed(e) => e,
    })?;
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| crate::Error::S3 {
        operation: OPERATION,
        status: None,
        code: None,
        message: format!("the answer is not JSON: {e}"),
    })?;
    Ok(json["SecretString"].as_str().map(str::to_owned))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_lists() {
        let a = "a".repeat(32);
        let b = "b".repeat(40);
        assert_eq!(
            parse(&format!(" {a} , {b} "), "V").unwrap(),
            [a.as_bytes().to_vec(), b.as_bytes().to_vec()]
        );
        assert!(parse("", "V").is_err());
        assert!(parse("short", "V").unwrap_err().message.contains("shorter"));
        assert!(parse(&format!("{a},{a},{a}"), "V").unwrap_err().message.contains("at most 2"));
        let keys = UrlKeys::fixed(parse(&a, "V").unwrap());
        assert!(!format!("{keys:?}").contains(&a), "Debug never prints a key");
    }
}

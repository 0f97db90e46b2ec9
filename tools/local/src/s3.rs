//! A real S3-compatible endpoint on 127.0.0.1: s3s-fs (objects are plain files under a data
//! directory, one folder per bucket) behind s3s's SigV4 verification with fixed local
//! credentials, so presigned URLs are checked exactly as S3 checks them.
//!
//! What S3 notifications do deployed is done here by watching the requests: every request that
//! creates an object (PutObject and CopyObject, a `PUT` on a key without a sub-resource;
//! CompleteMultipartUpload, a `POST` with `uploadId`) and succeeds is reported as a [`Created`]
//! on a channel, after the object is stored. The caller decides which function gets it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper::body::Incoming;
use hyper::{Method, Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::service::S3Service;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The access key of the local endpoint (local use only; printed at start-up).
pub const ACCESS_KEY: &str = "imgfn-local";
/// The secret key of the local endpoint (local use only; printed at start-up).
pub const SECRET_KEY: &str = "imgfn-local-secret";
/// The region clients sign for.
pub const REGION: &str = "us-east-1";

/// An object that was created, as S3 would report it to a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub bucket: String,
    /// The decoded key.
    pub key: String,
    /// `ObjectCreated:Put`, `ObjectCreated:Copy` or `ObjectCreated:CompleteMultipartUpload`.
    pub event_name: &'static str,
}

/// A running local S3 endpoint. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct LocalS3 {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Where the buckets live on disk.
    pub root: PathBuf,
    task: JoinHandle<()>,
}

impl LocalS3 {
    /// Serves the buckets under `root` on `addr` (port 0: any free port), creating `buckets`
    /// (folders under `root`) when missing. Every object created is sent on `created`.
    pub async fn start(
        root: &Path,
        addr: SocketAddr,
        buckets: &[&str],
        created: mpsc::UnboundedSender<Created>,
    ) -> std::io::Result<LocalS3> {
        for bucket in buckets {
            std::fs::create_dir_all(root.join(bucket))?;
        }
        let root = root.canonicalize()?;
        let fs = s3s_fs::FileSystem::new(&root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = Notifying { inner: builder.build(), created };
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                tokio::spawn(conn);
            }
        });
        Ok(LocalS3 { addr, root, task })
    }

    /// `http://<addr>`: the `--endpoint-url` / `AWS_ENDPOINT_URL` of this endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The s3s service, reporting the objects its successful requests created.
#[derive(Clone)]
struct Notifying {
    inner: S3Service,
    created: mpsc::UnboundedSender<Created>,
}

impl hyper::service::Service<Request<Incoming>> for Notifying {
    type Response = <S3Service as hyper::service::Service<Request<Incoming>>>::Response;
    type Error = <S3Service as hyper::service::Service<Request<Incoming>>>::Error;
    type Future = <S3Service as hyper::service::Service<Request<Incoming>>>::Future;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let copy = req.headers().contains_key("x-amz-copy-source");
        let created = object_created(req.method(), req.uri(), copy);
        let response = hyper::service::Service::call(&self.inner, req);
        let sender = self.created.clone();
        Box::pin(async move {
            let response = response.await?;
            if let Some(created) = created.filter(|_| response.status().is_success()) {
                // A closed channel means the stack is stopping: the object is stored, unannounced.
                let _ = sender.send(created);
            }
            Ok(response)
        })
    }
}

/// Sub-resources whose `PUT` does not create an object (`?tagging`, `?acl`, an UploadPart...).
const NOT_CREATING: [&str; 8] =
    ["partNumber", "uploadId", "tagging", "acl", "retention", "legal-hold", "torrent", "restore"];

/// The object a path-style request creates when it succeeds, if it is one that creates an object.
fn object_created(method: &Method, uri: &Uri, copy: bool) -> Option<Created> {
    let params: Vec<&str> =
        uri.query().unwrap_or("").split('&').map(|p| p.split('=').next().unwrap_or("")).collect();
    let has = |name: &str| params.contains(&name);
    let event_name = if method == Method::PUT && !NOT_CREATING.iter().any(|p| has(p)) {
        if copy {
            "ObjectCreated:Copy"
        } else {
            "ObjectCreated:Put"
        }
    } else if method == Method::POST && has("uploadId") {
        "ObjectCreated:CompleteMultipartUpload"
    } else {
        return None;
    };
    let path = uri.path().strip_prefix('/')?;
    let (bucket, key) = path.split_once('/')?;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|s| s.into_owned());
    let (bucket, key) = (decode(bucket)?, decode(key)?);
    if bucket.is_empty() || key.is_empty() {
        return None;
    }
    Some(Created { bucket, key, event_name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(method: Method, uri: &str, copy: bool) -> Option<(String, String, &'static str)> {
        object_created(&method, &uri.parse().unwrap_or_default(), copy)
            .map(|c| (c.bucket, c.key, c.event_name))
    }

    #[test]
    fn recognises_the_requests_that_create_objects() {
        let put = |uri| created(Method::PUT, uri, false);
        assert_eq!(
            put("/src/thumbnail/a%20b.jpg?x-id=PutObject"),
            Some(("src".into(), "thumbnail/a b.jpg".into(), "ObjectCreated:Put"))
        );
        // Presigned PUT: the signature is in the query.
        assert_eq!(
            put("/src/uploads/x.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab").map(|c| c.1),
            Some("uploads/x.jpg".into())
        );
        assert_eq!(created(Method::PUT, "/src/k.jpg", true).map(|c| c.2), Some("ObjectCreated:Copy"));
        assert_eq!(
            created(Method::POST, "/src/big.jpg?uploadId=abc", false).map(|c| c.2),
            Some("ObjectCreated:CompleteMultipartUpload")
        );
        for (method, uri) in [
            (Method::PUT, "/src/big.jpg?partNumber=1&uploadId=abc"),
            (Method::PUT, "/src/k.jpg?tagging"),
            (Method::PUT, "/src"),
            (Method::PUT, "/src/"),
            (Method::POST, "/src/big.jpg?uploads"),
            (Method::GET, "/src/k.jpg"),
            (Method::DELETE, "/src/k.jpg"),
        ] {
            assert_eq!(created(method.clone(), uri, false), None, "{method} {uri}");
        }
    }
}

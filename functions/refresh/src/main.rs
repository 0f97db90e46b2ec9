//! `refresh`: when a source under a rendition prefix is written or deleted (S3 → EventBridge),
//! deletes its stored renditions and invalidates its CDN paths. All plumbing lives in
//! `imgfn-lambda` (`imgfn_lambda::refresh`).

use imgfn_lambda::refresh::Refresh;

#[tokio::main]
async fn main() -> Result<(), imgfn_lambda::BoxError> {
    imgfn_lambda::init_tracing();
    Refresh::from_env().await?.run().await
}

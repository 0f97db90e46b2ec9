//! `render`: the CDN's origin for signed rendition URLs on a miss (`GET /v1/...` through the
//! Function URL, behind CloudFront). All plumbing lives in `imgfn-lambda`
//! (`imgfn_lambda::api::render`).

use imgfn_lambda::api::{Api, Route};

#[tokio::main]
async fn main() -> Result<(), imgfn_lambda::BoxError> {
    imgfn_lambda::init_tracing();
    let api = Api::from_env().await?;
    api.run(Route::Render).await
}

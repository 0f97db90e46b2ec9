//! `api-images`: the HTTP API's `GET /images/{key+}` behind API Gateway. All plumbing lives in
//! `imgfn-lambda` (`imgfn_lambda::api`).

use imgfn_lambda::api::{Api, Route};

#[tokio::main]
async fn main() -> Result<(), imgfn_lambda::BoxError> {
    imgfn_lambda::init_tracing();
    let api = Api::from_env().await?;
    api.run(Route::Images).await
}

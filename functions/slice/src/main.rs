//! `slice`: an S3-triggered Lambda function. What it does (its operation, trigger prefix and
//! default params) is the registry entry of its name; all plumbing lives in `imgfn-lambda`.

#[tokio::main]
async fn main() -> Result<(), imgfn_lambda::BoxError> {
    imgfn_lambda::runner::serve(env!("CARGO_PKG_NAME")).await
}

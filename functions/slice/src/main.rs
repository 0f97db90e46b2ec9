//! `slice`: an S3-triggered Lambda function. All plumbing lives in `imgfn-lambda`.

use imgfn_lambda::{Config, Function, OpKind};

#[tokio::main]
async fn main() -> Result<(), imgfn_lambda::BoxError> {
    imgfn_lambda::init_tracing();
    let config = Config::from_env(OpKind::Slice)?;
    let s3 = imgfn_lambda::s3::load_from_env().await;
    Function::new(config, s3).run().await
}

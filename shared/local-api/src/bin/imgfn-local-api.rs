//! `imgfn-local-api`: serves the HTTP API on 127.0.0.1 for trying it with curl. Reads the same
//! variables as the Lambda functions (`IMGFN_SOURCE_BUCKET`, `IMGFN_OUTPUT_BUCKET`,
//! `AWS_ENDPOINT_URL`, credentials, ...) plus `IMGFN_LOCAL_API_ADDR` (default
//! `127.0.0.1:8015`). Local use only: it honours the `x-imgfn-local-sub` identity header.

use std::net::SocketAddr;

use imgfn_lambda::api::Api;

#[tokio::main]
async fn main() -> Result<(), imgfn_lambda::BoxError> {
    imgfn_lambda::init_tracing();
    let addr: SocketAddr = std::env::var("IMGFN_LOCAL_API_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8015".into())
        .parse()
        .map_err(|e| format!("IMGFN_LOCAL_API_ADDR: {e}"))?;
    let api = Api::from_env().await?;
    let server = local_api::LocalApi::start(api, addr).await?;
    println!("imgfn HTTP API on {} (Ctrl-C stops it)", server.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

//! `imgfn-local`: the whole stack on 127.0.0.1 (see the crate docs). Ctrl-C stops it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use imgfn_local::s3::{ACCESS_KEY, REGION, SECRET_KEY};
use imgfn_local::{LocalStack, StackConfig};

/// How long running invocations may finish after Ctrl-C.
const GRACE: Duration = Duration::from_secs(30);

/// Runs imgfn locally: an S3 endpoint with the source and output buckets, the S3-triggered
/// functions (invoked when an object lands under their prefix) and the HTTP API.
#[derive(Debug, Parser)]
#[command(name = "imgfn-local", version)]
struct Args {
    /// Where the buckets live (one folder per bucket; objects are plain files).
    #[arg(long, default_value = ".imgfn-local")]
    data_dir: PathBuf,
    /// The S3 endpoint's address (loopback only; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8014")]
    s3_addr: SocketAddr,
    /// The HTTP API's address (loopback only; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8015")]
    api_addr: SocketAddr,
    /// The CDN's address: signed rendition URLs (/v1/...), stored outputs (/o/...) and the demo
    /// page at / (loopback only; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8016")]
    edge_addr: SocketAddr,
    #[arg(long, default_value = "imgfn-source")]
    source_bucket: String,
    #[arg(long, default_value = "imgfn-output")]
    output_bucket: String,
    /// The memory (MB) the functions are told they have, as Lambda tells them; their pixel
    /// limits follow it (1024: the template's default).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(128..=10240))]
    memory_mb: u64,
    /// Open the API to callers without an identity, all in one shared scope, as a deployment
    /// with `AllowOpenApi=true` and no authorizer. Without it, as deployed with an authorizer, a
    /// request needs the local stand-in for one: the header `x-imgfn-local-sub: <user id>`.
    #[arg(long)]
    open_api: bool,
    /// A variable for every function and the API, as the template would set it
    /// (`--var IMGFN_MAX_PIXELS=20000000`); repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
}

fn parse_var(raw: &str) -> Result<(String, String), String> {
    let (name, value) = raw.split_once('=').ok_or("expected NAME=VALUE")?;
    if !name.starts_with("IMGFN_") {
        return Err(format!("{name}: only IMGFN_* variables configure the functions"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Set before any thread starts: the functions' INFO lines, without the SDK's chatter.
    if std::env::var_os("RUST_LOG").is_none() && std::env::var_os("AWS_LAMBDA_LOG_LEVEL").is_none() {
        std::env::set_var("RUST_LOG", "info,s3s=warn,s3s_fs=warn");
    }
    imgfn_lambda::init_tracing();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(e) => {
            eprintln!("imgfn-local: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let mut config = StackConfig::new();
    config.data_dir = args.data_dir;
    config.s3_addr = args.s3_addr;
    config.api_addr = args.api_addr;
    config.edge_addr = args.edge_addr;
    config.source_bucket = args.source_bucket;
    config.output_bucket = args.output_bucket;
    config.memory_mb = args.memory_mb;
    if args.open_api {
        config.vars.push(("IMGFN_API_ACCESS".into(), "open".into()));
    }
    config.vars.extend(args.vars);
    let stack = match LocalStack::start(config).await {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("imgfn-local: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_banner(&stack);
    wait_for_stop().await;
    println!("stopping: the API and S3 notifications are off; running invocations may finish");
    let unfinished = stack.shutdown(GRACE).await;
    if unfinished > 0 {
        println!("stopped; {unfinished} invocation(s) did not finish within {} s", GRACE.as_secs());
        return ExitCode::FAILURE;
    }
    println!("stopped");
    ExitCode::SUCCESS
}

fn print_banner(stack: &LocalStack) {
    let c = &stack.config;
    let s3 = stack.s3.url();
    let triggers: Vec<String> = stack.triggers().iter().map(|(p, op)| format!("{p} -> {op}")).collect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "imgfn local stack (Ctrl-C stops it)\n\
         S3 endpoint: {s3}  (access key {ACCESS_KEY}, secret key {SECRET_KEY}, region {REGION})\n\
         buckets: {source} (source: uploads and triggers), {output} (outputs, error records); files under {dir}\n\
         triggers in {source}: {triggers}; uploads/ triggers nothing\n\
         HTTP API: {api}  (POST /uploads, POST /process, GET /images/{{key}}); {access}\n\
         CDN: {edge}  (demo page at /; signed URLs /v1/<key>/<steps>/<sig> and /o/<key>/<sig>, signed with {url_key}: imgfn url ...)\n\
         \n\
         try:\n  \
           export AWS_ACCESS_KEY_ID={ACCESS_KEY} AWS_SECRET_ACCESS_KEY={SECRET_KEY} AWS_DEFAULT_REGION={REGION}\n  \
           aws s3 cp samples/photo.jpg s3://{source}/thumbnail/ --endpoint-url {s3}\n  \
           aws s3 ls s3://{output}/thumbnail/ --endpoint-url {s3}\n\
         ready",
        source = c.source_bucket,
        output = c.output_bucket,
        dir = stack.s3.root.display(),
        triggers = triggers.join(", "),
        api = stack.api.url(),
        edge = stack.edge.url(),
        url_key = if stack.config.vars.iter().rev().find(|(k, _)| k == "IMGFN_URL_KEYS").map(|(_, v)| v.as_str())
            == Some(imgfn_local::LOCAL_URL_KEY)
        {
            format!("the local key {}", imgfn_local::LOCAL_URL_KEY)
        } else {
            "the IMGFN_URL_KEYS given".to_owned()
        },
        access = match stack.api_access() {
            imgfn_lambda::api::config::Access::Open => "open: callers without an identity share one scope",
            imgfn_lambda::api::config::Access::Authorizer => {
                "callers need an identity, as behind a JWT authorizer: header x-imgfn-local-sub: <user id>"
            }
        },
    );
    let _ = out.flush();
}

/// Ctrl-C, or SIGTERM (a process manager or `kill`).
async fn wait_for_stop() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return ctrl_c.await,
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

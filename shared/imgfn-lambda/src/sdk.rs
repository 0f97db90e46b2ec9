//! The AWS SDK's configuration: every client the functions (and the local stack and the tests)
//! build starts from [`defaults`].

use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// `aws_config::defaults` at the latest behaviour version (credentials, region and
/// `AWS_ENDPOINT_URL` from the environment, as before) with [`https_client`] as its HTTP client.
pub fn defaults() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client())
}

/// The SDK's hyper + rustls HTTPS client with ring as rustls' crypto provider instead of the
/// default aws-lc-rs: ~1.5 MB less in every function binary (workspace Cargo.toml). Trusted
/// roots are the system's, as the default client's.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

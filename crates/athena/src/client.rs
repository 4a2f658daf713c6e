//! The Athena client, configured from the one place that reads the environment.
//!
//! Region, endpoint override and explicit keys come from [`StoreConfig`] (its `AWS_*` values as
//! object_store keys), the same values the S3 data root uses, so S3 and Athena always talk to the
//! same account and endpoint. Without explicit keys the SDK's default credentials chain runs
//! (environment, profile, web identity, the ECS task role, instance metadata).
//!
//! HTTPS goes through hyper + rustls on `ring`, which object_store already compiles; the SDK's
//! default client would add aws-lc-rs, a large C build.

use std::time::Duration;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_sdk_athena::config::retry::RetryConfig;
use aws_sdk_athena::config::timeout::TimeoutConfig;
use aws_sdk_athena::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use object_store::aws::AmazonS3ConfigKey;
use repurchase_core::StoreConfig;

use crate::error::{AthenaError, Result};

use super::AthenaSettings;

/// Each API call (not a query) gives up after this long; the SDK then retries it.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn value(cfg: &StoreConfig, key: AmazonS3ConfigKey) -> Option<String> {
    cfg.s3
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Builds the client. Fails (bad input) only when no region is configured.
pub async fn build(cfg: &StoreConfig, settings: &AthenaSettings) -> Result<aws_sdk_athena::Client> {
    let region = value(cfg, AmazonS3ConfigKey::Region)
        .or_else(|| value(cfg, AmazonS3ConfigKey::DefaultRegion))
        .map(Region::new)
        .ok_or_else(|| {
            AthenaError::Settings(
                "--source athena needs an AWS region: set AWS_REGION (the ECS task definition does)"
                    .into(),
            )
        })?;
    let http = https_client();
    // Throttling and 5xx answers are retried inside the SDK with jittered exponential backoff; what
    // still fails after that is reported as transient.
    let retry = RetryConfig::standard()
        .with_max_attempts(settings.api_max_attempts)
        .with_initial_backoff(settings.api_initial_backoff);
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build();
    let mut builder = aws_sdk_athena::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(region.clone())
        .http_client(http.clone())
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(endpoint) = value(cfg, AmazonS3ConfigKey::Endpoint) {
        builder = builder.endpoint_url(endpoint);
    }
    match (
        value(cfg, AmazonS3ConfigKey::AccessKeyId),
        value(cfg, AmazonS3ConfigKey::SecretAccessKey),
    ) {
        (Some(key_id), Some(secret)) => {
            let token = value(cfg, AmazonS3ConfigKey::Token);
            builder = builder.credentials_provider(Credentials::new(
                key_id,
                secret,
                token,
                None,
                "repurchase-store-config",
            ));
        }
        _ => {
            let provider_config = ProviderConfig::without_region()
                .with_region(Some(region.clone()))
                .with_http_client(http);
            let chain = DefaultCredentialsChain::builder()
                .region(region)
                .configure(provider_config)
                .build()
                .await;
            builder = builder.credentials_provider(chain);
        }
    }
    Ok(aws_sdk_athena::Client::from_conf(builder.build()))
}

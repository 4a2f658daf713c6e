//! Object-store configuration, read from the environment in exactly one place.
//!
//! Workers call [`StoreConfig::from_env`] once at start-up and pass the typed value down; nothing
//! else in the code base reads `AWS_*` variables. This keeps tests hermetic (they build a config
//! by hand) and makes it obvious which settings a task definition must provide.

use std::fmt;
use std::time::Duration;

use object_store::aws::AmazonS3ConfigKey;
use object_store::{BackoffConfig, RetryConfig};

/// Settings for `s3://` data roots.
///
/// What is read, with the precedence the AWS SDKs use:
/// - region: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`;
/// - endpoint: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else AWS itself (an `http://`
///   endpoint — moto, MinIO — is allowed without further flags);
/// - credentials, first that is configured: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`
///   (+ `AWS_SESSION_TOKEN`); web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`); the
///   ECS task role (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, set by the ECS agent); EKS pod
///   identity (`AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`);
///   finally EC2 instance metadata, unless `AWS_EC2_METADATA_DISABLED=true`. `AWS_PROFILE` and
///   `~/.aws` files are not read (object_store does not implement them).
/// - retries: `REPURCHASE_STORE_MAX_RETRIES` (default 10) and
///   `REPURCHASE_STORE_RETRY_TIMEOUT_SECS` (default 180), with exponential backoff and jitter.
#[derive(Clone)]
pub struct StoreConfig {
    /// `AWS_*` variables that object_store understands, as typed keys.
    pub s3: Vec<(AmazonS3ConfigKey, String)>,
    /// Retries of a single request on 5xx, timeouts and dropped connections.
    pub max_retries: usize,
    /// Give up retrying one request after this long; the worker then exits as transient.
    pub retry_timeout: Duration,
    /// `AWS_EC2_METADATA_DISABLED=true`: no instance-metadata fallback for credentials, so a root
    /// without any other credential source fails at once with a clear message instead of waiting
    /// on 169.254.169.254.
    pub ec2_metadata_disabled: bool,
}

/// The same defaults as [`StoreConfig::from_vars`] over no variables, so a config built by hand
/// still retries.
impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            s3: Vec::new(),
            max_retries: DEFAULT_MAX_RETRIES,
            retry_timeout: DEFAULT_RETRY_TIMEOUT,
            ec2_metadata_disabled: false,
        }
    }
}

const DEFAULT_MAX_RETRIES: usize = 10;
/// object_store advises staying under 5 minutes: retried requests are not re-signed.
const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(180);

impl StoreConfig {
    /// Reads `AWS_*` (region, endpoint override, credentials, ECS container credentials, …) and
    /// `REPURCHASE_STORE_MAX_RETRIES` / `REPURCHASE_STORE_RETRY_TIMEOUT_SECS`.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// Same as [`StoreConfig::from_env`] over an explicit list of variables (for tests).
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut cfg = StoreConfig::default();
        let mut endpoint_is_http = false;
        for (key, value) in vars {
            let value: String = value.into();
            match key.as_ref() {
                "REPURCHASE_STORE_MAX_RETRIES" => match value.trim().parse() {
                    Ok(n) => cfg.max_retries = n,
                    Err(_) => {
                        tracing::warn!(value, "ignoring REPURCHASE_STORE_MAX_RETRIES: not a number")
                    }
                },
                "REPURCHASE_STORE_RETRY_TIMEOUT_SECS" => match value.trim().parse() {
                    Ok(n) => cfg.retry_timeout = Duration::from_secs(n),
                    Err(_) => tracing::warn!(
                        value,
                        "ignoring REPURCHASE_STORE_RETRY_TIMEOUT_SECS: not a number of seconds"
                    ),
                },
                "AWS_EC2_METADATA_DISABLED" => {
                    cfg.ec2_metadata_disabled = value.trim().eq_ignore_ascii_case("true");
                }
                k if k.starts_with("AWS_") => {
                    if let Ok(parsed) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                        if matches!(
                            parsed,
                            AmazonS3ConfigKey::Endpoint | AmazonS3ConfigKey::S3Endpoint
                        ) && value.starts_with("http://")
                        {
                            endpoint_is_http = true;
                        }
                        cfg.s3.push((parsed, value));
                    }
                }
                _ => {}
            }
        }
        // A plain-http endpoint is only ever a local test server (moto, MinIO); allow it rather than
        // failing with a TLS error nobody can act on.
        if let Ok(allow) = "aws_allow_http".parse::<AmazonS3ConfigKey>()
            && endpoint_is_http
            && !cfg.s3.iter().any(|(k, _)| *k == allow)
        {
            cfg.s3.push((allow, "true".into()));
        }
        // Sorted so the config is the same whatever the order of the environment (and because
        // `aws_default_region` sorts before `aws_region`, `AWS_REGION` wins, as in the AWS SDKs).
        cfg.s3.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        cfg
    }

    /// The retry policy handed to object_store: at most `max_retries` retries of one request,
    /// none after `retry_timeout`, sleeping 100 ms, then up to twice the previous sleep (random
    /// jitter), at most 15 s, between attempts.
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(15),
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }

    /// The value of one `AWS_*` setting, if given.
    pub fn get(&self, key: AmazonS3ConfigKey) -> Option<&str> {
        self.s3
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether any credential source other than instance metadata is configured.
    pub fn has_explicit_credentials(&self) -> bool {
        use AmazonS3ConfigKey as K;
        let has = |k| self.get(k).is_some_and(|v| !v.is_empty());
        has(K::AccessKeyId)
            || has(K::SecretAccessKey)
            || (has(K::WebIdentityTokenFile) && has(K::RoleArn))
            || has(K::ContainerCredentialsRelativeUri)
            || (has(K::ContainerCredentialsFullUri) && has(K::ContainerAuthorizationTokenFile))
            || self
                .get(K::SkipSignature)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Where S3 requests go, for error messages: the endpoint override, else the region.
    pub fn s3_location(&self) -> String {
        use AmazonS3ConfigKey as K;
        if let Some(endpoint) = self.get(K::S3Endpoint).or(self.get(K::Endpoint)) {
            return format!("endpoint {endpoint}");
        }
        let region = self
            .get(K::Region)
            .or(self.get(K::DefaultRegion))
            .unwrap_or("us-east-1");
        format!("region {region}")
    }
}

/// Never print credentials: only key names, and values of keys that are not secret.
impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self
            .s3
            .iter()
            .map(|(k, v)| {
                let name = k.as_ref();
                let secret = name.contains("secret")
                    || name.contains("token")
                    || name.contains("key_id")
                    || name.contains("customer_key");
                if secret {
                    format!("{name}=<redacted>")
                } else {
                    format!("{name}={v}")
                }
            })
            .collect();
        f.debug_struct("StoreConfig")
            .field("s3", &shown)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .field("ec2_metadata_disabled", &self.ec2_metadata_disabled)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_aws_vars_and_redacts_secrets() {
        let cfg = StoreConfig::from_vars([
            ("AWS_REGION".to_string(), "eu-west-1".to_string()),
            (
                "AWS_ENDPOINT_URL".to_string(),
                "http://127.0.0.1:9000".to_string(),
            ),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "hunter2".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ]);
        let names: Vec<&str> = cfg.s3.iter().map(|(k, _)| k.as_ref()).collect();
        assert!(names.contains(&"aws_region"));
        assert!(
            names.iter().any(|n| n.ends_with("allow_http")),
            "http endpoint implies allow_http: {names:?}"
        );
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("eu-west-1"));
    }

    #[test]
    fn retry_settings_reach_object_store_with_backoff() {
        let cfg = StoreConfig::from_vars([
            ("REPURCHASE_STORE_MAX_RETRIES", "3"),
            ("REPURCHASE_STORE_RETRY_TIMEOUT_SECS", "7"),
        ]);
        let retry = cfg.retry_config();
        assert_eq!(retry.max_retries, 3);
        assert_eq!(retry.retry_timeout, Duration::from_secs(7));
        assert_eq!(retry.backoff.init_backoff, Duration::from_millis(100));
        assert!(retry.backoff.base > 1.0, "backoff must grow");
        assert!(retry.backoff.max_backoff >= Duration::from_secs(1));

        // No variables (and a hand-built default) keep retrying: 10 retries within 3 minutes.
        for cfg in [
            StoreConfig::from_vars(Vec::<(String, String)>::new()),
            StoreConfig::default(),
        ] {
            assert_eq!(cfg.retry_config().max_retries, 10);
            assert_eq!(cfg.retry_config().retry_timeout, Duration::from_secs(180));
        }
        // A typo does not silently disable retries.
        let typo = StoreConfig::from_vars([("REPURCHASE_STORE_MAX_RETRIES", "three")]);
        assert_eq!(typo.max_retries, 10);
    }

    #[test]
    fn aws_precedence_and_ecs_task_role() {
        use AmazonS3ConfigKey as K;
        let cfg = StoreConfig::from_vars([
            ("AWS_DEFAULT_REGION", "us-west-2"),
            ("AWS_REGION", "eu-central-1"),
            ("AWS_ENDPOINT_URL", "https://example.invalid"),
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000"),
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/abc",
            ),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        assert_eq!(cfg.get(K::Region), Some("eu-central-1"));
        assert_eq!(
            cfg.get(K::ContainerCredentialsRelativeUri),
            Some("/v2/credentials/abc")
        );
        assert!(cfg.has_explicit_credentials(), "the ECS task role counts");
        assert!(cfg.ec2_metadata_disabled);
        // The S3-specific endpoint wins, and being http it is allowed.
        assert_eq!(cfg.s3_location(), "endpoint http://127.0.0.1:5000");
        assert!(format!("{cfg:?}").contains("allow_http=true"), "{cfg:?}");

        let bare = StoreConfig::from_vars([("AWS_DEFAULT_REGION", "us-west-2")]);
        assert_eq!(bare.s3_location(), "region us-west-2");
        assert!(!bare.has_explicit_credentials());
        assert!(!bare.ec2_metadata_disabled);
        let half_web_identity =
            StoreConfig::from_vars([("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token")]);
        assert!(!half_web_identity.has_explicit_credentials());
    }
}

//! Object-store configuration, read from the environment in exactly one place.
//!
//! Workers call [`StoreConfig::from_env`] once at start-up and pass the typed value down; nothing
//! else in the code base reads `AWS_*` variables. This keeps tests hermetic (they build a config
//! by hand) and makes it obvious which settings a task definition must provide.

use std::fmt;
use std::time::Duration;

use object_store::aws::AmazonS3ConfigKey;

/// Settings for `s3://` data roots. Credentials come from the standard AWS chain that
/// object_store implements: explicit keys, web identity, the ECS task role
/// (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`) or instance metadata.
#[derive(Clone, Default)]
pub struct StoreConfig {
    /// `AWS_*` variables that object_store understands, as typed keys.
    pub s3: Vec<(AmazonS3ConfigKey, String)>,
    /// Retries of a single request on 5xx, timeouts and dropped connections.
    pub max_retries: usize,
    /// Give up retrying one request after this long; the worker then exits as transient.
    pub retry_timeout: Duration,
}

impl StoreConfig {
    /// Reads `AWS_*` (region, endpoint override, credentials, ECS container credentials, …) and
    /// `REPURCHASE_STORE_MAX_RETRIES` / `REPURCHASE_STORE_RETRY_TIMEOUT_SECS`.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// Same as [`StoreConfig::from_env`] over an explicit list of variables (for tests).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut cfg = StoreConfig {
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
            ..Default::default()
        };
        let mut endpoint_is_http = false;
        for (key, value) in vars {
            match key.as_str() {
                "REPURCHASE_STORE_MAX_RETRIES" => {
                    if let Ok(n) = value.parse() {
                        cfg.max_retries = n;
                    }
                }
                "REPURCHASE_STORE_RETRY_TIMEOUT_SECS" => {
                    if let Ok(n) = value.parse() {
                        cfg.retry_timeout = Duration::from_secs(n);
                    }
                }
                k if k.starts_with("AWS_") => {
                    if let Ok(parsed) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                        if matches!(parsed, AmazonS3ConfigKey::Endpoint)
                            && value.starts_with("http://")
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
        if let Ok(allow) = "aws_allow_http".parse::<AmazonS3ConfigKey>() {
            if endpoint_is_http && !cfg.s3.iter().any(|(k, _)| *k == allow) {
                cfg.s3.push((allow, "true".into()));
            }
        }
        cfg.s3.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        cfg
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
}

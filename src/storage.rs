//! URLs to object stores (SPEC §1): local paths, `file://`, `memory://`,
//! `s3://`, `gs://`, `az://`/`abfs://`. Cloud credentials and endpoints come
//! from each cloud's usual environment variables, read by `object_store`'s
//! builders. Stores are shared per bucket, so `memory://` input and
//! warehouse in one process see the same objects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::aws::AmazonS3ConfigKey;
use object_store::azure::AzureConfigKey;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::gcp::GoogleConfigKey;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreScheme, RetryConfig};
use url::Url;

use crate::error::{Error, Result};

/// A place in an object store.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// `scheme://authority`, to print full locations.
    pub base: String,
    /// Path inside the store, without glob patterns.
    pub path: Path,
}

impl Location {
    /// The printable URL of `path` in this store. Never holds credentials.
    pub fn url_of(&self, path: &Path) -> String {
        format!("{}/{}", self.base, path)
    }

    pub fn url(&self) -> String {
        self.url_of(&self.path)
    }

    pub fn child(&self, relative: &str) -> Path {
        relative
            .split('/')
            .filter(|p| !p.is_empty())
            .fold(self.path.clone(), |path, part| path.clone().join(part))
    }
}

/// How remote stores are talked to: retries with exponential backoff on
/// transient faults (5xx, dropped connections, timeouts).
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_retries: usize,
    pub retry_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl StoreOptions {
    fn retry(&self) -> RetryConfig {
        RetryConfig {
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
            ..RetryConfig::default()
        }
    }

    /// Set as a config key, so that the client options the builders read
    /// from the environment (`AWS_ALLOW_HTTP`, …) stay.
    fn timeout(&self) -> String {
        humantime::format_duration(self.request_timeout).to_string()
    }
}

/// Object stores by `scheme://authority`.
#[derive(Debug, Default)]
pub struct Stores {
    options: StoreOptions,
    cache: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl Stores {
    pub fn new(options: StoreOptions) -> Self {
        Stores { options, cache: Mutex::default() }
    }

    /// Resolves a URL or local path. `text` is the path part of the URL
    /// (decoded), returned for glob matching.
    pub fn resolve(&self, url: &str) -> Result<(Location, String)> {
        let parsed = if has_scheme(url) {
            Url::parse(url).map_err(|e| Error::Url { url: url.to_owned(), reason: e.to_string() })?
        } else {
            let absolute = std::path::absolute(url)
                .map_err(|e| Error::Url { url: url.to_owned(), reason: e.to_string() })?;
            Url::from_file_path(&absolute)
                .map_err(|()| Error::Url { url: url.to_owned(), reason: "not an absolute path".into() })?
        };
        // `memory://name/...` names one in-memory store per process.
        let scheme = match parsed.scheme() {
            "memory" => ObjectStoreScheme::Memory,
            _ => {
                ObjectStoreScheme::parse(&parsed)
                    .map_err(|e| Error::Url { url: url.to_owned(), reason: e.to_string() })?
                    .0
            }
        };
        let base = match scheme {
            ObjectStoreScheme::Local => "file://".to_owned(),
            _ => format!("{}://{}", parsed.scheme(), parsed.authority()),
        };
        let text = percent_decode(parsed.path());
        let text = text.trim_start_matches('/').to_owned();
        let store =
            self.store(&base, &parsed, scheme).map_err(|source| Error::Store { url: redact(url), source })?;
        let literal = literal_prefix(&text);
        let path =
            Path::parse(literal).map_err(|e| Error::Url { url: url.to_owned(), reason: e.to_string() })?;
        Ok((Location { store, base, path }, text))
    }

    /// Registers a store for `base` (tests use it to share an in-memory store).
    pub fn register(&self, base: &str, store: Arc<dyn ObjectStore>) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(base.to_owned(), store);
    }

    fn store(
        &self,
        base: &str,
        url: &Url,
        scheme: ObjectStoreScheme,
    ) -> object_store::Result<Arc<dyn ObjectStore>> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = cache.get(base) {
            return Ok(Arc::clone(store));
        }
        let store: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::Local => Arc::new(LocalFileSystem::new()),
            ObjectStoreScheme::Memory => Arc::new(InMemory::new()),
            ObjectStoreScheme::AmazonS3 => Arc::new(
                AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .with_retry(self.options.retry())
                    .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), self.options.timeout())
                    .build()?,
            ),
            ObjectStoreScheme::GoogleCloudStorage => Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(self.options.retry())
                    .with_config(GoogleConfigKey::Client(ClientConfigKey::Timeout), self.options.timeout())
                    .build()?,
            ),
            ObjectStoreScheme::MicrosoftAzure => Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(self.options.retry())
                    .with_config(AzureConfigKey::Client(ClientConfigKey::Timeout), self.options.timeout())
                    .build()?,
            ),
            other => {
                return Err(object_store::Error::NotSupported {
                    source: format!("unsupported scheme {other:?}").into(),
                });
            }
        };
        cache.insert(base.to_owned(), Arc::clone(&store));
        Ok(store)
    }
}

fn has_scheme(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Is there a glob pattern in this path?
pub fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

/// The folders of `text` before its first glob pattern.
pub fn literal_prefix(text: &str) -> &str {
    match text.find(['*', '?', '[', '{']) {
        Some(i) => text[..i].rsplit_once('/').map_or("", |(dir, _)| dir),
        None => text,
    }
}

/// Drops user info from a URL before it is printed.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() || !u.username().is_empty() => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_prefixes() {
        assert_eq!(literal_prefix("logs/2024-01-*/x.gz"), "logs");
        assert_eq!(literal_prefix("logs/day=1/*.gz"), "logs/day=1");
        assert_eq!(literal_prefix("*.gz"), "");
        assert_eq!(literal_prefix("logs/a"), "logs/a");
    }

    #[test]
    fn urls_and_paths() {
        let stores = Stores::default();
        let (loc, text) = stores.resolve("memory://bucket/logs/a.json").unwrap();
        assert_eq!(loc.base, "memory://bucket");
        assert_eq!(text, "logs/a.json");
        assert_eq!(loc.url(), "memory://bucket/logs/a.json");
        let (loc, _) = stores.resolve("/tmp/x/y").unwrap();
        assert_eq!(loc.url(), "file:///tmp/x/y");
        let (loc, text) = stores.resolve("file:///tmp/a%20b/*.gz").unwrap();
        assert_eq!(text, "tmp/a b/*.gz");
        assert_eq!(loc.path.as_ref(), "tmp/a b");
    }

    #[test]
    fn secrets_are_not_printed() {
        assert_eq!(redact("s3://key:secret@bucket/x"), "s3://bucket/x");
    }
}

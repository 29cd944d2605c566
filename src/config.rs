//! Validated settings, built once from the command line. The pipeline
//! never sees clap.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use bytesize::ByteSize;
use chrono::{DateTime, Utc};

use crate::cli::{BuildArgs, LoadArgs};
use crate::error::{Error, Result};
use crate::pipeline::read::ReadOptions;
use crate::storage::StoreOptions;

#[derive(Debug, Clone)]
pub struct WarehouseConfig {
    pub warehouse: String,
    pub memory_limit: u64,
    pub spill_dir: Option<PathBuf>,
    /// The run's start: `loaded_at` and the run id come from it.
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub inputs: Vec<String>,
    pub warehouse: WarehouseConfig,
    pub max_line_bytes: usize,
    pub max_columns: usize,
    pub dedup_window: Duration,
    pub email_from_user_id: bool,
    pub max_reject_ratio: f64,
    pub read: ReadOptions,
    pub batch_rows: usize,
    /// Stage every event in the spill (see [`crate::pipeline::direct`]).
    pub through_spill: bool,
    /// Partitions written at once.
    pub threads: usize,
    /// Show a progress bar when stderr is a terminal.
    pub progress: bool,
    pub dry_run: bool,
}

impl WarehouseConfig {
    pub fn from_args(args: &BuildArgs) -> Result<Self> {
        let now = match &args.now {
            Some(text) => DateTime::parse_from_rfc3339(text)
                .map_err(|e| Error::Config(format!("--now {text:?}: {e}")))?
                .with_timezone(&Utc),
            None => Utc::now(),
        };
        Ok(WarehouseConfig {
            warehouse: args.warehouse.clone(),
            memory_limit: size("--memory-limit", &args.memory_limit)?,
            spill_dir: args.spill_dir.clone(),
            now,
        })
    }
}

impl LoadConfig {
    pub fn from_args(args: &LoadArgs) -> Result<Self> {
        let max_line_bytes = size("--max-line-bytes", &args.max_line_bytes)?;
        if max_line_bytes == 0 {
            return Err(Error::Config("--max-line-bytes must be above 0".into()));
        }
        if args.max_reject_ratio.is_nan() || args.max_reject_ratio < 0.0 {
            return Err(Error::Config("--max-reject-ratio must be 0 or more".into()));
        }
        let dedup_window = duration("--dedup-window", &args.dedup_window)?;
        Ok(LoadConfig {
            inputs: args.input.clone(),
            warehouse: WarehouseConfig::from_args(&args.build)?,
            max_line_bytes: usize::try_from(max_line_bytes)
                .map_err(|_| Error::Config("--max-line-bytes is too large".into()))?,
            max_columns: args.max_columns,
            dedup_window,
            email_from_user_id: args.email_from_user_id,
            max_reject_ratio: args.max_reject_ratio,
            read: ReadOptions { chunk_bytes: args.chunk_bytes, buffer_bytes: args.buffer_bytes.max(1) },
            batch_rows: args.batch_rows.max(1),
            through_spill: args.through_spill,
            threads: args
                .build
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
            progress: true,
            dry_run: args.dry_run,
        })
    }
}

/// Store settings from the flags every command has.
pub fn store_options(args: &BuildArgs) -> Result<StoreOptions> {
    Ok(StoreOptions {
        max_retries: args.max_retries,
        retry_timeout: duration("--retry-timeout", &args.retry_timeout)?,
        request_timeout: duration("--request-timeout", &args.request_timeout)?,
    })
}

fn duration(flag: &str, text: &str) -> Result<Duration> {
    humantime::parse_duration(text).map_err(|e| Error::Config(format!("{flag} {text:?}: {e}")))
}

/// A byte size such as `1048576`, `1MiB` or `2 GiB`.
fn size(flag: &str, text: &str) -> Result<u64> {
    ByteSize::from_str(text.trim())
        .map(|b| b.as_u64())
        .map_err(|e| Error::Config(format!("{flag} {text:?} is not a size such as 512MiB: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size("x", "1MiB").unwrap(), 1 << 20);
        assert_eq!(size("x", "2 GiB").unwrap(), 2 << 30);
        assert_eq!(size("x", "1000").unwrap(), 1000);
        assert!(size("x", "lots").is_err());
    }

    #[test]
    fn windows() {
        assert_eq!(humantime::parse_duration("7days").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(humantime::parse_duration("7d").unwrap(), Duration::from_secs(7 * 86400));
    }
}

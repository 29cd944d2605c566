//! Errors that stop a run (SPEC §1 exit code 1). Bad lines and failed
//! source objects are not errors: they are counted in the summary.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid URL {url}: {reason}")]
    Url { url: String, reason: String },

    #[error("cannot open the object store of {url}")]
    Store {
        url: String,
        #[source]
        source: object_store::Error,
    },

    #[error("failed to list {url}")]
    List {
        url: String,
        #[source]
        source: object_store::Error,
    },

    #[error("failed to write {url}")]
    Write {
        url: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    #[error("warehouse {url}: {action} failed")]
    Warehouse {
        url: String,
        action: &'static str,
        #[source]
        source: object_store::Error,
    },

    #[error("warehouse {url} has an unreadable log entry {entry}: {reason}")]
    Log { url: String, entry: String, reason: String },

    #[error(
        "another run committed to {url} while this one ran (log version {version} exists); \
         nothing of this run was committed, run it again"
    )]
    Conflict { url: String, version: u64 },

    #[error(
        "warehouse {url} is in use by run {run_id} (host {host}, pid {pid}, since {since}); \
         wait for it to finish. If no run is active, delete {lock}"
    )]
    Locked { url: String, run_id: String, host: String, pid: u32, since: String, lock: String },

    #[error("local spill files in {dir}")]
    Spill {
        dir: String,
        #[source]
        source: io::Error,
    },

    #[error("cannot create the warehouse folder {path}")]
    LocalDir {
        path: String,
        #[source]
        source: io::Error,
    },

    #[error("DataFusion failed while {action}")]
    DataFusion {
        action: &'static str,
        #[source]
        source: datafusion::error::DataFusionError,
    },

    #[error("{0}")]
    Query(String),

    #[error("{0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

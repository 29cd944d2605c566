//! The warehouse's commit log. A run writes its files under a staging
//! prefix; one log entry, created only if absent (`PutMode::Create`), is the
//! commit; the staged files are then moved to their table folders. A run
//! that finds the latest entry's files still staged finishes moving them.
//!
//! Layout: `_identify_loader/log/<version>.json` (zero-padded, one per
//! committed run) and `_identify_loader/staging/<run_id>/<table>/...`.

use bytes::Bytes;
use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use super::columns::ColumnDef;
use crate::error::{Error, Result};
use crate::storage::Location;
use crate::summary::Summary;

const META: &str = "_identify_loader";

/// A source object as recorded when it was loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadedSource {
    pub location: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub last_modified: String,
}

/// One committed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub version: u64,
    pub run_id: String,
    pub started_at: String,
    pub committed_at: String,
    /// Data files, relative to the warehouse.
    pub files: Vec<String>,
    pub sources: Vec<LoadedSource>,
    /// Dynamic columns of `identifies` after this run.
    pub columns: Vec<ColumnDef>,
    pub summary: Summary,
}

impl LoadedSource {
    /// SPEC §7: an object is recognised by location, size and e-tag (or
    /// last-modified when the store gives no e-tag).
    pub fn key(&self) -> String {
        let version = self.e_tag.as_deref().unwrap_or(&self.last_modified);
        format!("{}\n{}\n{}", self.location, self.size, version)
    }
}

/// What the log says about the warehouse when a run starts.
#[derive(Debug, Default)]
pub struct TableState {
    pub version: u64,
    pub columns: Vec<ColumnDef>,
    /// [`LoadedSource::key`]s of every object loaded by a committed run.
    pub loaded: HashSet<String>,
}

#[derive(Debug, Clone)]
pub struct Warehouse {
    pub location: Location,
}

impl Warehouse {
    pub fn new(location: Location) -> Self {
        Warehouse { location }
    }

    pub fn meta_path(&self, relative: &str) -> Path {
        self.meta(relative)
    }

    fn meta(&self, relative: &str) -> Path {
        self.location.child(&format!("{META}/{relative}"))
    }

    pub fn staged(&self, run_id: &str, relative: &str) -> Path {
        self.meta(&format!("staging/{run_id}/{relative}"))
    }

    pub fn table_path(&self, relative: &str) -> Path {
        self.location.child(relative)
    }

    fn log_path(&self, version: u64) -> Path {
        self.meta(&format!("log/{version:020}.json"))
    }

    fn fail(&self, action: &'static str) -> impl Fn(object_store::Error) -> Error + '_ {
        move |source| Error::Warehouse { url: self.location.url(), action, source }
    }

    /// Reads the log, finishing the latest entry's commit if a crash cut it.
    pub async fn open(&self) -> Result<TableState> {
        self.state(true).await
    }

    /// Reads the log and writes nothing (`--dry-run`).
    pub async fn read_state(&self) -> Result<TableState> {
        self.state(false).await
    }

    async fn state(&self, publish: bool) -> Result<TableState> {
        let entries = self.entries().await?;
        let Some(latest) = entries.last() else {
            return Ok(TableState::default());
        };
        if publish {
            self.publish(latest).await?;
        }
        Ok(TableState {
            version: latest.version,
            columns: latest.columns.clone(),
            loaded: entries.iter().flat_map(|e| &e.sources).map(LoadedSource::key).collect(),
        })
    }

    /// Every committed run, oldest first.
    pub async fn entries(&self) -> Result<Vec<LogEntry>> {
        let log = self.meta("log");
        let metas: Vec<_> =
            self.location.store.list(Some(&log)).try_collect().await.map_err(self.fail("listing the log"))?;
        let mut versions: Vec<u64> = metas
            .iter()
            .filter_map(|m| m.location.filename()?.strip_suffix(".json")?.parse::<u64>().ok())
            .collect();
        versions.sort_unstable();
        futures::stream::iter(versions.into_iter().map(|v| self.read_entry(v)))
            .buffered(16)
            .try_collect()
            .await
    }

    async fn read_entry(&self, version: u64) -> Result<LogEntry> {
        let path = self.log_path(version);
        let bytes = self.location.store.get(&path).await.map_err(self.fail("reading the log"))?;
        let bytes = bytes.bytes().await.map_err(self.fail("reading the log"))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Log {
            url: self.location.url(),
            entry: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// Commits `entry` as the next version after `state`, then moves its
    /// files into place. Fails with [`Error::Conflict`] if another run
    /// committed that version first.
    pub async fn commit(&self, entry: &LogEntry) -> Result<()> {
        let body = serde_json::to_vec_pretty(entry).map_err(|e| Error::Log {
            url: self.location.url(),
            entry: format!("version {}", entry.version),
            reason: e.to_string(),
        })?;
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        let path = self.log_path(entry.version);
        match self.location.store.put_opts(&path, PutPayload::from(Bytes::from(body)), opts).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                return Err(Error::Conflict { url: self.location.url(), version: entry.version });
            }
            Err(e) => return Err(self.fail("writing the log")(e)),
        }
        self.publish(entry).await?;
        self.remove_staging(&entry.run_id).await
    }

    /// Deletes the staging of every run but `run_id`: called under the lock,
    /// so those runs are dead (or will fail to commit).
    pub async fn remove_dead_staging(&self, run_id: &str) -> Result<()> {
        let staging = self.meta("staging");
        let runs = self
            .location
            .store
            .list_with_delimiter(Some(&staging))
            .await
            .map_err(self.fail("listing staging"))?;
        for dir in runs.common_prefixes {
            match dir.filename() {
                Some(other) if other != run_id => {
                    tracing::info!(run = other, "removing the staged files of a run that did not commit");
                    self.remove_staging(other).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes what is left under a run's staging prefix.
    pub async fn remove_staging(&self, run_id: &str) -> Result<()> {
        let prefix = self.meta(&format!("staging/{run_id}"));
        let left: Vec<_> = self
            .location
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(self.fail("listing staging"))?;
        for meta in left {
            self.location.store.delete(&meta.location).await.map_err(self.fail("cleaning staging"))?;
        }
        // A local store leaves the empty folders behind.
        if self.location.base == "file://" {
            let _ = std::fs::remove_dir_all(format!("/{prefix}"));
        }
        Ok(())
    }

    /// Moves a committed run's staged files into their tables. Idempotent:
    /// files already moved are skipped.
    async fn publish(&self, entry: &LogEntry) -> Result<()> {
        for file in &entry.files {
            let from = self.staged(&entry.run_id, file);
            match self.location.store.rename(&from, &self.table_path(file)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.fail("moving a committed file")(e)),
            }
        }
        Ok(())
    }
}

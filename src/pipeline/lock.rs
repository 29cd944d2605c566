//! The warehouse lock: a second load on a warehouse fails fast with a clear
//! message (SPEC §7) instead of working for nothing. The lock is an object
//! created only if absent; a heartbeat keeps it fresh. A lock whose process
//! is gone (same host) or whose heartbeat stopped is taken over. Correctness
//! does not rest on it: the commit itself is a conditional create, so two
//! runs can never both commit one version.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use super::commit::Warehouse;
use crate::error::{Error, Result};

const HEARTBEAT: Duration = Duration::from_secs(30);
const STALE_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    host: String,
    pid: u32,
    started_at: String,
}

pub struct Lock {
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    path: Path,
    /// Stops the heartbeat between refreshes, also when the lock is dropped.
    stop: tokio::sync::oneshot::Sender<()>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Lock {
    pub async fn acquire(warehouse: &Warehouse, run_id: &str, now: DateTime<Utc>) -> Result<Lock> {
        let store = std::sync::Arc::clone(&warehouse.location.store);
        let path = warehouse.meta_path("lock.json");
        let holder = Holder {
            run_id: run_id.to_owned(),
            host: host(),
            pid: std::process::id(),
            started_at: now.to_rfc3339(),
        };
        let body = Bytes::from(serde_json::to_vec(&holder).unwrap_or_default());
        let fail =
            |source| Error::Warehouse { url: warehouse.location.url(), action: "taking the lock", source };
        for _ in 0..3 {
            let create = PutOptions { mode: PutMode::Create, ..Default::default() };
            match store.put_opts(&path, PutPayload::from(body.clone()), create).await {
                Ok(_) => {
                    let (stop, stopped) = tokio::sync::oneshot::channel();
                    let heartbeat =
                        tokio::spawn(beat(std::sync::Arc::clone(&store), path.clone(), body, stopped));
                    return Ok(Lock { store, path, stop, heartbeat });
                }
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(fail(e)),
            }
            let current = match store.get(&path).await {
                Ok(current) => current,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(fail(e)),
            };
            let modified = current.meta.last_modified;
            let other: Option<Holder> =
                current.bytes().await.ok().and_then(|b| serde_json::from_slice(&b).ok());
            match other {
                Some(other) if !is_stale(&other, modified) => {
                    return Err(Error::Locked {
                        url: warehouse.location.url(),
                        run_id: other.run_id,
                        host: other.host,
                        pid: other.pid,
                        since: other.started_at,
                        lock: warehouse.location.url_of(&path),
                    });
                }
                _ => {
                    tracing::warn!(lock = %warehouse.location.url_of(&path), "taking over the lock of a dead run");
                    match store.delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(fail(e)),
                    }
                }
            }
        }
        Err(fail(object_store::Error::Generic {
            store: "lock",
            source: "the lock keeps changing hands".into(),
        }))
    }

    pub async fn release(self) {
        // Not an abort: a refresh already sent could land after the delete
        // and leave the lock behind, which the next run would have to wait
        // out.
        let _ = self.stop.send(());
        let _ = self.heartbeat.await;
        let _ = self.store.delete(&self.path).await;
    }
}

async fn beat(
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    path: Path,
    body: Bytes,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut interval = tokio::time::interval(HEARTBEAT);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = &mut stopped => return,
        }
        if let Err(e) = store.put(&path, PutPayload::from(body.clone())).await {
            tracing::warn!(error = %e, "cannot refresh the warehouse lock");
        }
    }
}

/// A holder on this host whose process is gone, or whose heartbeat stopped.
fn is_stale(holder: &Holder, modified: DateTime<Utc>) -> bool {
    let dead_here = holder.host == host()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{}", holder.pid)).exists();
    let silent = Utc::now().signed_duration_since(modified).to_std().is_ok_and(|age| age > STALE_AFTER);
    dead_here || silent
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

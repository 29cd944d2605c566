//! `load`: list sources → read and decompress → split lines → parse and
//! validate → dedup → write `identifies` to staging as it reads (`direct`),
//! or, when that gives up, read again: stage in the spill (pass one) →
//! settle columns → write tables to staging (pass two) → commit.

pub mod batches;
pub mod columns;
pub mod commit;
pub mod direct;
pub mod event;
pub mod flatten;
pub mod history;
pub mod id_set;
pub mod identifies;
pub mod ingest;
pub mod json;
pub mod json_scan;
pub mod lines;
pub mod lock;
pub mod naming;
pub mod parquet_out;
pub mod read;
pub mod rejects;
pub mod retype;
pub mod slice_files;
pub mod small_map;
pub mod sources;
pub mod stage;
pub mod timestamp;
pub mod typing;
pub mod users;
pub mod write;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::config::LoadConfig;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::spill_dir::spill_error;
use crate::storage::Stores;
use crate::summary::{FailedFile, Summary};
use columns::Columns;
use columns::Resolved;
use commit::{LoadedSource, LogEntry, TableState, Warehouse};
use direct::Direct;
use event::ParseOptions;
use history::History;
use ingest::{Counts, Ingest, ObjectInput};
use sources::{Source, list_sources};
use stage::Stage;
use write::Written;

/// Runs `load` and returns its summary. Errors mean nothing was committed.
pub async fn load(config: &LoadConfig, stores: &Stores) -> Result<Summary> {
    locked(config, stores, None).await
}

/// `run`: `load`, then `build-users` unless the users table is already built
/// from the current log, all under the warehouse lock.
pub async fn run(config: &LoadConfig, stores: &Stores, threads: usize) -> Result<Summary> {
    locked(config, stores, Some(threads)).await
}

async fn locked(config: &LoadConfig, stores: &Stores, build_threads: Option<usize>) -> Result<Summary> {
    let started = Instant::now();
    let run_id = run_id(config.warehouse.now);
    let warehouse = open_warehouse(stores, &config.warehouse.warehouse).await?;
    let lock = lock::Lock::acquire(&warehouse, &run_id, config.warehouse.now).await?;
    let mut outcome = load_locked(config, stores, &warehouse, &run_id).await;
    if let (Ok(summary), Some(threads)) = (&mut outcome, build_threads) {
        match users::current_users(&warehouse).await {
            Ok(Some(users)) => summary.users = Some(users),
            Ok(None) => match users::build_users(&config.warehouse, &warehouse, threads).await {
                Ok(users) => summary.users = Some(users),
                Err(e) => outcome = Err(e),
            },
            Err(e) => outcome = Err(e),
        }
    }
    lock.release().await;
    if let Ok(summary) = &mut outcome {
        summary.elapsed_s = started.elapsed().as_secs_f64();
    }
    outcome
}

async fn load_locked(
    config: &LoadConfig,
    stores: &Stores,
    warehouse: &Warehouse,
    run_id: &str,
) -> Result<Summary> {
    let now = config.warehouse.now;
    let state = warehouse.open().await?;
    warehouse.remove_dead_staging(run_id).await?;
    let sources = list_sources(stores, &config.inputs).await?;
    let (sources, skipped): (Vec<Source>, Vec<Source>) =
        sources.into_iter().partition(|s| !state.loaded.contains(&loaded_source(s).key()));

    let run = Run { config, warehouse, state: &state, run_id };
    let first = if config.through_spill { Path::Spill } else { Path::Direct };
    let read = match read_sources(&run, &sources, first, 0).await? {
        Some(read) => read,
        None => {
            warehouse.remove_staging(run_id).await?;
            match read_sources(&run, &sources, Path::Spill, 1).await? {
                Some(read) => read,
                None => unreachable!("the load through the spill does not give up"),
            }
        }
    };
    let Read { counts, loaded, failed, bytes_read, resolved, written } = read;
    let summary = Summary {
        run_id: run_id.to_owned(),
        files_seen: (sources.len() + skipped.len()) as u64,
        files_skipped: skipped.len() as u64,
        files_loaded: loaded.len() as u64,
        files_failed: failed,
        bytes_read,
        lines: counts.lines,
        blank_lines: counts.blank_lines,
        identifies_loaded: counts.identifies,
        non_identify: counts.non_identify,
        duplicates: counts.duplicates,
        rejected: counts.rejected,
        rejected_by_reason: counts.by_reason.iter().map(|(r, n)| (r.code().to_owned(), *n)).collect(),
        discarded_values: written.discarded,
        new_columns: resolved.new_columns.iter().map(|(n, t)| (n.clone(), t.to_string())).collect(),
        partitions: written.partitions,
        ..Summary::default()
    };

    if !loaded.is_empty() {
        let entry = LogEntry {
            version: state.version + 1,
            run_id: run_id.to_owned(),
            started_at: now.to_rfc3339(),
            committed_at: chrono::Utc::now().to_rfc3339(),
            files: written.files,
            sources: loaded,
            columns: resolved.schema,
            summary: summary.clone(),
        };
        warehouse.commit(&entry).await?;
    }
    Ok(summary)
}

/// What every attempt at reading a run's sources shares.
struct Run<'a> {
    config: &'a LoadConfig,
    warehouse: &'a Warehouse,
    state: &'a TableState,
    run_id: &'a str,
}

/// How a load gets its events into `identifies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Written as they are read ([`direct`]), unless that gives up.
    Direct,
    /// Staged in a local spill, written once all are read and the columns'
    /// types are settled ([`write::write_tables`]).
    Spill,
}

/// What reading the sources wrote to staging, and their counts.
struct Read {
    counts: Counts,
    loaded: Vec<LoadedSource>,
    failed: Vec<FailedFile>,
    bytes_read: u64,
    resolved: Resolved,
    written: Written,
}

/// Reads every source and writes the run's staged files, named for the
/// `attempt` ([`write::Files`]). `None`: the direct path gave up (see
/// [`direct::GaveUp`]); what it staged is left for the caller to remove.
async fn read_sources(run: &Run<'_>, sources: &[Source], path: Path, attempt: u32) -> Result<Option<Read>> {
    let Run { config, warehouse, state, run_id } = *run;
    crate::allocator::return_freed_memory_while_reading();
    let started = Instant::now();
    let now = config.warehouse.now;
    let spill = config.warehouse.spill_dir.as_deref();
    let stage = Stage::new(spill).map_err(|source| spill_error(spill, source))?;
    let history = History::open(warehouse, config.dedup_window, rand::random()).await?;
    let mut ingest =
        Ingest::new(Columns::new(&state.columns), stage, history, config.max_line_bytes, config.threads);
    let files = Arc::new(write::Files::new(warehouse, run_id, attempt));
    if path == Path::Direct {
        let loaded_at = now.timestamp_micros();
        ingest.direct =
            Some(Direct::new(Arc::clone(&files), loaded_at, config.batch_rows, config.max_columns, run_id));
    }
    let mut counts = Counts::default();
    let (mut loaded, mut failed, mut bytes_read) = (Vec::new(), Vec::new(), 0);
    let total_bytes = sources.iter().map(|s| s.meta.size).sum();
    let mut progress = Progress::new(total_bytes, sources.len(), !config.progress);
    for (done, source) in sources.iter().enumerate() {
        let bytes = Arc::new(AtomicU64::new(0));
        progress.follow(Arc::clone(&bytes));
        let outcome;
        (ingest, outcome) = ingest_source(ingest, source, config, Arc::clone(&bytes)).await;
        match outcome {
            Ok(object_counts) => {
                counts.add(&object_counts);
                bytes_read += bytes.load(Ordering::Relaxed);
                loaded.push(loaded_source(source));
            }
            // The local disk failing is not the object's fault: retrying
            // the object next run would not help, and the rest would fail too.
            Err(e) if stage::spill_failure(&e).is_some() => return Err(spill_error(spill, e)),
            Err(e) if direct::writer_stopped_in(&e) => {
                let finished = ingest.direct.take().map(|d| tokio::task::block_in_place(|| d.finish()));
                return Err(match finished {
                    Some(Err(failure)) => failure,
                    // Not seen: a writer stops on an error, which it returns.
                    _ => Error::Write {
                        url: warehouse.location.url(),
                        source: parquet::errors::ParquetError::External(Box::new(e)),
                    },
                });
            }
            Err(e) if direct::gave_up_in(&e).is_some() => {
                progress.finish();
                tracing::warn!(reason = %e, "reading the input again, through the spill");
                if let Some(direct) = ingest.direct.take() {
                    // What it wrote is removed with the run's staging.
                    let _ = tokio::task::block_in_place(|| direct.finish());
                }
                return Ok(None);
            }
            Err(e) => {
                tracing::warn!(source = %source.url, error = %e, "source object failed; nothing of it is loaded");
                failed.push(FailedFile { source: source.url.clone(), error: e.to_string() });
            }
        }
        progress.object_done(done + 1, source.meta.size, counts.lines);
    }
    progress.finish();
    tracing::info!(
        objects = sources.len(),
        lines = counts.lines,
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "read and parsed"
    );

    ingest.done_reading();
    crate::allocator::return_freed_memory_sooner();
    let resolved = ingest.columns.resolve(config.max_columns, run_id);
    let written = match ingest.direct.take() {
        Some(direct) => {
            let mut written = tokio::task::block_in_place(|| direct.finish())?;
            let schema = identifies::identifies_schema(&resolved.schema);
            retype::retype(&files, &mut written, &schema).await?;
            write::write_rejects(&files, &mut ingest, now, config.batch_rows, &mut written).await?;
            written
        }
        None => {
            write::write_tables(&files, &mut ingest, &resolved, now, config.batch_rows, config.threads)
                .await?
        }
    };
    tracing::info!(
        partitions = written.partitions.len(),
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "wrote the staged Parquet files"
    );
    Ok(Some(Read { counts, loaded, failed, bytes_read, resolved, written }))
}

/// Reads one source on a blocking thread; the object store streams to it.
async fn ingest_source(
    mut ingest: Ingest,
    source: &Source,
    config: &LoadConfig,
    bytes: Arc<AtomicU64>,
) -> (Ingest, std::io::Result<Counts>) {
    let raw = read::open_stream(
        Arc::clone(&source.location.store),
        source.meta.location.clone(),
        config.read,
        bytes,
    );
    let url = source.url.clone();
    let parse = ParseOptions {
        fallback_received_at: source.meta.last_modified.timestamp_micros(),
        email_from_user_id: config.email_from_user_id,
    };
    let buffer = config.read.buffer_bytes;
    let joined = tokio::task::spawn_blocking(move || {
        let outcome = read::decode(raw, buffer)
            .and_then(|input| ingest.ingest_object(input, &ObjectInput { url: &url, parse }));
        (ingest, outcome)
    })
    .await;
    match joined {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The warehouse at `url`; a local folder is created if missing.
pub async fn open_warehouse(stores: &Stores, url: &str) -> Result<Warehouse> {
    if !url.contains("://") {
        std::fs::create_dir_all(url).map_err(|source| Error::LocalDir { path: url.to_owned(), source })?;
    }
    let (location, text) = stores.resolve(url)?;
    if crate::storage::is_glob(&text) {
        return Err(Error::Config(format!("the warehouse URL {url} cannot be a glob")));
    }
    Ok(Warehouse::new(location))
}

fn loaded_source(source: &Source) -> LoadedSource {
    LoadedSource {
        location: source.url.clone(),
        size: source.meta.size,
        e_tag: source.meta.e_tag.clone(),
        last_modified: source.meta.last_modified.to_rfc3339(),
    }
}

/// `--dry-run`: the objects a load would read and those it would skip as
/// already loaded, with their sizes, one per line on stdout. Writes nothing,
/// not even the lock.
pub async fn dry_run(config: &LoadConfig, stores: &Stores) -> Result<Summary> {
    let (location, _) = stores.resolve(&config.warehouse.warehouse)?;
    let state = Warehouse::new(location).read_state().await?;
    let sources = list_sources(stores, &config.inputs).await?;
    let mut summary = Summary { run_id: run_id(config.warehouse.now), ..Summary::default() };
    let mut out = std::io::stdout().lock();
    for source in &sources {
        let loaded = state.loaded.contains(&loaded_source(source).key());
        let (action, note) = if loaded { ("skip", "  (already loaded)") } else { ("load", "") };
        // A closed pipe (`| head`) is not an error of the dry run.
        let _ = writeln!(out, "{action} {:>14} {}{note}", source.meta.size, source.url);
        summary.files_seen += 1;
        summary.files_skipped += u64::from(loaded);
    }
    Ok(summary)
}

/// A sortable, unique run id: the start time and a random suffix.
pub fn run_id(now: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}-{:08x}", now.format("%Y%m%dT%H%M%SZ"), rand::random::<u32>())
}

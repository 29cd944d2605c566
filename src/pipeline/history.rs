//! Dedup across runs (SPEC §5): a message id already in `identifies` with a
//! `received_at` within `--dedup-window` of an incoming event makes it a
//! duplicate. Partitions are read lazily, only those within the window of
//! the incoming events, so the cost grows with the window, not the table.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use xxhash_rust::xxh3::xxh3_128_with_seed;

use super::commit::Warehouse;
use super::timestamp::{Micros, utc_date};
use crate::error::{Error, Result};

const DAY: Micros = 86_400_000_000;

pub struct History {
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    table: Path,
    window: Micros,
    seed: u64,
    /// Days (since the epoch) with an `identifies` partition.
    existing: BTreeSet<i64>,
    loaded: HashSet<i64>,
    /// Seeded 128-bit hash of a message id → its `received_at`s.
    ids: HashMap<u128, Vec<Micros>>,
    runtime: tokio::runtime::Handle,
}

impl History {
    pub async fn open(warehouse: &Warehouse, window: std::time::Duration, seed: u64) -> Result<Self> {
        let table = warehouse.table_path("identifies");
        let store = std::sync::Arc::clone(&warehouse.location.store);
        let listing = store
            .list_with_delimiter(Some(&table))
            .await
            .map_err(|source| Error::List { url: warehouse.location.url_of(&table), source })?;
        let existing = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename()?.strip_prefix("received_date=")?.parse::<chrono::NaiveDate>().ok())
            .map(|d| d.signed_duration_since(chrono::NaiveDate::default()).num_days())
            .collect();
        Ok(History {
            store,
            table,
            window: i64::try_from(window.as_micros()).unwrap_or(i64::MAX / 4),
            seed,
            existing,
            loaded: HashSet::new(),
            ids: HashMap::new(),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    pub fn hash(&self, id: &str) -> u128 {
        xxh3_128_with_seed(id.as_bytes(), self.seed)
    }

    /// Was `key` loaded by an earlier run within the window of `received_at`?
    /// Runs on a blocking thread: partitions are fetched as needed.
    pub fn contains(&mut self, key: u128, received_at: Micros) -> io::Result<bool> {
        let first = received_at.saturating_sub(self.window).div_euclid(DAY);
        let last = received_at.saturating_add(self.window).div_euclid(DAY);
        let missing: Vec<i64> =
            self.existing.range(first..=last).copied().filter(|d| !self.loaded.contains(d)).collect();
        for day in missing {
            self.load_day(day)?;
            self.loaded.insert(day);
        }
        Ok(self
            .ids
            .get(&key)
            .is_some_and(|seen| seen.iter().any(|t| t.abs_diff(received_at) <= self.window as u64)))
    }

    /// Frees the ids fetched so far; a later lookup fetches them again.
    pub fn forget(&mut self) {
        self.ids = HashMap::new();
        self.loaded.clear();
    }

    fn load_day(&mut self, day: i64) -> io::Result<()> {
        let partition = self.table.clone().join(format!("received_date={}", utc_date(day * DAY)));
        let store = std::sync::Arc::clone(&self.store);
        let batches = self.runtime.block_on(async move {
            let files: Vec<_> = store.list(Some(&partition)).try_collect().await?;
            let mut batches = Vec::new();
            for file in files.iter().filter(|f| f.location.as_ref().ends_with(".parquet")) {
                let bytes = store.get(&file.location).await?.bytes().await?;
                batches.extend(
                    read_ids(bytes)
                        .map_err(|e| object_store::Error::Generic { store: "parquet", source: e.into() })?,
                );
            }
            Ok::<_, object_store::Error>(batches)
        });
        for batch in batches.map_err(io::Error::other)? {
            let ids = batch.column(0).as_string::<i32>();
            let received = batch.column(1).as_primitive::<TimestampMicrosecondType>();
            for (id, at) in ids.iter().zip(received.iter()) {
                if let (Some(id), Some(at)) = (id, at) {
                    self.ids.entry(xxh3_128_with_seed(id.as_bytes(), self.seed)).or_default().push(at);
                }
            }
        }
        Ok(())
    }
}

fn read_ids(bytes: bytes::Bytes) -> parquet::errors::Result<Vec<RecordBatch>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["id", "received_at"]);
    builder.with_projection(mask).build()?.map(|b| b.map_err(Into::into)).collect()
}

//! DataFusion over the warehouse: a session whose memory pool is bounded by
//! `--memory-limit` and spills to `--spill-dir` (SPEC §8), with the
//! warehouse's tables registered by name.

use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::TrackConsumersPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::AggregateUDF;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::config::WarehouseConfig;
use crate::error::{Error, Result};
use crate::memory::FairPool;
use crate::one_phase::OnePhaseAggregate;
use crate::pipeline::columns::ColumnDef;
use crate::pipeline::commit::Warehouse;
use crate::pipeline::identifies::{discards_schema, identifies_schema};
use crate::pipeline::rejects::rejects_schema;
use crate::spill_dir::{SpillDir, spill_error};

/// The aggregates our SQL uses besides DataFusion's.
pub(crate) fn aggregates() -> impl Iterator<Item = AggregateUDF> {
    crate::latest::udafs().into_iter().chain([crate::sorted_distinct::udaf()])
}

/// The single file of a derived table, replaced whole by each build.
pub fn derived_file(table: &str) -> String {
    format!("{table}/{table}.parquet")
}

/// The footer reader of a derived table's file, or `None` if it is not built.
pub async fn derived_reader(
    warehouse: &Warehouse,
    table: &str,
) -> Result<Option<ParquetRecordBatchReaderBuilder<bytes::Bytes>>> {
    let path = warehouse.table_path(&derived_file(table));
    let bytes = match warehouse.location.store.get(&path).await {
        Ok(file) => file.bytes().await,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => Err(e),
    }
    .map_err(|source| Error::Warehouse {
        url: warehouse.location.url(),
        action: "reading a derived table",
        source,
    })?;
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map(Some)
        .map_err(|source| Error::Write { url: warehouse.location.url_of(&path), source })
}

/// A session, and the folder it spills to, which lives as long as it is kept.
pub fn session(
    config: &WarehouseConfig,
    threads: usize,
    warehouse: &Warehouse,
) -> Result<(SessionContext, SpillDir)> {
    session_with(config, threads, warehouse, false)
}

/// A session for `build-users`, whose aggregates group nearly as many keys
/// as rows: see [`OnePhaseAggregate`].
pub fn collapse_session(
    config: &WarehouseConfig,
    threads: usize,
    warehouse: &Warehouse,
) -> Result<(SessionContext, SpillDir)> {
    session_with(config, threads, warehouse, true)
}

/// `build-users` reads `identifies` in one more partition than threads, so
/// that a batch is decoded whenever the aggregates wait: at 5M events,
/// 11.5 s against 12.2 s (three alternating pairs), ~50 MB more at its
/// peak, still below the load's; two more were no faster.
const EXTRA_SCANS: usize = 1;

/// `build-users`' partitions of groups per thread ([`OnePhaseAggregate`]).
/// At 5M events on two threads, build-users took 12.2 s against 13.4 s with
/// one per thread (CPU −7%, the same peak of ~600 MiB; six alternating runs
/// each); eight per thread were ~4% faster again but held 60 MB more, and
/// sixteen 200 MB more. The scans are not multiplied so ([`EXTRA_SCANS`]):
/// each reader holds a row group's column chunks.
const GROUP_PARTITIONS_PER_THREAD: usize = 4;

fn session_with(
    config: &WarehouseConfig,
    threads: usize,
    warehouse: &Warehouse,
    collapse: bool,
) -> Result<(SessionContext, SpillDir)> {
    let mut runtime = RuntimeEnvBuilder::new().with_memory_pool(Arc::new(TrackConsumersPool::new(
        FairPool::new(config.memory_limit as usize),
        NonZeroUsize::new(5).expect("5 is not zero"),
    )));
    let root = config.spill_dir.as_deref();
    let spill = SpillDir::create(root).map_err(|source| spill_error(root, source))?;
    runtime = runtime.with_temp_file_path(spill.path());
    let runtime = runtime.build_arc().map_err(|source| Error::DataFusion { action: "starting", source })?;
    // Strings stay Utf8 (not Utf8View) when read back, so that derived
    // tables keep the types of SPEC §6.
    let scans = if collapse { threads.max(1) + EXTRA_SCANS } else { threads.max(1) };
    let session = SessionConfig::new()
        .with_target_partitions(scans)
        .with_information_schema(true)
        .set_bool("datafusion.execution.parquet.schema_force_view_types", false);
    let mut state =
        SessionStateBuilder::new().with_config(session).with_runtime_env(runtime).with_default_features();
    if collapse {
        let partitions = threads.max(1) * GROUP_PARTITIONS_PER_THREAD;
        state = state.with_physical_optimizer_rule(Arc::new(OnePhaseAggregate { partitions }));
    }
    let ctx = SessionContext::new_with_state(state.build());
    for udaf in aggregates() {
        ctx.register_udaf(udaf);
    }
    let base = url::Url::parse(&format!("{}/", warehouse.location.base))
        .map_err(|e| Error::Url { url: warehouse.location.base.clone(), reason: e.to_string() })?;
    ctx.register_object_store(&base, Arc::clone(&warehouse.location.store));
    Ok((ctx, spill))
}

/// Registers `identifies` (with the table's full schema, so older files read
/// their missing columns as null), `rejects`, `discards`, and the derived
/// tables that exist.
pub async fn register_tables(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    columns: &[ColumnDef],
) -> Result<()> {
    let partitioned = [
        ("identifies", identifies_schema(columns)),
        ("rejects", rejects_schema()),
        ("discards", discards_schema()),
    ];
    for (table, schema) in partitioned {
        register_partitioned(ctx, warehouse, table, &schema).await?;
    }
    for table in ["users", "identity_map"] {
        let file = warehouse.table_path(&derived_file(table));
        if warehouse.location.store.head(&file).await.is_ok() {
            let url = warehouse.location.url_of(&file);
            ctx.register_parquet(table, &url, ParquetReadOptions::default())
                .await
                .map_err(|source| Error::DataFusion { action: "registering a table", source })?;
        }
    }
    Ok(())
}

async fn register_partitioned(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    table: &str,
    schema: &Schema,
) -> Result<()> {
    let path = warehouse.table_path(table);
    let registered = if exists(warehouse, &path).await? {
        let url = format!("{}/", warehouse.location.url_of(&path));
        let options = ParquetReadOptions::default()
            .schema(schema)
            .table_partition_cols(vec![("received_date".to_owned(), DataType::Utf8)]);
        ctx.register_parquet(table, &url, options).await
    } else {
        let mut fields = schema.fields().to_vec();
        fields.push(Arc::new(datafusion::arrow::datatypes::Field::new(
            "received_date",
            DataType::Utf8,
            true,
        )));
        let empty = MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]]);
        empty.and_then(|t| ctx.register_table(table, Arc::new(t)).map(drop))
    };
    registered.map_err(|source| Error::DataFusion { action: "registering a table", source })
}

/// Is there any object at or below `path`?
async fn exists(warehouse: &Warehouse, path: &Path) -> Result<bool> {
    let mut list = warehouse.location.store.list(Some(path));
    match list.next().await {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(source)) => Err(Error::List { url: warehouse.location.url_of(path), source }),
    }
}

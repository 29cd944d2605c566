//! `build-users` (SPEC §6): `identity_map` and `users` are rebuilt from the
//! whole `identifies` table by the SQL in `sql/`, run by DataFusion. Each
//! table is one Parquet file replaced by a single atomic put, so a reader
//! (or a crash) sees the previous complete table or the new one.

use std::sync::Arc;

use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::physical_plan::{displayable, execute_stream};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::TryStreamExt;

use super::columns::ColumnDef;
use super::commit::Warehouse;
use super::parquet_out::ParquetOut;
use super::typing::ColumnType;
use crate::config::WarehouseConfig;
use crate::error::{Error, Result};
use crate::session::{collapse_session, derived_file, derived_reader, register_tables};

const IDENTITY_MAP_SQL: &str = include_str!("../../sql/identity_map.sql");
const OWNED_SQL: &str = include_str!("../../sql/owned.sql");
const USERS_SQL: &str = include_str!("../../sql/users.sql");

/// The footer key recording the log version a derived table was built from.
const BUILT_FROM: &str = "identify_loader.log_version";

/// Rebuilds both derived tables; returns the number of users.
pub async fn build_users(config: &WarehouseConfig, warehouse: &Warehouse, threads: usize) -> Result<u64> {
    crate::allocator::return_freed_memory_sooner();
    let state = warehouse.open().await?;
    let version = state.version;
    remove_partial_files(warehouse);
    let (ctx, _spill) = collapse_session(config, threads, warehouse)?;
    register_tables(&ctx, warehouse, &state.columns).await?;
    for table in ["users", "identity_map"] {
        // The derived tables are rebuilt from identifies alone.
        let _ = ctx.deregister_table(table);
    }
    let view = format!("CREATE VIEW identity_map AS {IDENTITY_MAP_SQL}");
    run_sql(&ctx, &view).await?;
    let map_rows = write_table(
        &ctx,
        warehouse,
        "identity_map",
        "SELECT * FROM identity_map ORDER BY anonymous_id",
        version,
    )
    .await?;
    let map_bytes = map_rows.saturating_mul(MAP_ROW_BYTES);
    if map_bytes <= config.memory_limit / 8 {
        share_the_map(&ctx, map_rows, map_bytes);
    }
    // users reads the map just written rather than computing it again.
    let _ = ctx.deregister_table("identity_map");
    let url = warehouse.location.url_of(&warehouse.table_path(&derived_file("identity_map")));
    ctx.register_parquet("identity_map", &url, ParquetReadOptions::default())
        .await
        .map_err(|source| Error::DataFusion { action: "registering identity_map", source })?;
    run_sql(&ctx, &format!("CREATE VIEW owned AS {OWNED_SQL}")).await?;
    write_table(&ctx, warehouse, "users", &users_sql(&state.columns), version).await
}

/// What a row of identity_map takes in a join's hash table (290 MB for
/// 3.9M anonymous ids at 20M events).
const MAP_ROW_BYTES: u64 = 80;

/// users' join builds its table of identity_map once and shares it, so that
/// the identifies that probe it are not shuffled by anonymous id first (they
/// are shuffled by owner for the aggregate anyway): 5M build-users ~6%
/// faster. DataFusion would decide from its estimate of the map's size, but
/// the estimate was a tenth of the table built, so the decision is made here
/// from the map's rows; a map too large for an eighth of the memory limit is
/// joined partitioned, as before. The thresholds are the map's own size, not
/// unbounded, so that `identifies`, far larger even in DataFusion's
/// estimate, is never the side collected.
fn share_the_map(ctx: &SessionContext, rows: u64, bytes: u64) {
    let state = ctx.state_ref();
    let mut state = state.write();
    let optimizer = &mut state.config_mut().options_mut().optimizer;
    optimizer.hash_join_single_partition_threshold = usize::try_from(bytes).unwrap_or(usize::MAX);
    optimizer.hash_join_single_partition_threshold_rows = usize::try_from(rows + 1).unwrap_or(usize::MAX);
}

/// The number of users, if `users` was built from the current log version:
/// then a rebuild would change nothing, and `run` leaves the tables as they are.
pub async fn current_users(warehouse: &Warehouse) -> Result<Option<u64>> {
    let version = warehouse.open().await?.version.to_string();
    // An unreadable file is rebuilt.
    let Ok(Some(reader)) = derived_reader(warehouse, "users").await else {
        return Ok(None);
    };
    let meta = reader.metadata().file_metadata();
    let built_from = meta.key_value_metadata().into_iter().flatten().find(|kv| kv.key == BUILT_FROM);
    Ok((built_from.and_then(|kv| kv.value.as_deref()) == Some(version.as_str()))
        .then(|| meta.num_rows() as u64))
}

/// `sql/users.sql` with the trait columns of `identifies` filled in.
pub fn users_sql(columns: &[ColumnDef]) -> String {
    let traits: Vec<&ColumnDef> = columns.iter().filter(|c| !c.name.starts_with("context_")).collect();
    let mut aggregate = String::new();
    let mut fields = String::new();
    let mut selected = String::new();
    if !traits.is_empty() {
        let named: Vec<String> =
            traits.iter().map(|c| format!("{}, {}", literal(&c.name), quote(&c.name))).collect();
        aggregate = format!(
            "\n           , latest_fields(named_struct({}), \"timestamp\", received_at, id) AS \"il$traits\"",
            named.join(", ")
        );
    }
    for c in &traits {
        let q = quote(&c.name);
        fields.push_str(&format!("\n           , \"il$traits\"[{}] AS {q}", literal(&c.name)));
        selected.push_str(&format!("\n       , {}", name_fill(c, &traits).unwrap_or(q)));
    }
    if !traits.iter().any(|c| c.name == "name")
        && let Some(fill) = fill_expression(&traits)
    {
        selected.push_str(&format!("\n       , {fill} AS \"name\""));
    }
    USERS_SQL
        .replace("{{trait_aggregate}}", &aggregate)
        .replace("{{trait_fields}}", &fields)
        .replace("{{trait_columns}}", &selected)
}

/// `name`, filled from `first_name` and `last_name` when still null.
fn name_fill(column: &ColumnDef, traits: &[&ColumnDef]) -> Option<String> {
    if column.name != "name" || column.column_type != ColumnType::Utf8 {
        return None;
    }
    let fill = fill_expression(traits)?;
    Some(format!("COALESCE(\"name\", {fill}) AS \"name\""))
}

fn fill_expression(traits: &[&ColumnDef]) -> Option<String> {
    let utf8 = |name: &str| traits.iter().any(|c| c.name == name && c.column_type == ColumnType::Utf8);
    (utf8("first_name") && utf8("last_name")).then(|| {
        "CASE WHEN \"first_name\" IS NOT NULL AND \"last_name\" IS NOT NULL \
         THEN \"first_name\" || ' ' || \"last_name\" END"
            .to_owned()
    })
}

pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
    ctx.sql(sql).await.map_err(|source| Error::DataFusion { action: "planning the collapse", source })
}

/// Streams a query's result into the table's single file.
async fn write_table(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    table: &str,
    sql: &str,
    version: u64,
) -> Result<u64> {
    let started = std::time::Instant::now();
    let frame = run_sql(ctx, sql).await?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let task = frame.task_ctx();
    let plan = frame
        .create_physical_plan()
        .await
        .map_err(|source| Error::DataFusion { action: "planning the collapse", source })?;
    tracing::debug!(table, plan = %displayable(plan.as_ref()).indent(true), "plan");
    let mut stream = execute_stream(Arc::clone(&plan), Arc::new(task))
        .map_err(|source| Error::DataFusion { action: "running the collapse", source })?;
    let path = warehouse.table_path(&derived_file(table));
    let url = warehouse.location.url_of(&path);
    let failed = |source| Error::DataFusion { action: "running the collapse", source };
    let mut next = stream.try_next().await.map_err(failed)?;
    let store = Arc::clone(&warehouse.location.store);
    let mut out = ParquetOut::create(store, path, url, schema, next.as_ref())?;
    out.set_metadata(BUILT_FROM, version.to_string());
    let mut rows = 0;
    while let Some(batch) = next {
        rows += batch.num_rows() as u64;
        out.write(&batch).await?;
        next = stream.try_next().await.map_err(failed)?;
    }
    out.close().await?;
    tracing::debug!(table, plan = %DisplayableExecutionPlan::with_metrics(plan.as_ref()).indent(true), "ran");
    tracing::info!(table, rows, elapsed_s = started.elapsed().as_secs_f64(), "built");
    Ok(rows)
}

/// A local upload cut short by a crash leaves `<file>#<n>` beside the table
/// file; readers ignore it (no `.parquet` suffix) and the next build removes it.
fn remove_partial_files(warehouse: &Warehouse) {
    if warehouse.location.base != "file://" {
        return;
    }
    for table in ["users", "identity_map"] {
        let dir = format!("/{}", warehouse.table_path(table));
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().contains('#') {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
#[path = "users_tests.rs"]
mod tests;

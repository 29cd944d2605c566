//! `build-users` (SPEC §6): `identity_map` and `users` are rebuilt from the
//! whole `identifies` table by the SQL in `sql/`, run by DataFusion. Each
//! table is one Parquet file replaced by a single atomic put, so a reader
//! (or a crash) sees the previous complete table or the new one.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, UInt64Type};
use datafusion::common::internal_err;
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::physical_plan::{displayable, execute_stream};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::TryStreamExt;

use super::columns::ColumnDef;
use super::commit::Warehouse;
use super::parquet_out::ParquetOut;
use super::slice_files;
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
    build_users_in(config, warehouse, threads, None).await
}

/// `build_users`, with `identity_map` and `users` each built in that many
/// slices instead of as many as their memory share needs.
pub async fn build_users_in(
    config: &WarehouseConfig,
    warehouse: &Warehouse,
    threads: usize,
    slices: Option<u64>,
) -> Result<u64> {
    crate::allocator::return_freed_memory_sooner();
    let state = warehouse.open().await?;
    let version = state.version;
    remove_partial_files(warehouse);
    let (ctx, spill) = collapse_session(config, threads, warehouse)?;
    register_tables(&ctx, warehouse, &state.columns).await?;
    for table in ["users", "identity_map"] {
        // The derived tables are rebuilt from identifies alone.
        let _ = ctx.deregister_table(table);
    }
    ctx.register_udf(crate::slice::udf());
    let sliced = match slices {
        Some(n) => Slices { map: n.max(1), users: n.max(1) },
        None => slices_needed(&ctx, config, trait_columns(&state.columns).len()).await?,
    };
    let map =
        sliced_steps("identity_map", sliced.map, map_sql, "SELECT * FROM identity_map ORDER BY anonymous_id");
    let map_rows = write_table(&ctx, warehouse, "identity_map", &map, version, threads).await?;
    // users reads the map just written rather than computing it again.
    let _ = ctx.deregister_table("identity_map");
    let url = warehouse.location.url_of(&warehouse.table_path(&derived_file("identity_map")));
    ctx.register_parquet("identity_map", &url, ParquetReadOptions::default())
        .await
        .map_err(|source| Error::DataFusion { action: "registering identity_map", source })?;
    // A slice joins with the map's rows of its users only.
    let slice_map_rows = map_rows.div_ceil(sliced.users);
    let slice_map_bytes = slice_map_rows.saturating_mul(MAP_ROW_BYTES);
    keep_join_sides(&ctx);
    if slice_map_bytes <= config.memory_limit / 8 {
        share_the_map(&ctx, slice_map_rows, slice_map_bytes);
    }
    if sliced.users > 1 {
        let columns = owned_columns(&state.columns);
        slice_files::split_identifies(&ctx, &columns, sliced.users, spill.path()).await?;
    }
    let steps = sliced_steps("owned", sliced.users, owned_sql, &users_sql(&state.columns));
    write_table(&ctx, warehouse, "users", &steps, version, threads).await
}

/// What a user takes while `users` is built, besides its traits (its group
/// in the hash table, its key, the other aggregates' states), and what each
/// trait column adds (its value, in the record and again in the emitted
/// row), in peak RSS. Measured at 5M events with 21 trait columns: 0.61 GB
/// with 485k users a slice, 0.92 GB with 830k, ~900 bytes a user more.
const USER_BYTES: u64 = 300;
const USER_TRAIT_BYTES: u64 = 28;

/// What an anonymous id takes while `identity_map` is built (its group, its
/// earliest link's state, the sort), in peak RSS: at 20M events, 3.9M of
/// them peaked at 837 MiB at once and 590 MiB in two slices.
const MAP_ID_BYTES: u64 = 200;

/// The share of `--memory-limit` that one slice's groups may take: with the
/// default 2 GiB, ~700k users of 21 traits at once, for a peak of ~0.8 GB.
const SLICE_SHARE: (u64, u64) = (3, 10);

/// Each slice reads identifies again; past this many, the aggregates spill
/// instead.
const MAX_SLICES: u64 = 8;

/// How many slices of their groups `identity_map` and `users` are built in.
#[derive(Debug, PartialEq, Eq)]
struct Slices {
    map: u64,
    users: u64,
}

/// The slices that let one slice's groups (anonymous ids for the map, users
/// for `users`) fit their share of the memory limit. Most builds take one
/// of each; the groups are counted (approximately) only when identifies has
/// more rows than would fit.
async fn slices_needed(ctx: &SessionContext, config: &WarehouseConfig, traits: usize) -> Result<Slices> {
    let budget = (config.memory_limit / SLICE_SHARE.1 * SLICE_SHARE.0).max(1);
    let per_user = USER_BYTES + USER_TRAIT_BYTES * traits as u64;
    // Each user, and each linked anonymous id, has an identify: their number
    // bounds both.
    let rows = counts(ctx, "SELECT count(*) FROM identifies").await?[0];
    if rows.saturating_mul(per_user.max(MAP_ID_BYTES)) <= budget {
        return Ok(Slices { map: 1, users: 1 });
    }
    let counted = counts(
        ctx,
        "SELECT approx_distinct(anonymous_id) FILTER (WHERE user_id IS NOT NULL), \
                approx_distinct(user_id) \
         FROM identifies",
    )
    .await?;
    let (ids, users) = (counted[0], counted[1]);
    let slices =
        Slices { map: slices_for(ids, MAP_ID_BYTES, budget), users: slices_for(users, per_user, budget) };
    tracing::info!(anonymous_ids = ids, users, ?slices, "slices of identity_map and users");
    Ok(slices)
}

fn slices_for(groups: u64, per_group: u64, budget: u64) -> u64 {
    groups.saturating_mul(per_group).div_ceil(budget.max(1)).clamp(1, MAX_SLICES)
}

/// A query's one row of numbers.
async fn counts(ctx: &SessionContext, sql: &str) -> Result<Vec<u64>> {
    let failed = |source| Error::DataFusion { action: "counting identifies", source };
    let batches = run_sql(ctx, sql).await?.collect().await.map_err(failed)?;
    let Some(row) = batches.iter().find(|b| b.num_rows() > 0) else {
        return internal_err!("`{sql}` returned no row").map_err(failed);
    };
    row.columns()
        .iter()
        .map(|column| {
            let column = cast(column, &DataType::UInt64).map_err(|e| failed(e.into()))?;
            Ok(column.as_primitive::<UInt64Type>().value(0))
        })
        .collect()
}

/// `sql/identity_map.sql`, all of it, or the anonymous ids of slice `k` of
/// `slices`.
fn map_sql(slices: u64, k: u64) -> String {
    let slice = match slices {
        0 | 1 => String::new(),
        _ => format!("  AND il_slice(anonymous_id, {slices}) = {k}"),
    };
    IDENTITY_MAP_SQL.replace("{{slice}}", &slice)
}

/// `sql/owned.sql`, all of it, or the identifies of slice `k` of `slices`
/// (read from their table, [`slice_files`]).
fn owned_sql(slices: u64, k: u64) -> String {
    let (map, identifies) = match slices {
        0 | 1 => (String::new(), "identifies".to_owned()),
        _ => (format!("WHERE il_slice(user_id, {slices}) = {k}"), slice_files::table(k)),
    };
    OWNED_SQL.replace("{{map_slice}}", &map).replace("{{identifies}}", &identifies)
}

/// What `users` reads of identifies: the ids, the times and the traits, the
/// columns of a slice's table. A column `sql/users.sql` came to read beyond
/// these would fail a sliced build's planning (the property test of sliced
/// builds runs one).
fn owned_columns(columns: &[ColumnDef]) -> Vec<String> {
    let fixed = ["id", "user_id", "anonymous_id", "timestamp", "received_at"].map(str::to_owned);
    fixed.into_iter().chain(trait_columns(columns).iter().map(|c| c.name.clone())).collect()
}

/// The trait columns of identifies: all but the context's.
fn trait_columns(columns: &[ColumnDef]) -> Vec<&ColumnDef> {
    columns.iter().filter(|c| !c.name.starts_with("context_")).collect()
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
/// joined partitioned, as before. The thresholds are the map's own size: with
/// the sides kept as written, it is the map that must fit them.
fn share_the_map(ctx: &SessionContext, rows: u64, bytes: u64) {
    let state = ctx.state_ref();
    let mut state = state.write();
    let optimizer = &mut state.config_mut().options_mut().optimizer;
    optimizer.hash_join_single_partition_threshold = usize::try_from(bytes).unwrap_or(usize::MAX);
    optimizer.hash_join_single_partition_threshold_rows = usize::try_from(rows + 1).unwrap_or(usize::MAX);
}

/// users' join builds its table from identity_map, its left side as
/// written in `sql/owned.sql`. DataFusion would swap the sides when its
/// estimate of the other is smaller, as it is for the identifies of one
/// slice (a fifth of the table, it guesses, for any filter), and then hold
/// them in the join's table, which cannot spill.
fn keep_join_sides(ctx: &SessionContext) {
    let state = ctx.state_ref();
    state.write().config_mut().options_mut().optimizer.join_reordering = false;
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
    let traits = trait_columns(columns);
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

/// One query of a table's, after the statement that sets up what it reads.
struct Step {
    setup: String,
    query: String,
}

/// One step per slice: `view` defined as slice `k` of `slices` (by
/// `sql(slices, k)`), then `query` over it.
fn sliced_steps(view: &str, slices: u64, sql: fn(u64, u64) -> String, query: &str) -> Vec<Step> {
    (0..slices)
        .map(|k| Step {
            setup: format!("CREATE OR REPLACE VIEW {view} AS {}", sql(slices, k)),
            query: query.to_owned(),
        })
        .collect()
}

/// Streams the steps' results, one after another, into the table's single
/// file.
async fn write_table(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    table: &str,
    steps: &[Step],
    version: u64,
    threads: usize,
) -> Result<u64> {
    let started = std::time::Instant::now();
    let path = warehouse.table_path(&derived_file(table));
    let url = warehouse.location.url_of(&path);
    let failed = |source| Error::DataFusion { action: "running the collapse", source };
    let mut out = None;
    let mut rows = 0;
    for step in steps {
        run_sql(ctx, &step.setup).await?;
        let frame = run_sql(ctx, &step.query).await?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let task = frame.task_ctx();
        let plan = frame
            .create_physical_plan()
            .await
            .map_err(|source| Error::DataFusion { action: "planning the collapse", source })?;
        tracing::debug!(table, plan = %displayable(plan.as_ref()).indent(true), "plan");
        let mut stream = execute_stream(Arc::clone(&plan), Arc::new(task)).map_err(failed)?;
        let mut next = stream.try_next().await.map_err(failed)?;
        let out = match &mut out {
            Some(out) => out,
            None => {
                let store = Arc::clone(&warehouse.location.store);
                let mut created =
                    ParquetOut::create(store, path.clone(), url.clone(), schema, next.as_ref(), threads > 1)?;
                created.set_metadata(BUILT_FROM, version.to_string());
                out.insert(created)
            }
        };
        while let Some(batch) = next {
            rows += batch.num_rows() as u64;
            out.write(&batch).await?;
            next = stream.try_next().await.map_err(failed)?;
        }
        tracing::debug!(table, plan = %DisplayableExecutionPlan::with_metrics(plan.as_ref()).indent(true), "ran");
    }
    out.expect("a table is built by at least one step").close().await?;
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

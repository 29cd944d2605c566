//! Other readers read each table as one: DataFusion here, and pyarrow and
//! DuckDB through python3 when installed (CI installs them).

use std::process::Command;

use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::harness::*;

/// Two runs whose second adds a column, so the files' schemas differ.
fn two_runs() -> tempfile::TempDir {
    let wh = tempfile::tempdir().unwrap();
    load(&[&fixtures().join("logs")], wh.path(), &[], 0);
    let later = r#"{"type":"identify","messageId":"later","userId":"user-1","traits":{"plan":"max","newTrait":1},"receivedAt":"2024-01-17T00:00:00Z"}"#;
    let dir = inputs(&[("later.ndjson", later.as_bytes())]);
    load(&[dir.path()], wh.path(), &[], 0);
    wh
}

#[tokio::test(flavor = "multi_thread")]
async fn datafusion_reads_the_table_as_one() {
    let wh = two_runs();
    let ctx = SessionContext::new();
    let options =
        ParquetReadOptions::default().table_partition_cols(vec![("received_date".into(), DataType::Utf8)]);
    ctx.register_parquet("identifies", wh.path().join("identifies").to_str().unwrap(), options)
        .await
        .unwrap();
    let sql =
        "SELECT count(*) AS n, count(new_trait) AS t, count(DISTINCT received_date) AS d FROM identifies";
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
    assert!(text.contains("| 19 | 1 | 4 |"), "{text}");
}

#[test]
fn pyarrow_and_duckdb_read_the_tables_as_one() {
    let check = Command::new("python3").args(["-c", "import pyarrow, duckdb"]).output();
    if !check.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIPPED pyarrow_and_duckdb_read_the_tables_as_one: python3 with pyarrow and duckdb not found"
        );
        return;
    }
    let wh = two_runs();
    let script = r#"
import sys, glob, duckdb, pyarrow.dataset as ds, pyarrow.parquet as pq
wh = sys.argv[1]
files = sorted(glob.glob(wh + "/identifies/*/*.parquet"))
# The latest run's files have every column: the most columns of any file.
newest = max(files, key=lambda f: len(pq.read_schema(f)))
t = ds.dataset(wh + "/identifies", format="parquet", partitioning="hive", schema=pq.read_schema(newest)).to_table()
assert t.num_rows == 19, t.num_rows
assert t.column("new_trait").null_count == 18, t.schema
assert str(t.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
assert str(t.schema.field("score").type) == "double"
n, new, plan = duckdb.sql(f"""
    SELECT count(*), count(new_trait), max(plan) FILTER (WHERE id = 'later')
    FROM read_parquet('{wh}/identifies/*/*.parquet', hive_partitioning = true, union_by_name = true)
""").fetchall()[0]
assert (n, new, plan) == (19, 1, "max"), (n, new, plan)
raw = duckdb.sql(f"SELECT raw FROM read_parquet('{wh}/rejects/*/*.parquet') WHERE reason = 'invalid_utf8'").fetchall()[0][0]
assert bytes(raw).endswith(b'"Jos\xe9"}}'), raw
print("ok")
"#;
    let out = Command::new("python3").args(["-c", script, wh.path().to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python readers failed:\n{stderr}");
}

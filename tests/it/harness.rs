//! Runs the real binary and reads its Parquet tables back.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::array::{Array, AsArray, RecordBatch, new_null_array};
use arrow::compute::concat_batches;
use arrow::datatypes::Schema;
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use identify_loader::summary::Summary;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub const BIN: &str = env!("CARGO_BIN_EXE_identify-loader");
/// The run start given to every test run, so `loaded_at` is repeatable.
pub const NOW: &str = "2025-03-01T12:00:00Z";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn summary(&self) -> Summary {
        let last =
            self.stdout.lines().last().unwrap_or_else(|| panic!("no stdout; stderr:\n{}", self.stderr));
        serde_json::from_str(last).unwrap_or_else(|e| panic!("summary {last:?}: {e}"))
    }
}

pub fn run(args: &[&str]) -> Run {
    let out = Command::new(BIN).args(args).env("IDENTIFY_LOADER_NOW", NOW).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `load --input <inputs> --warehouse <warehouse> <extra>`, which must exit
/// with `code`.
pub fn load(inputs: &[&Path], warehouse: &Path, extra: &[&str], code: i32) -> Summary {
    let mut args = vec!["load".to_owned(), "--warehouse".to_owned(), warehouse.display().to_string()];
    args.push("--input".into());
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run(&args);
    assert_eq!(run.code, code, "exit code; stderr:\n{}\nstdout:\n{}", run.stderr, run.stdout);
    let summary = run.summary();
    assert!(summary.balances(), "accounting identity: {summary:?}");
    summary
}

/// Every Parquet file of a table, in path order.
pub fn table_files(warehouse: &Path, table: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let dir = warehouse.join(table);
    if !dir.exists() {
        return files;
    }
    for partition in std::fs::read_dir(&dir).unwrap() {
        let partition = partition.unwrap().path();
        for file in std::fs::read_dir(&partition).unwrap() {
            files.push(file.unwrap().path());
        }
    }
    files.sort();
    files
}

/// A derived table's rows in the order of its key, the first column: the
/// rows of `users` come in no particular order.
pub fn in_key_order(batches: &[RecordBatch]) -> RecordBatch {
    let batch = arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap();
    let order = arrow::compute::sort_to_indices(batch.column(0), None, None).unwrap();
    arrow::compute::take_record_batch(&batch, &order).unwrap()
}

/// All rows of a table in path order, files unioned by column name (as
/// `union_by_name` readers do: older files lack newer columns).
pub fn read_table(warehouse: &Path, table: &str) -> Option<RecordBatch> {
    let batches: Vec<RecordBatch> = table_files(warehouse, table)
        .into_iter()
        .flat_map(|path| {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
                .unwrap()
                .build()
                .unwrap();
            reader.map(|b| b.unwrap()).collect::<Vec<_>>()
        })
        .collect();
    batches.first()?;
    let schemas = batches.iter().map(|b| b.schema().as_ref().clone());
    let schema = std::sync::Arc::new(Schema::try_merge(schemas).expect("one type per column"));
    let unioned: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let columns = schema
                .fields()
                .iter()
                .map(|f| match b.column_by_name(f.name()) {
                    Some(c) => c.clone(),
                    None => new_null_array(f.data_type(), b.num_rows()),
                })
                .collect();
            RecordBatch::try_new(schema.clone(), columns).unwrap()
        })
        .collect();
    Some(concat_batches(&schema, &unioned).unwrap())
}

/// A column's values as display strings (`None` for null).
pub fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = batch.column_by_name(column).unwrap_or_else(|| panic!("no column {column}"));
    let formatter =
        arrow::util::display::ArrayFormatter::try_new(array.as_ref(), &Default::default()).unwrap();
    (0..array.len()).map(|i| array.is_valid(i).then(|| formatter.value(i).to_string())).collect()
}

/// The value of `column` in the row whose `id` is `id`.
pub fn cell(batch: &RecordBatch, id: &str, column: &str) -> Option<String> {
    let ids = strings(batch, "id");
    let row = ids.iter().position(|v| v.as_deref() == Some(id)).unwrap_or_else(|| panic!("no row {id}"));
    strings(batch, column)[row].clone()
}

pub fn micros(batch: &RecordBatch, id: &str, column: &str) -> Option<i64> {
    let ids = strings(batch, "id");
    let row = ids.iter().position(|v| v.as_deref() == Some(id)).unwrap();
    let array = batch.column_by_name(column).unwrap().as_primitive::<TimestampMicrosecondType>();
    array.is_valid(row).then(|| array.value(row))
}

pub fn int64s(batch: &RecordBatch, column: &str) -> Vec<i64> {
    batch.column_by_name(column).unwrap().as_primitive::<Int64Type>().values().to_vec()
}

/// Writes `files` (relative path, bytes) under a new temp dir.
pub fn inputs(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, bytes) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    dir
}

pub fn micros_of(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_micros()
}

/// A `load` configuration for in-process runs on `memory://` stores.
pub fn memory_config(inputs: Vec<String>, warehouse: &str) -> identify_loader::config::LoadConfig {
    use identify_loader::config::{LoadConfig, WarehouseConfig};
    LoadConfig {
        inputs,
        warehouse: WarehouseConfig {
            warehouse: warehouse.into(),
            memory_limit: 256 << 20,
            spill_dir: None,
            now: chrono::DateTime::parse_from_rfc3339(NOW).unwrap().to_utc(),
        },
        max_line_bytes: 1 << 20,
        max_columns: 1000,
        dedup_window: std::time::Duration::from_secs(7 * 86400),
        email_from_user_id: false,
        max_reject_ratio: 1.0,
        read: identify_loader::pipeline::read::ReadOptions::default(),
        batch_rows: 8192,
        through_spill: false,
        threads: 2,
        progress: false,
        dry_run: false,
    }
}

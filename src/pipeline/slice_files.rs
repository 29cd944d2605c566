//! When `users` is built in slices of its users, `identifies` is read once
//! and split into local Arrow files, one folder per slice, rather than read
//! again by every slice. Reading `identifies` is decompressing and decoding
//! Parquet pages, whatever the slice keeps of them: 5M-event build-users
//! (two slices) took 10.9 s instead of 11.8 s, and 20M (six) 64 s instead
//! of 77 s. The files are uncompressed: they live for one build, and are
//! mostly read back from the page cache.
//!
//! An identify with a user id goes to its user's slice. One without, whose
//! owner only `identity_map` knows, goes to a file that every slice's folder
//! links; each slice's join keeps those of its users' anonymous ids.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Int64Array};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::{BatchCoalescer, is_null};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::runtime::SpawnedTask;
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

use super::users::quote;
use crate::error::{Error, Result};

/// The column the split query adds: the row's slice, null without a user id.
const SLICE: &str = "il$slice";

/// Splits `columns` of `identifies` into `slices` folders under `dir`, each
/// with a file of its users' identifies per partition of the scan (so that
/// a slice is read in as many) and links to the files of the identifies
/// without a user id, and registers slice `k`'s folder as the table
/// [`table`]`(k)`. Each partition of the scan is split on its own task: one
/// task copying every row into the files took longer than the scan. The
/// session then reads files whole ([`read_files_whole`]).
pub async fn split_identifies(
    ctx: &SessionContext,
    columns: &[String],
    slices: u64,
    dir: &Path,
) -> Result<()> {
    let started = std::time::Instant::now();
    let listed: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let sql = format!(
        "SELECT {}, il_slice(user_id, {slices}) AS {} FROM identifies",
        listed.join(", "),
        quote(SLICE)
    );
    let frame = ctx.sql(&sql).await.map_err(failed)?;
    let task = Arc::new(frame.task_ctx());
    let plan = frame.create_physical_plan().await.map_err(failed)?;
    let schema: SchemaRef = Arc::new(Schema::new(plan.schema().fields()[..columns.len()].to_vec()));
    let batch_size = ctx.copied_config().batch_size();

    let folders: Vec<PathBuf> = (0..slices).map(|k| dir.join(format!("slice-{k}"))).collect();
    let spill = |source| Error::Spill { dir: dir.display().to_string(), source };
    for folder in &folders {
        std::fs::create_dir_all(folder).map_err(spill)?;
    }
    let partitions = plan.properties().output_partitioning().partition_count();
    let mut tasks = Vec::with_capacity(partitions);
    for p in 0..partitions {
        // One output per slice, and the last for the identifies without a user id.
        let mut outputs = Vec::with_capacity(folders.len() + 1);
        for folder in &folders {
            outputs.push(Output::create(folder.join(format!("part-{p}.arrow")), &schema, batch_size)?);
        }
        outputs.push(Output::create(dir.join(format!("anonymous-{p}.arrow")), &schema, batch_size)?);
        let stream = plan.execute(p, Arc::clone(&task)).map_err(failed)?;
        tasks.push(SpawnedTask::spawn(split_partition(stream, outputs, columns.len())));
    }
    let mut written = 0;
    for task in tasks {
        written +=
            task.join_unwind().await.map_err(|e| failed(DataFusionError::ExecutionJoin(Box::new(e))))??;
    }
    read_files_whole(ctx);
    for (k, folder) in folders.iter().enumerate() {
        for p in 0..partitions {
            let name = format!("anonymous-{p}.arrow");
            let (from, to) = (dir.join(&name), folder.join(&name));
            // A copy where the spill folder's file system has no hard links.
            std::fs::hard_link(&from, &to).or_else(|_| std::fs::copy(&from, &to).map(drop)).map_err(spill)?;
        }
        let url = format!("{}/", folder.display());
        ctx.register_arrow(table(k as u64), &url, ArrowReadOptions::default()).await.map_err(failed)?;
    }
    tracing::info!(rows = written, slices, elapsed_s = started.elapsed().as_secs_f64(), "split identifies");
    Ok(())
}

/// Writes each row of one partition's batches to the output of its slice
/// (the last output for none); the rows written.
async fn split_partition(
    mut stream: SendableRecordBatchStream,
    mut outputs: Vec<Output>,
    columns: usize,
) -> Result<u64> {
    let slices = outputs.len() - 1;
    let projection: Vec<usize> = (0..columns).collect();
    while let Some(batch) = stream.try_next().await.map_err(failed)? {
        let slice = batch.column(columns);
        let rows = batch.project(&projection).map_err(failed_arrow)?;
        for (k, output) in outputs.iter_mut().enumerate() {
            // A null slice is no slice's: `eq` leaves it out.
            let keep = match k {
                k if k < slices => eq(slice, &Int64Array::new_scalar(k as i64)),
                _ => is_null(slice),
            };
            output.push(&rows, &keep.map_err(failed_arrow)?)?;
        }
    }
    let mut written = 0;
    for output in outputs {
        written += output.finish()?;
    }
    Ok(written)
}

/// DataFusion 55.2 reads a byte range of an Arrow file whole into memory,
/// but a whole file a batch at a time: the session's scans take whole files
/// from now on (a slice has a file per partition of the split). With ranges,
/// the 5M build peaked 100 MB higher.
fn read_files_whole(ctx: &SessionContext) {
    ctx.state_ref().write().config_mut().options_mut().optimizer.repartition_file_scans = false;
}

/// The table of slice `k`'s identifies.
pub fn table(k: u64) -> String {
    format!("identifies_slice_{k}")
}

fn failed(source: DataFusionError) -> Error {
    Error::DataFusion { action: "splitting identifies into slices", source }
}

fn failed_arrow(source: ArrowError) -> Error {
    failed(DataFusionError::ArrowError(Box::new(source), None))
}

/// One partition's file of a slice, written a full batch at a time.
struct Output {
    path: PathBuf,
    coalescer: BatchCoalescer,
    writer: FileWriter<BufWriter<File>>,
    rows: u64,
}

impl Output {
    fn create(path: PathBuf, schema: &SchemaRef, batch_size: usize) -> Result<Self> {
        let file = File::create(&path).map_err(|source| spill_at(&path, source))?;
        let writer = FileWriter::try_new(BufWriter::new(file), schema).map_err(failed_arrow)?;
        Ok(Output { path, coalescer: BatchCoalescer::new(Arc::clone(schema), batch_size), writer, rows: 0 })
    }

    fn push(&mut self, rows: &RecordBatch, keep: &BooleanArray) -> Result<()> {
        if keep.true_count() > 0 {
            self.coalescer.push_batch_with_filter(rows.clone(), keep).map_err(failed_arrow)?;
        }
        self.write_completed()
    }

    fn write_completed(&mut self) -> Result<()> {
        while let Some(batch) = self.coalescer.next_completed_batch() {
            self.rows += batch.num_rows() as u64;
            self.writer.write(&batch).map_err(|e| self.failed(e))?;
        }
        Ok(())
    }

    /// Writes what is left and closes the file; the rows written.
    fn finish(mut self) -> Result<u64> {
        self.coalescer.finish_buffered_batch().map_err(failed_arrow)?;
        self.write_completed()?;
        self.writer.finish().map_err(|e| self.failed(e))?;
        Ok(self.rows)
    }

    /// An error writing the file is the spill folder's (a full disk, say).
    fn failed(&self, error: ArrowError) -> Error {
        match error {
            ArrowError::IoError(_, source) => spill_at(&self.path, source),
            other => failed_arrow(other),
        }
    }
}

fn spill_at(path: &Path, source: std::io::Error) -> Error {
    Error::Spill { dir: path.display().to_string(), source }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type};

    use super::*;
    use crate::slice::{slice_of, udf};

    async fn rows(ctx: &SessionContext, sql: &str) -> Vec<(Option<String>, i64)> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let mut rows: Vec<(Option<String>, i64)> = batches
            .iter()
            .flat_map(|b| {
                let users = b.column(0).as_string::<i32>();
                let n = b.column(1).as_primitive::<Int64Type>();
                (0..b.num_rows()).map(|i| (users.is_valid(i).then(|| users.value(i).to_owned()), n.value(i)))
            })
            .collect();
        rows.sort();
        rows
    }

    /// Every identify with a user id is in its user's slice only, every one
    /// without is in all of them, and nothing else is.
    #[tokio::test]
    async fn a_slice_holds_its_users_identifies_and_every_one_without_a_user() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
            Field::new("other", DataType::Utf8, true),
        ]));
        let users: Vec<Option<String>> =
            (0..500).map(|i| (i % 7 != 0).then(|| format!("user{}", i % 40))).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(users.clone())),
                Arc::new(Int64Array::from_iter_values(0..500)),
                Arc::new(StringArray::from(vec!["x"; 500])),
            ],
        )
        .unwrap();
        let ctx =
            SessionContext::new_with_config(datafusion::prelude::SessionConfig::new().with_batch_size(64));
        ctx.register_udf(udf());
        // Three batches, read in several partitions.
        let memory = datafusion::datasource::MemTable::try_new(
            Arc::clone(&schema),
            vec![vec![batch.slice(0, 200), batch.slice(200, 100)], vec![batch.slice(300, 200)]],
        )
        .unwrap();
        ctx.register_table("identifies", Arc::new(memory)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let columns = ["user_id".to_owned(), "n".to_owned()];
        split_identifies(&ctx, &columns, 3, dir.path()).await.unwrap();

        let anonymous: Vec<(Option<String>, i64)> =
            (0..500).filter(|&i| users[i as usize].is_none()).map(|i| (None, i)).collect();
        for k in 0..3 {
            let mut expected: Vec<(Option<String>, i64)> = (0..500)
                .filter(|&i| users[i as usize].as_deref().is_some_and(|u| slice_of(u, 3) == k as i64))
                .map(|i| (users[i as usize].clone(), i))
                .chain(anonymous.clone())
                .collect();
            expected.sort();
            let got = rows(&ctx, &format!("SELECT user_id, n FROM {}", table(k))).await;
            assert!(got.len() > anonymous.len(), "slice {k} has users");
            assert_eq!(got, expected, "slice {k}");
        }
        let fields = ctx.table(table(0)).await.unwrap().schema().fields().len();
        assert_eq!(fields, 2, "only the columns asked for");
    }
}

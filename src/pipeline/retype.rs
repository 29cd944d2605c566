//! Staged `identifies` files written before a column new to the run went
//! from Int64 to Float64 (the type join of SPEC §5), rewritten with the
//! column's final type once the load has read everything. The cast is
//! exact: an integer's Float64 is the double nearest to it, which is what
//! its text read as a Float64 gives.

use std::sync::Arc;

use arrow::compute::cast;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::errors::ParquetError;

use super::parquet_out::ParquetOut;
use super::write::{Files, Written, opened};
use crate::error::{Error, Result};

/// Rewrites each of `written`'s `identifies` files that has a column whose
/// type is not `schema`'s, and puts the new file in its place in `written`.
pub async fn retype(files: &Files, written: &mut Written, schema: &SchemaRef) -> Result<()> {
    for (relative, file_schema) in std::mem::take(&mut written.identifies) {
        let target = final_types(&file_schema, schema);
        if target == file_schema {
            written.identifies.push((relative, file_schema));
            continue;
        }
        let rewritten = rewrite(files, &relative, &target).await?;
        written.files.retain(|file| *file != relative);
        written.files.push(rewritten.clone());
        written.identifies.push((rewritten, target));
    }
    Ok(())
}

/// `file`'s columns with `schema`'s types.
fn final_types(file: &SchemaRef, schema: &SchemaRef) -> SchemaRef {
    let fields = file.fields().iter().map(|f| match schema.field_with_name(f.name()) {
        Ok(settled) => Arc::new(settled.clone()),
        Err(_) => Arc::clone(f),
    });
    Arc::new(Schema::new_with_metadata(fields.collect::<Vec<_>>(), file.metadata().clone()))
}

/// Writes `relative`'s rows with `target`'s types to a new staged file of
/// its partition, deletes it, and returns the new file.
async fn rewrite(files: &Files, relative: &str, target: &SchemaRef) -> Result<String> {
    let failed = |source: ParquetError| Error::Write { url: files.url_of(relative), source };
    let stored = |e: object_store::Error| failed(ParquetError::External(Box::new(e)));
    let path = files.staged(relative);
    // Whole, as the file is read once: it is the rows of a partition up to
    // the change of type, which comes early in all but rare runs.
    let bytes = files.store().get(&path).await.map_err(stored)?.bytes().await.map_err(stored)?;
    let rows = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(failed)?.build().map_err(failed)?;
    // `identifies/received_date=…/part-….parquet`
    let partition = relative.split('/').nth(1).unwrap_or_default();
    let mut created = Vec::new();
    let mut out: Option<ParquetOut> = None;
    for batch in rows {
        let batch = batch.map_err(|e| failed(e.into()))?;
        let columns = batch.columns().iter().zip(target.fields()).map(|(c, f)| cast(c, f.data_type()));
        let batch = columns
            .collect::<std::result::Result<Vec<_>, _>>()
            .and_then(|columns| RecordBatch::try_new(Arc::clone(target), columns))
            .map_err(|e| failed(e.into()))?;
        opened(&mut out, || {
            files.create("identifies", partition, Arc::clone(target), Some(&batch), &mut created)
        })?
        .write(&batch)
        .await?;
    }
    let (Some(out), Some(rewritten)) = (out, created.pop()) else {
        return Err(failed(ParquetError::General("a staged file without rows".into())));
    };
    out.close().await?;
    files.store().delete(&path).await.map_err(stored)?;
    Ok(rewritten)
}

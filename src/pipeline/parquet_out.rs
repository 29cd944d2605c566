//! Parquet files written to the warehouse through `object_store`'s
//! buffered multipart writer, with the same settings for every table.
//! A file's columns can be encoded in parallel: `users` is written at the
//! end of its build, when nothing else is left to run on the other cores.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use tokio::io::AsyncWriteExt;

use super::json::FastHash;
use crate::error::{Error, Result};

const ROW_GROUP_ROWS: usize = 128 * 1024;

pub struct ParquetOut {
    /// Encodes into memory; each finished row group is put to `sink`.
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// The open row group's writers, one per leaf column, and its rows.
    group: Vec<ArrowColumnWriter>,
    rows: usize,
    parallel: bool,
    sink: BufWriter,
    url: String,
}

impl ParquetOut {
    /// `sample`, the file's first batch if known, picks the columns written
    /// without a dictionary. `parallel` encodes the columns on rayon's pool.
    pub fn create(
        store: Arc<dyn ObjectStore>,
        path: Path,
        url: String,
        schema: SchemaRef,
        sample: Option<&RecordBatch>,
        parallel: bool,
    ) -> Result<Self> {
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
        for column in sample.map(mostly_distinct).unwrap_or_default() {
            props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
        }
        let failed = |source| Error::Write { url: url.clone(), source };
        // ArrowWriter embeds the Arrow schema in the footer, as readers expect.
        let writer =
            ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props.build())).map_err(failed)?;
        let (file, factory) = writer.into_serialized_writer().map_err(failed)?;
        let sink = BufWriter::new(store, path);
        Ok(ParquetOut { file, factory, schema, group: Vec::new(), rows: 0, parallel, sink, url })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Records `key = value` in the file's footer.
    pub fn set_metadata(&mut self, key: &str, value: String) {
        self.file.append_key_value_metadata(parquet::file::metadata::KeyValue::new(key.to_owned(), value));
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let rows = (ROW_GROUP_ROWS - self.rows).min(batch.num_rows() - offset);
            self.encode(&batch.slice(offset, rows)).map_err(|e| self.failed(e))?;
            offset += rows;
            if self.rows == ROW_GROUP_ROWS {
                self.finish_group().await?;
            }
        }
        Ok(())
    }

    pub async fn close(mut self) -> Result<()> {
        if self.rows > 0 {
            self.finish_group().await?;
        }
        self.file.finish().map_err(|e| self.failed(e))?;
        self.put().await?;
        self.sink.shutdown().await.map_err(|e| self.failed(e.into()))
    }

    fn encode(&mut self, batch: &RecordBatch) -> parquet::errors::Result<()> {
        if self.group.is_empty() {
            self.group = self.factory.create_column_writers(self.file.flushed_row_groups().len())?;
        }
        let mut work: Vec<(&mut [ArrowColumnWriter], Vec<ArrowLeafColumn>)> = Vec::new();
        let mut writers = self.group.as_mut_slice();
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            let leaves = compute_leaves(field, column)?;
            let (these, rest) = std::mem::take(&mut writers).split_at_mut(leaves.len());
            writers = rest;
            work.push((these, leaves));
        }
        let encode = |(writers, leaves): (&mut [ArrowColumnWriter], Vec<ArrowLeafColumn>)| {
            writers.iter_mut().zip(&leaves).try_for_each(|(writer, leaf)| writer.write(leaf))
        };
        match self.parallel {
            true => work.into_par_iter().try_for_each(encode)?,
            false => work.into_iter().try_for_each(encode)?,
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Closes the open row group and puts its bytes.
    async fn finish_group(&mut self) -> Result<()> {
        let writers = std::mem::take(&mut self.group);
        let chunks: parquet::errors::Result<Vec<ArrowColumnChunk>> = match self.parallel {
            true => writers.into_par_iter().map(ArrowColumnWriter::close).collect(),
            false => writers.into_iter().map(ArrowColumnWriter::close).collect(),
        };
        let appended = chunks.and_then(|chunks| {
            let mut group = self.file.next_row_group()?;
            for chunk in chunks {
                chunk.append_to_row_group(&mut group)?;
            }
            group.close()?;
            self.file.flush().map_err(ParquetError::from)
        });
        appended.map_err(|e| self.failed(e))?;
        self.rows = 0;
        self.put().await
    }

    /// Hands what has been encoded to the multipart upload.
    async fn put(&mut self) -> Result<()> {
        let bytes = Bytes::from(std::mem::take(self.file.inner_mut()));
        self.sink.put(bytes).await.map_err(|e| self.failed(ParquetError::External(Box::new(e))))
    }

    fn failed(&self, source: ParquetError) -> Error {
        Error::Write { url: self.url.clone(), source }
    }
}

/// Columns whose sampled values are mostly different (ids, e-mails,
/// timestamps, the traits JSON): the writer would hash every value into a
/// dictionary until the dictionary outgrows its page and is given up, in
/// every row group, a tenth of the load's time for nothing.
fn mostly_distinct(sample: &RecordBatch) -> Vec<String> {
    sample
        .schema()
        .fields()
        .iter()
        .zip(sample.columns())
        .filter(|(_, column)| {
            let present = column.len() - column.null_count();
            present >= MIN_SAMPLE && distinct(column.as_ref()).is_some_and(|d| 2 * d > present)
        })
        .map(|(field, _)| field.name().clone())
        .collect()
}

/// Fewer present values than this say nothing about a column.
const MIN_SAMPLE: usize = 64;

/// Distinct present values, for the types a dictionary would hash.
fn distinct(column: &dyn Array) -> Option<usize> {
    fn count<T: Hash + Eq>(values: impl Iterator<Item = Option<T>>) -> usize {
        values.flatten().collect::<HashSet<T, FastHash>>().len()
    }
    Some(match column.data_type() {
        DataType::Utf8 => count(column.as_string::<i32>().iter()),
        DataType::Int64 => count(column.as_primitive::<Int64Type>().iter()),
        DataType::Float64 => count(column.as_primitive::<Float64Type>().iter().map(|v| v.map(f64::to_bits))),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            count(column.as_primitive::<TimestampMicrosecondType>().iter())
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, ListBuilder, StringArray, StringBuilder};
    use arrow::compute::concat_batches;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn rows(from: usize, n: usize) -> RecordBatch {
        let ids: ArrayRef =
            Arc::new(StringArray::from_iter_values((from..from + n).map(|i| format!("u{i}"))));
        let counts: ArrayRef =
            Arc::new(Int64Array::from_iter((from..from + n).map(|i| (i % 3 != 0).then_some(i as i64))));
        let mut lists = ListBuilder::new(StringBuilder::new());
        for i in from..from + n {
            for j in 0..i % 3 {
                lists.values().append_value(format!("a{i}-{j}"));
            }
            lists.append(i % 5 != 0);
        }
        let lists: ArrayRef = Arc::new(lists.finish());
        RecordBatch::try_from_iter([("id", ids), ("count", counts), ("anonymous_ids", lists)]).unwrap()
    }

    /// Encoded by one thread or by several, a file reads back as the rows
    /// written, in the same row groups, whatever the batches' boundaries.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_encoded_in_parallel_read_back_as_written() {
        let batches: Vec<RecordBatch> =
            [(0, 1000), (1000, 130_000), (131_000, 3), (131_003, 140_000)].map(|(f, n)| rows(f, n)).into();
        let schema = batches[0].schema();
        let expected = concat_batches(&schema, &batches).unwrap();
        let mut files = Vec::new();
        for parallel in [false, true] {
            let store = Arc::new(InMemory::new());
            let path = Path::from(format!("t/{parallel}.parquet"));
            let mut out = ParquetOut::create(
                store.clone(),
                path.clone(),
                "mem".into(),
                schema.clone(),
                Some(&batches[0]),
                parallel,
            )
            .unwrap();
            out.set_metadata("k", "v".into());
            for batch in &batches {
                out.write(batch).await.unwrap();
            }
            out.close().await.unwrap();
            let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
            let meta = reader.metadata().clone();
            let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
            assert_eq!(groups, [131_072, 131_072, 8_859], "parallel: {parallel}");
            let kv = meta.file_metadata().key_value_metadata().unwrap();
            assert!(kv.iter().any(|kv| kv.key == "k" && kv.value.as_deref() == Some("v")));
            let read: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
            assert_eq!(concat_batches(&schema, &read).unwrap(), expected, "parallel: {parallel}");
            files.push(bytes);
        }
        assert_eq!(files[0], files[1], "the same bytes either way");
    }

    #[test]
    fn only_mostly_distinct_columns_lose_their_dictionary() {
        let n = 1000;
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("id-{i}"))));
        let plans: ArrayRef = Arc::new(StringArray::from_iter_values((0..n).map(|i| ["free", "pro"][i % 2])));
        let counts: ArrayRef =
            Arc::new(Int64Array::from_iter((0..n as i64).map(|i| (i % 3 != 0).then_some(i))));
        let few: ArrayRef = Arc::new(Int64Array::from_iter((0..n as i64).map(|i| (i < 10).then_some(i))));
        let batch =
            RecordBatch::try_from_iter([("id", ids), ("plan", plans), ("logins", counts), ("rare", few)])
                .unwrap();
        assert_eq!(mostly_distinct(&batch), ["id", "logins"]);
    }
}

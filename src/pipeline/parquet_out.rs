//! Parquet files written to the warehouse through `object_store`'s
//! buffered multipart writer, with the same settings for every table.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::json::FastHash;
use crate::error::{Error, Result};

pub struct ParquetOut {
    writer: AsyncArrowWriter<BufWriter>,
    url: String,
}

impl ParquetOut {
    /// `sample`, the file's first batch if known, picks the columns written
    /// without a dictionary.
    pub fn create(
        store: Arc<dyn ObjectStore>,
        path: Path,
        url: String,
        schema: SchemaRef,
        sample: Option<&RecordBatch>,
    ) -> Result<Self> {
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(128 * 1024));
        for column in sample.map(mostly_distinct).unwrap_or_default() {
            props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
        }
        let props = props.build();
        let writer = AsyncArrowWriter::try_new(BufWriter::new(store, path), schema, Some(props))
            .map_err(|source| Error::Write { url: url.clone(), source })?;
        Ok(ParquetOut { writer, url })
    }

    /// Records `key = value` in the file's footer.
    pub fn set_metadata(&mut self, key: &str, value: String) {
        self.writer.append_key_value_metadata(parquet::file::metadata::KeyValue::new(key.to_owned(), value));
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).await.map_err(|source| Error::Write { url: self.url.clone(), source })
    }

    pub async fn close(self) -> Result<()> {
        let url = self.url;
        self.writer.close().await.map(drop).map_err(|source| Error::Write { url, source })
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
    use arrow::array::{ArrayRef, Int64Array, StringArray};

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

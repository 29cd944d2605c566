//! Parquet files written to the warehouse through `object_store`'s
//! buffered multipart writer, with the same settings for every table.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};

/// Columns whose values are (nearly) all different: a dictionary would only
/// cost time before the writer gives it up.
const UNIQUE_COLUMNS: [&str; 6] =
    ["id", "traits", "timestamp", "received_at", "original_timestamp", "sent_at"];

pub struct ParquetOut {
    writer: AsyncArrowWriter<BufWriter>,
    url: String,
}

impl ParquetOut {
    pub fn create(store: Arc<dyn ObjectStore>, path: Path, url: String, schema: SchemaRef) -> Result<Self> {
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(128 * 1024));
        for column in UNIQUE_COLUMNS.iter().filter(|c| schema.field_with_name(c).is_ok()) {
            props = props.set_column_dictionary_enabled(ColumnPath::from(*column), false);
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

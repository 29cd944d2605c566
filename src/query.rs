//! `query` (SPEC §1): SQL over every table of the warehouse, printed as a
//! table, CSV or JSON lines.

use std::io::Write;

use datafusion::arrow::record_batch::RecordBatch;

use crate::cli::Format;
use crate::config::WarehouseConfig;
use crate::error::{Error, Result};
use crate::pipeline::commit::Warehouse;
use crate::session::{register_tables, session};

pub async fn query(
    config: &WarehouseConfig,
    warehouse: &Warehouse,
    threads: usize,
    sql: &str,
    format: Format,
) -> Result<()> {
    let state = warehouse.open().await?;
    let (ctx, _spill) = session(config, threads, warehouse)?;
    register_tables(&ctx, warehouse, &state.columns).await?;
    let one_line = |e: datafusion::error::DataFusionError| Error::Query(e.to_string().replace('\n', " "));
    let frame = ctx.sql(sql).await.map_err(one_line)?;
    let batches = frame.collect().await.map_err(one_line)?;
    print(&batches, format).map_err(|e| Error::Query(format!("cannot print the result: {e}")))
}

/// CSV has no nested values: lists and structs are written as their text
/// (`[a, b]`), as the table format shows them.
fn flat(batch: &RecordBatch) -> std::result::Result<RecordBatch, Box<dyn std::error::Error>> {
    use arrow::array::{Array, ArrayRef, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.data_type().is_nested() {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default())?;
            let text: StringArray = (0..column.len())
                .map(|i| column.is_valid(i).then(|| formatter.value(i).to_string()))
                .collect();
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(std::sync::Arc::new(text));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    Ok(RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns)?)
}

pub fn print(batches: &[RecordBatch], format: Format) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Table => writeln!(out, "{}", arrow::util::pretty::pretty_format_batches(batches)?)?,
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
            for batch in batches {
                writer.write(&flat(batch)?)?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut out);
            writer.write_batches(&batches.iter().collect::<Vec<_>>())?;
            writer.finish()?;
        }
    }
    Ok(())
}

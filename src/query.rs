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
    let ctx = session(config, threads, warehouse)?;
    register_tables(&ctx, warehouse, &state.columns).await?;
    let one_line = |e: datafusion::error::DataFusionError| Error::Query(e.to_string().replace('\n', " "));
    let frame = ctx.sql(sql).await.map_err(one_line)?;
    let batches = frame.collect().await.map_err(one_line)?;
    print(&batches, format).map_err(|e| Error::Query(format!("cannot print the result: {e}")))
}

fn print(batches: &[RecordBatch], format: Format) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Table => writeln!(out, "{}", arrow::util::pretty::pretty_format_batches(batches)?)?,
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
            for batch in batches {
                writer.write(batch)?;
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

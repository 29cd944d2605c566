//! Pass two of a load: the staged spill becomes Parquet files of
//! `identifies`, `discards` and `rejects` under the run's staging prefix,
//! one file per table and partition.

use std::io;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::columns::Resolved;
use super::commit::Warehouse;
use super::identifies::{BatchBuilder, discards_schema, identifies_schema};
use super::ingest::Ingest;
use super::parquet_out::ParquetOut;
use super::rejects::{rejects_batch, rejects_schema};
use crate::error::{Error, Result};

/// What pass two wrote, relative to the warehouse.
#[derive(Debug, Default)]
pub struct Written {
    pub files: Vec<String>,
    /// `identifies` partitions, as `received_date=YYYY-MM-DD`.
    pub partitions: Vec<String>,
    pub discarded: u64,
}

struct Ctx<'a> {
    warehouse: &'a Warehouse,
    run_id: &'a str,
    written: Written,
}

impl Ctx<'_> {
    fn create(
        &mut self,
        table: &str,
        partition: &str,
        schema: arrow::datatypes::SchemaRef,
    ) -> Result<ParquetOut> {
        let relative = format!("{table}/{partition}/part-{}.parquet", self.run_id);
        let path = self.warehouse.staged(self.run_id, &relative);
        let url = self.warehouse.location.url_of(&self.warehouse.table_path(&relative));
        self.written.files.push(relative);
        ParquetOut::create(Arc::clone(&self.warehouse.location.store), path, url, schema)
    }
}

pub async fn write_tables(
    warehouse: &Warehouse,
    ingest: &mut Ingest,
    resolved: &Resolved,
    run_id: &str,
    now: DateTime<Utc>,
    batch_rows: usize,
) -> Result<Written> {
    let mut ctx = Ctx { warehouse, run_id, written: Written::default() };
    let loaded_at = now.timestamp_micros();
    let schema = identifies_schema(&resolved.schema);
    for date in ingest.stage.dates() {
        let partition = format!("received_date={date}");
        let mut out = ctx.create("identifies", &partition, Arc::clone(&schema))?;
        let mut discards: Option<ParquetOut> = None;
        let mut builder = BatchBuilder::new(
            Arc::clone(&schema),
            &resolved.schema,
            &resolved.targets,
            &ingest.columns,
            loaded_at,
        );
        let mut events = ingest.stage.read_events(&date).map_err(spill)?.peekable();
        while events.peek().is_some() {
            tokio::task::block_in_place(|| -> Result<()> {
                for event in events.by_ref() {
                    builder.push(&event.map_err(spill)?);
                    if builder.rows() == batch_rows {
                        break;
                    }
                }
                Ok(())
            })?;
            let (batch, discarded) = builder.finish();
            out.write(&batch).await?;
            if let Some(discarded) = discarded {
                ctx.written.discarded += discarded.num_rows() as u64;
                if discards.is_none() {
                    discards = Some(ctx.create("discards", &partition, discards_schema())?);
                }
                if let Some(d) = discards.as_mut() {
                    d.write(&discarded).await?;
                }
            }
        }
        out.close().await?;
        if let Some(d) = discards {
            d.close().await?;
        }
        ctx.written.partitions.push(partition);
    }
    if ingest.stage.reject_count() > 0 {
        let partition = format!("received_date={}", now.format("%Y-%m-%d"));
        let mut out = ctx.create("rejects", &partition, rejects_schema())?;
        let mut rejects = ingest.stage.read_rejects().map_err(spill)?.peekable();
        while rejects.peek().is_some() {
            let chunk = tokio::task::block_in_place(|| {
                rejects.by_ref().take(batch_rows).collect::<io::Result<Vec<_>>>()
            })
            .map_err(spill)?;
            out.write(&rejects_batch(&chunk, loaded_at)).await?;
        }
        out.close().await?;
    }
    Ok(ctx.written)
}

fn spill(source: io::Error) -> Error {
    Error::Spill { dir: "the run's spill folder".into(), source }
}

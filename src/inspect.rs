//! `runs` and `schema`: what the warehouse's log knows, printed like query
//! results (table, CSV or JSON lines).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::cli::Format;
use crate::error::{Error, Result};
use crate::pipeline::commit::Warehouse;
use crate::pipeline::identifies::{discards_schema, identifies_schema};
use crate::pipeline::rejects::rejects_schema;
use crate::query::print;
use crate::session::derived_reader;

/// Committed runs, newest first: a warehouse sync history.
pub async fn runs(warehouse: &Warehouse, limit: usize, format: Format) -> Result<()> {
    let entries = warehouse.entries().await?;
    let recent: Vec<_> = entries.iter().rev().take(limit).collect();
    let text = |f: &dyn Fn(&crate::pipeline::commit::LogEntry) -> String| -> ArrayRef {
        Arc::new(recent.iter().map(|e| Some(f(e))).collect::<StringArray>())
    };
    let count = |f: &dyn Fn(&crate::summary::Summary) -> u64| -> ArrayRef {
        Arc::new(recent.iter().map(|e| f(&e.summary) as i64).collect::<Int64Array>())
    };
    let columns = vec![
        text(&|e| e.run_id.clone()),
        text(&|e| e.started_at.clone()),
        text(&|e| e.committed_at.clone()),
        text(&|e| if e.summary.files_failed.is_empty() { "ok".into() } else { "objects_failed".into() }),
        count(&|s| s.files_loaded),
        count(&|s| s.files_failed.len() as u64),
        count(&|s| s.identifies_loaded),
        count(&|s| s.duplicates),
        count(&|s| s.rejected),
        count(&|s| s.discarded_values),
        count(&|s| s.new_columns.len() as u64),
    ];
    let names = [
        ("run_id", DataType::Utf8),
        ("started_at", DataType::Utf8),
        ("ended_at", DataType::Utf8),
        ("status", DataType::Utf8),
        ("files_loaded", DataType::Int64),
        ("files_failed", DataType::Int64),
        ("rows_loaded", DataType::Int64),
        ("duplicates", DataType::Int64),
        ("rejected", DataType::Int64),
        ("discarded_values", DataType::Int64),
        ("new_columns", DataType::Int64),
    ];
    let schema: SchemaRef = Arc::new(Schema::new(
        names.iter().map(|(n, t)| Field::new(*n, t.clone(), false)).collect::<Vec<_>>(),
    ));
    output(RecordBatch::try_new(schema, columns), format)
}

/// Every table's columns and types; for the dynamic columns of
/// `identifies`, the run that created them and when.
pub async fn schema(warehouse: &Warehouse, format: Format) -> Result<()> {
    let entries = warehouse.entries().await?;
    let started: HashMap<&str, &str> =
        entries.iter().map(|e| (e.run_id.as_str(), e.started_at.as_str())).collect();
    let dynamic = entries.last().map(|e| e.columns.clone()).unwrap_or_default();
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut add = |table: &str, schema: &Schema| {
        for field in schema.fields() {
            let def = dynamic.iter().find(|c| c.name == *field.name() && table == "identifies");
            let (run, at) = match def {
                Some(d) => {
                    (d.since_run.clone(), started.get(d.since_run.as_str()).unwrap_or(&"").to_string())
                }
                None => (String::new(), String::new()),
            };
            rows.push([table.into(), field.name().clone(), type_name(field.data_type()), run, at]);
        }
    };
    add("identifies", &identifies_schema(&dynamic));
    add("rejects", &rejects_schema());
    add("discards", &discards_schema());
    for table in ["users", "identity_map"] {
        if let Some(schema) = derived_schema(warehouse, table).await? {
            add(table, &schema);
        }
    }
    let column =
        |i: usize| -> ArrayRef { Arc::new(rows.iter().map(|r| Some(r[i].clone())).collect::<StringArray>()) };
    let fields = ["table", "column", "type", "first_seen_run", "first_seen_at"];
    let schema = Arc::new(Schema::new(
        fields.iter().map(|n| Field::new(*n, DataType::Utf8, false)).collect::<Vec<_>>(),
    ));
    output(RecordBatch::try_new(schema, (0..5).map(column).collect()), format)
}

fn type_name(t: &DataType) -> String {
    match t {
        DataType::Timestamp(_, _) => "Timestamp".into(),
        DataType::List(item) => format!("List<{}>", type_name(item.data_type())),
        other => other.to_string(),
    }
}

async fn derived_schema(warehouse: &Warehouse, table: &str) -> Result<Option<Schema>> {
    Ok(derived_reader(warehouse, table).await?.map(|reader| reader.schema().as_ref().clone()))
}

fn output(batch: std::result::Result<RecordBatch, arrow::error::ArrowError>, format: Format) -> Result<()> {
    let batch = batch.map_err(|e| Error::Query(e.to_string()))?;
    print(&[batch], format).map_err(|e| Error::Query(format!("cannot print: {e}")))
}

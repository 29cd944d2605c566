//! The `rejects` table (SPEC §3, §5): each rejected line with its source,
//! line number, reason code, message and exact bytes.

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::stage::StagedReject;
use super::timestamp::Micros;
use super::typing::timestamp_type;

pub fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("line", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("raw", DataType::Binary, false),
        Field::new("loaded_at", timestamp_type(), false),
    ]))
}

pub fn rejects_batch(rejects: &[StagedReject], loaded_at: Micros) -> RecordBatch {
    let mut source = StringBuilder::new();
    let mut line = Int64Builder::new();
    let mut reason = StringBuilder::new();
    let mut message = StringBuilder::new();
    let mut raw = BinaryBuilder::new();
    for r in rejects {
        source.append_value(&r.source);
        line.append_value(r.line as i64);
        reason.append_value(r.reason.code());
        message.append_value(&r.message);
        raw.append_value(&r.raw);
    }
    let mut loaded = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    loaded.append_value_n(loaded_at, rejects.len());
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(line.finish()),
        Arc::new(reason.finish()),
        Arc::new(message.finish()),
        Arc::new(raw.finish()),
        Arc::new(loaded.finish()),
    ];
    RecordBatch::try_new(rejects_schema(), arrays).unwrap_or_else(|e| panic!("rejects batch: {e}"))
}

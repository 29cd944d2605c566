//! The second pass of a load: staged events become `identifies` record
//! batches with the table's settled column types (SPEC §5), and values that
//! cannot be stored become `discards` rows.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::columns::{ColumnDef, Columns, DiscardReason, Target};
use super::stage::StagedEvent;
use super::timestamp::Micros;
use super::typing::{ColumnType, Converted, convert, json_text, timestamp_type};

/// The fixed columns, then the dynamic ones in table order.
pub fn identifies_schema(columns: &[ColumnDef]) -> SchemaRef {
    let ts = timestamp_type;
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("anonymous_id", DataType::Utf8, true),
        Field::new("timestamp", ts(), false),
        Field::new("received_at", ts(), false),
        Field::new("loaded_at", ts(), false),
        Field::new("original_timestamp", ts(), true),
        Field::new("sent_at", ts(), true),
        Field::new("channel", DataType::Utf8, true),
        Field::new("traits", DataType::Utf8, true),
    ];
    fields.extend(columns.iter().map(|c| Field::new(&c.name, c.column_type.data_type(), true)));
    Arc::new(Schema::new(fields))
}

pub fn discards_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("received_at", timestamp_type(), false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

/// A growing column of one settled type. Nulls are filled in lazily, so a
/// row costs nothing in the columns it has no value for.
enum Column {
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Utf8(StringBuilder),
}

impl Column {
    fn new(t: ColumnType) -> Self {
        match t {
            ColumnType::Boolean => Column::Boolean(BooleanBuilder::new()),
            ColumnType::Int64 => Column::Int64(Int64Builder::new()),
            ColumnType::Float64 => Column::Float64(Float64Builder::new()),
            ColumnType::Timestamp => Column::Timestamp(timestamps()),
            ColumnType::Utf8 => Column::Utf8(StringBuilder::new()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Column::Boolean(b) => b.len(),
            Column::Int64(b) => b.len(),
            Column::Float64(b) => b.len(),
            Column::Timestamp(b) => b.len(),
            Column::Utf8(b) => b.len(),
        }
    }

    fn pad_to(&mut self, rows: usize) {
        let n = rows.saturating_sub(self.len());
        // Most values land in a column that is already full up to their row.
        if n == 0 {
            return;
        }
        match self {
            Column::Boolean(b) => b.append_nulls(n),
            Column::Int64(b) => b.append_nulls(n),
            Column::Float64(b) => b.append_nulls(n),
            Column::Timestamp(b) => b.append_nulls(n),
            Column::Utf8(b) => b.append_nulls(n),
        }
    }

    fn push(&mut self, value: Converted) {
        match (self, value) {
            (Column::Boolean(b), Converted::Boolean(v)) => b.append_value(v),
            (Column::Int64(b), Converted::Int64(v)) => b.append_value(v),
            (Column::Float64(b), Converted::Float64(v)) => b.append_value(v),
            (Column::Timestamp(b), Converted::Timestamp(v)) => b.append_value(v),
            (Column::Utf8(b), Converted::Utf8(v)) => b.append_value(v),
            (column, _) => column.pad_to(column.len() + 1),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        let rows = self.len();
        match self {
            Column::Boolean(b) => Arc::new(b.finish()),
            Column::Int64(b) => Arc::new(std::mem::replace(b, Int64Builder::with_capacity(rows)).finish()),
            Column::Float64(b) => {
                Arc::new(std::mem::replace(b, Float64Builder::with_capacity(rows)).finish())
            }
            Column::Timestamp(b) => finish_timestamps(b),
            Column::Utf8(b) => finish_strings(b),
        }
    }
}

fn timestamps() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

// A finished builder starts over empty; the next batch is about as large as
// this one, so its builder gets that capacity up front instead of growing
// (and faulting in fresh pages) a doubling at a time.

fn finish_strings(b: &mut StringBuilder) -> ArrayRef {
    let next = StringBuilder::with_capacity(b.len(), b.values_slice().len());
    Arc::new(std::mem::replace(b, next).finish())
}

fn finish_timestamps(b: &mut TimestampMicrosecondBuilder) -> ArrayRef {
    let next = TimestampMicrosecondBuilder::with_capacity(b.len()).with_timezone("UTC");
    Arc::new(std::mem::replace(b, next).finish())
}

/// Builds one record batch of `identifies` and its discards.
pub struct BatchBuilder {
    schema: SchemaRef,
    columns: Arc<Bound>,
    loaded_at: Micros,
    rows: usize,
    id: StringBuilder,
    user_id: StringBuilder,
    anonymous_id: StringBuilder,
    timestamp: TimestampMicrosecondBuilder,
    received_at: TimestampMicrosecondBuilder,
    original_timestamp: TimestampMicrosecondBuilder,
    sent_at: TimestampMicrosecondBuilder,
    channel: StringBuilder,
    traits: StringBuilder,
    dynamic: Vec<Column>,
    discards: DiscardBuilder,
}

/// Where each staged column id goes, and its name: shared by the writers of
/// all partitions.
#[derive(Debug)]
pub struct Bound {
    pub defs: Vec<ColumnDef>,
    pub targets: Vec<Target>,
    pub names: Vec<String>,
}

impl Bound {
    pub fn new(defs: &[ColumnDef], targets: &[Target], columns: &Columns) -> Self {
        let names = (0..targets.len() as u32).map(|id| columns.name(id).to_owned()).collect();
        Bound { defs: defs.to_vec(), targets: targets.to_vec(), names }
    }
}

impl BatchBuilder {
    pub fn new(schema: SchemaRef, columns: Arc<Bound>, loaded_at: Micros) -> Self {
        let dynamic = columns.defs.iter().map(|c| Column::new(c.column_type)).collect();
        BatchBuilder {
            schema,
            columns,
            loaded_at,
            rows: 0,
            id: StringBuilder::new(),
            user_id: StringBuilder::new(),
            anonymous_id: StringBuilder::new(),
            timestamp: timestamps(),
            received_at: timestamps(),
            original_timestamp: timestamps(),
            sent_at: timestamps(),
            channel: StringBuilder::new(),
            traits: StringBuilder::new(),
            dynamic,
            discards: DiscardBuilder::default(),
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether [`Self::rebind`] can take `columns`: they give this
    /// builder's columns the types it has.
    pub fn takes(&self, columns: &Bound) -> bool {
        self.columns.defs.iter().zip(&columns.defs).all(|(a, b)| a.column_type == b.column_type)
    }

    /// Takes columns first seen after the builder was made: `columns` is
    /// this builder's with more columns after them. The rows so far have no
    /// value in those.
    pub fn rebind(&mut self, schema: SchemaRef, columns: Arc<Bound>) {
        let known = self.dynamic.len();
        self.dynamic.extend(columns.defs[known..].iter().map(|c| Column::new(c.column_type)));
        self.schema = schema;
        self.columns = columns;
    }

    pub fn push(&mut self, event: &StagedEvent) {
        self.id.append_value(event.id);
        self.user_id.append_option(event.user_id);
        self.anonymous_id.append_option(event.anonymous_id);
        self.timestamp.append_value(event.timestamp);
        self.received_at.append_value(event.received_at);
        self.original_timestamp.append_option(event.original_timestamp);
        self.sent_at.append_option(event.sent_at);
        self.channel.append_option(event.channel);
        self.traits.append_value(event.traits());
        for value in &event.values {
            let (id, kind, text) = (value.column as usize, value.kind, event.value(value));
            let reason = match self.columns.targets[id] {
                Target::Column(i, t) => match convert(kind, text, t) {
                    Some(value) => {
                        self.dynamic[i].pad_to(self.rows);
                        self.dynamic[i].push(value);
                        continue;
                    }
                    None => DiscardReason::TypeMismatch,
                },
                Target::Discard(reason) => reason,
            };
            self.discards.push(event, &self.columns.names[id], &json_text(kind, text), reason);
        }
        self.rows += 1;
    }

    /// The batch of `identifies` and the batch of `discards` (if any).
    pub fn finish(&mut self) -> (RecordBatch, Option<RecordBatch>) {
        let rows = self.rows;
        let mut loaded_at = timestamps();
        loaded_at.append_value_n(self.loaded_at, rows);
        let mut arrays: Vec<ArrayRef> = vec![
            finish_strings(&mut self.id),
            finish_strings(&mut self.user_id),
            finish_strings(&mut self.anonymous_id),
            finish_timestamps(&mut self.timestamp),
            finish_timestamps(&mut self.received_at),
            Arc::new(loaded_at.finish()),
            finish_timestamps(&mut self.original_timestamp),
            finish_timestamps(&mut self.sent_at),
            finish_strings(&mut self.channel),
            finish_strings(&mut self.traits),
        ];
        for column in &mut self.dynamic {
            column.pad_to(rows);
            arrays.push(column.finish());
        }
        self.rows = 0;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), arrays)
            .unwrap_or_else(|e| panic!("identifies batch does not match its schema: {e}"));
        (batch, self.discards.finish())
    }
}

#[derive(Default)]
struct DiscardBuilder {
    id: StringBuilder,
    received_at: Vec<Micros>,
    column_name: StringBuilder,
    value: StringBuilder,
    reason: StringBuilder,
}

impl DiscardBuilder {
    fn push(&mut self, event: &StagedEvent, column: &str, value: &str, reason: DiscardReason) {
        self.id.append_value(event.id);
        self.received_at.push(event.received_at);
        self.column_name.append_value(column);
        self.value.append_value(value);
        self.reason.append_value(reason.code());
    }

    fn finish(&mut self) -> Option<RecordBatch> {
        if self.received_at.is_empty() {
            return None;
        }
        let mut received_at = timestamps();
        received_at.append_slice(&std::mem::take(&mut self.received_at));
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(received_at.finish()),
            Arc::new(self.column_name.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.reason.finish()),
        ];
        Some(
            RecordBatch::try_new(discards_schema(), arrays).unwrap_or_else(|e| panic!("discards batch: {e}")),
        )
    }
}

//! `latest_fields(traits, "timestamp", received_at, id)`: `latest` (see
//! src/latest.rs) for every field of the struct `traits` at once. Each field
//! of the result is the field's value in the group's latest row where that
//! field is not null, rows ordered by (`timestamp`, `received_at`, `id`).
//!
//! Twenty `latest` aggregates, one per trait, would each read a row's
//! order key, keep a state per group of their own, and store the winning
//! row's key once per field. Here a row's key is compared once for all the
//! fields it wins together, and a group's state is one record (see
//! `record.rs`) that lists each winning row's key once.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanArray, FixedSizeListArray, Int64Array, ListArray,
    PrimitiveArray, StringArray, StructArray, UInt32Array, new_empty_array,
};
use datafusion::arrow::buffer::ScalarBuffer;
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, concat, interleave, not, nullif, prep_null_mask_filter, take};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, FieldRef, Fields, Int64Type, UInt8Type, UInt16Type, UInt32Type,
};
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

mod codec;
mod record;

use crate::arena::{Arena, Ref, first_groups, selected};
use codec::{Codec, Encoded};
use record::{Key, Parsed};

/// The `latest_fields` aggregate, to register on a session.
pub fn udaf() -> AggregateUDF {
    AggregateUDF::from(LatestFields { signature: Signature::any(4, Volatility::Immutable) })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LatestFields {
    signature: Signature,
}

/// The fields of the result: those of the argument, each nullable, as a
/// field never seen is null.
fn struct_fields(data_type: &DataType) -> Result<Fields> {
    match data_type {
        DataType::Struct(fields) if !fields.is_empty() => {
            Ok(fields.iter().map(|f| f.as_ref().clone().with_nullable(true)).collect())
        }
        other => plan_err!("latest_fields takes a struct with fields, not {other}"),
    }
}

/// Per group: the fields' values; the distinct keys of the rows they came
/// from; and for each field, which of those keys is its.
pub(crate) fn state_fields(name: &str, fields: Fields) -> Vec<FieldRef> {
    let keys = Field::new_list_field(DataType::Struct(key_fields()), false);
    let sources = Field::new_list_field(source_type(fields.len()), false);
    let width = fields.len() as i32;
    vec![
        Arc::new(Field::new(format!("{name}[values]"), DataType::Struct(fields), true)),
        Arc::new(Field::new(format!("{name}[keys]"), DataType::List(Arc::new(keys)), true)),
        Arc::new(Field::new(
            format!("{name}[sources]"),
            DataType::FixedSizeList(Arc::new(sources), width),
            true,
        )),
    ]
}

/// A key of the state: one winning row's order.
fn key_fields() -> Fields {
    Fields::from(vec![
        Field::new("timestamp", DataType::Int64, false),
        Field::new("received_at", DataType::Int64, false),
        Field::new("id", DataType::Utf8, true),
    ])
}

impl AggregateUDFImpl for LatestFields {
    fn name(&self) -> &str {
        "latest_fields"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(struct_fields(&arg_types[0])?))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let fields = struct_fields(args.return_field.data_type())?;
        Ok(Box::new(OneGroup(GroupsLatestFields::new(fields, Ordering::Greater)?)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name, struct_fields(args.return_field.data_type())?))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let fields = struct_fields(args.return_field.data_type())?;
        Ok(Box::new(GroupsLatestFields::new(fields, Ordering::Greater)?))
    }
}

/// Candidate rows: input rows, whose fields share the row's key, or states,
/// one row per group, whose fields each name one of the group's keys.
#[derive(Debug)]
struct Rows {
    columns: Vec<ArrayRef>,
    nulls: Vec<Option<NullBuffer>>,
    /// Order keys, a null already mapped to last (`i64::MAX`).
    timestamp: Int64Array,
    received_at: Int64Array,
    id: StringArray,
    /// For states: each row's keys start at `offsets[row]`, and field `f`'s
    /// is `sources[row][f]` among them.
    listed: Option<Listed>,
}

#[derive(Clone, Debug)]
struct Listed {
    offsets: OffsetBuffer<i32>,
    sources: FixedSizeListArray,
    /// `sources`' values.
    source: Source,
}

impl Listed {
    fn new(offsets: OffsetBuffer<i32>, sources: FixedSizeListArray) -> Result<Self> {
        let source = Source::of(sources.values())?;
        Ok(Listed { offsets, sources, source })
    }
}

/// A field's source is one of its group's keys, which are at most as many
/// as the fields: a state's sources take the narrowest integer that holds
/// the width (as u32 they were a quarter of a spilled state).
fn source_type(width: usize) -> DataType {
    if width <= 1 << 8 {
        DataType::UInt8
    } else if width <= 1 << 16 {
        DataType::UInt16
    } else {
        DataType::UInt32
    }
}

#[derive(Clone, Debug)]
enum Source {
    U8(ScalarBuffer<u8>),
    U16(ScalarBuffer<u16>),
    U32(ScalarBuffer<u32>),
}

impl Source {
    fn of(values: &ArrayRef) -> Result<Self> {
        Ok(match values.data_type() {
            DataType::UInt8 => Source::U8(values.as_primitive::<UInt8Type>().values().clone()),
            DataType::UInt16 => Source::U16(values.as_primitive::<UInt16Type>().values().clone()),
            DataType::UInt32 => Source::U32(values.as_primitive::<UInt32Type>().values().clone()),
            other => return internal_err!("latest_fields' sources are unsigned integers, not {other}"),
        })
    }

    fn get(&self, at: usize) -> usize {
        match self {
            Source::U8(s) => s[at] as usize,
            Source::U16(s) => s[at] as usize,
            Source::U32(s) => s[at] as usize,
        }
    }
}

/// Sources being gathered, in the type of [`source_type`].
enum Sources {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Sources {
    fn with_capacity(width: usize, capacity: usize) -> Self {
        match source_type(width) {
            DataType::UInt8 => Sources::U8(Vec::with_capacity(capacity)),
            DataType::UInt16 => Sources::U16(Vec::with_capacity(capacity)),
            _ => Sources::U32(Vec::with_capacity(capacity)),
        }
    }

    /// Every field of `rows` rows from their row's first key.
    fn zeros(width: usize, rows: usize) -> Self {
        let mut sources = Sources::with_capacity(width, width * rows);
        (0..width * rows).for_each(|_| sources.push(0));
        sources
    }

    /// `source` is below the width, which picked a type that holds it.
    fn push(&mut self, source: usize) {
        match self {
            Sources::U8(s) => s.push(source as u8),
            Sources::U16(s) => s.push(source as u16),
            Sources::U32(s) => s.push(source as u32),
        }
    }

    /// Per row, `width` indices into the row's keys.
    fn finish(self, width: usize) -> FixedSizeListArray {
        fn array<T: ArrowPrimitiveType>(values: Vec<T::Native>) -> ArrayRef {
            Arc::new(PrimitiveArray::<T>::new(ScalarBuffer::from(values), None))
        }
        let values = match self {
            Sources::U8(s) => array::<UInt8Type>(s),
            Sources::U16(s) => array::<UInt16Type>(s),
            Sources::U32(s) => array::<UInt32Type>(s),
        };
        let field = Arc::new(Field::new_list_field(values.data_type().clone(), false));
        FixedSizeListArray::new(field, width as i32, values, None)
    }
}

/// Order keys as primitives; a null key sorts last, as `NULLS LAST` does.
fn order(array: &ArrayRef) -> Result<Int64Array> {
    let int = cast(array, &DataType::Int64)?;
    let int = int.as_primitive::<Int64Type>();
    Ok(match int.nulls() {
        None => int.clone(),
        Some(_) => int.iter().map(|v| Some(v.unwrap_or(i64::MAX))).collect(),
    })
}

/// The struct's fields, null in the rows where the struct itself is.
fn fields_of(array: &ArrayRef) -> Result<Vec<ArrayRef>> {
    let traits = array.as_struct();
    let columns = traits.columns().to_vec();
    match traits.logical_nulls() {
        None => Ok(columns),
        Some(nulls) => {
            let absent = not(&BooleanArray::new(nulls.into_inner(), None))?;
            columns.iter().map(|c| Ok(nullif(c, &absent)?)).collect()
        }
    }
}

impl Rows {
    fn new(
        columns: Vec<ArrayRef>,
        timestamp: Int64Array,
        received_at: Int64Array,
        id: StringArray,
        listed: Option<Listed>,
    ) -> Self {
        let nulls = columns.iter().map(|c| c.logical_nulls()).collect();
        Rows { columns, nulls, timestamp, received_at, id, listed }
    }

    /// `(traits, timestamp, received_at, id)` as given.
    fn from_input(values: &[ArrayRef]) -> Result<Self> {
        if values.len() != 4 {
            return internal_err!("latest_fields takes (traits, timestamp, received_at, id)");
        }
        let id = cast(&values[3], &DataType::Utf8)?.as_string::<i32>().clone();
        Ok(Rows::new(fields_of(&values[0])?, order(&values[1])?, order(&values[2])?, id, None))
    }

    /// `(values, keys, sources)` as `state` gives them.
    fn from_state(values: &[ArrayRef]) -> Result<Self> {
        if values.len() != 3 {
            return internal_err!("latest_fields' state is (values, keys, sources)");
        }
        let keys = values[1].as_list::<i32>();
        let key = keys.values().as_struct();
        Ok(Rows::new(
            values[0].as_struct().columns().to_vec(),
            key.column(0).as_primitive::<Int64Type>().clone(),
            key.column(1).as_primitive::<Int64Type>().clone(),
            key.column(2).as_string::<i32>().clone(),
            Some(Listed::new(keys.offsets().clone(), values[2].as_fixed_size_list().clone())?),
        ))
    }

    fn len(&self) -> usize {
        self.columns.first().map_or(0, |c| c.len())
    }

    fn has(&self, field: usize, row: usize) -> bool {
        self.nulls[field].as_ref().is_none_or(|n| n.is_valid(row))
    }

    /// Where the key of `row`'s value of `field` is.
    fn key_index(&self, row: usize, field: usize) -> usize {
        match &self.listed {
            None => row,
            Some(l) => l.offsets[row] as usize + l.source.get(l.sources.value_offset(row) as usize + field),
        }
    }

    fn key(&self, key: usize) -> Key<'_> {
        Key {
            timestamp: self.timestamp.value(key),
            received_at: self.received_at.value(key),
            id: self.id.is_valid(key).then(|| self.id.value(key).as_bytes()),
        }
    }
}

/// Groups decoded at a time when emitted in their order.
const PART: usize = 16 * 1024;

/// The keys of emitted groups, in the form of a state.
struct Keys {
    timestamp: Vec<i64>,
    received_at: Vec<i64>,
    id: BinaryBuilder,
    offsets: Vec<i32>,
    sources: Sources,
}

impl Keys {
    fn with_capacity(width: usize, groups: usize) -> Self {
        let mut offsets = Vec::with_capacity(groups + 1);
        offsets.push(0);
        Keys {
            timestamp: Vec::with_capacity(groups),
            received_at: Vec::with_capacity(groups),
            id: BinaryBuilder::with_capacity(groups, 0),
            offsets,
            sources: Sources::with_capacity(width, groups * width),
        }
    }

    fn push(&mut self, parsed: &Parsed, record: &[u8], width: usize) {
        for key in 0..parsed.keys() {
            let key = parsed.key(record, key);
            self.timestamp.push(key.timestamp);
            self.received_at.push(key.received_at);
            self.id.append_option(key.id);
        }
        // A field without a value names the first key, and merging skips it
        // (a group without a record has no keys: the index is never read).
        (0..width).for_each(|field| self.sources.push(parsed.field(field).map_or(0, |(key, _)| key)));
        self.offsets.push(self.timestamp.len() as i32);
    }

    /// Per group, its keys and its fields' sources among them.
    fn finish(mut self, width: usize) -> Result<(ArrayRef, ArrayRef)> {
        let id = StringArray::try_from_binary(self.id.finish())?;
        let keys = key_list(
            Int64Array::from(self.timestamp),
            Int64Array::from(self.received_at),
            id,
            OffsetBuffer::new(self.offsets.into()),
        );
        Ok((Arc::new(keys), Arc::new(self.sources.finish(width))))
    }
}

fn key_list(
    timestamp: Int64Array,
    received_at: Int64Array,
    id: StringArray,
    offsets: OffsetBuffer<i32>,
) -> ListArray {
    let keys =
        StructArray::new(key_fields(), vec![Arc::new(timestamp), Arc::new(received_at), Arc::new(id)], None);
    ListArray::new(
        Arc::new(Field::new_list_field(DataType::Struct(key_fields()), false)),
        offsets,
        Arc::new(keys),
        None,
    )
}

/// Emitted groups' values, and their keys and sources when a state is wanted.
struct Emitted {
    columns: Vec<ArrayRef>,
    keys: Option<(ArrayRef, ArrayRef)>,
}

/// Decodes `records` and adds them to the end of `parts` (per field) and of
/// `keys`.
fn decode(
    parsed: &mut Parsed,
    codecs: &[Codec],
    records: &[&[u8]],
    parts: &mut [Vec<ArrayRef>],
    mut keys: Option<&mut Keys>,
) -> Result<()> {
    let width = codecs.len();
    let mut values: Vec<Vec<Option<&[u8]>>> = vec![Vec::with_capacity(records.len()); width];
    for record in records {
        parsed.read(record, width);
        for (field, column) in values.iter_mut().enumerate() {
            column.push(parsed.field(field).map(|(_, value)| &record[value]));
        }
        if let Some(keys) = keys.as_deref_mut() {
            keys.push(parsed, record, width);
        }
    }
    for ((part, codec), column) in parts.iter_mut().zip(codecs).zip(&values) {
        part.push(codec.decode(column)?);
    }
    Ok(())
}

/// Whether `row`, an input row (all its fields share its key), wins every
/// field of the group whose record is `parsed`: the record has no key or
/// one that the row's beats, and the row has a value for each field the
/// record has, and for one at least. Most rows of a table in time order
/// are such rows, and replace their group's record whole.
fn replaces(rows: &Rows, row: usize, parsed: &Parsed, record: &[u8], wins: Ordering, width: usize) -> bool {
    rows.listed.is_none()
        && match parsed.keys() {
            0 => true,
            1 => rows.key(row).cmp(&parsed.key(record, 0)) == wins,
            _ => false,
        }
        && (0..width).all(|field| rows.has(field, row) || parsed.field(field).is_none())
        && (0..width).any(|field| rows.has(field, row))
}

#[derive(Debug)]
pub(crate) struct GroupsLatestFields {
    fields: Fields,
    /// How a row's key compares to the best one's when it replaces it:
    /// `Greater` for the latest row, `Less` for the earliest.
    wins: Ordering,
    codecs: Vec<Codec>,
    /// Each group's record (see `record.rs`) in `arena`.
    refs: Vec<Ref>,
    arena: Arena,
    /// Scratch space, reused from row to row.
    parsed: Parsed,
    written: Vec<u8>,
}

impl GroupsLatestFields {
    pub(crate) fn new(fields: Fields, wins: Ordering) -> Result<Self> {
        let codecs = fields.iter().map(|f| Codec::new(f.data_type())).collect::<Result<_>>()?;
        Ok(Self {
            fields,
            wins,
            codecs,
            refs: Vec::new(),
            arena: Arena::default(),
            parsed: Parsed::default(),
            written: Vec::new(),
        })
    }

    fn width(&self) -> usize {
        self.fields.len()
    }

    fn update(
        &mut self,
        rows: Rows,
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) -> Result<()> {
        let width = self.width();
        self.refs.resize(total, Ref::NONE);
        let encoded: Vec<Encoded> = self
            .codecs
            .iter()
            .zip(&rows.columns)
            .map(|(c, column)| c.encode(column))
            .collect::<Result<_>>()?;
        let Self { wins, refs, arena, parsed, written, .. } = self;
        // Per field, the key of the row's value that wins it.
        let mut won: Vec<Option<usize>> = Vec::with_capacity(width);
        let mut compared: Vec<(usize, usize, bool)> = Vec::new();
        // The new record's keys, each a key of the record or of `rows`.
        let mut keys: Vec<Origin> = Vec::new();
        // Per field, its key among `keys`, and whether its value is new.
        let mut sources: Vec<Option<(usize, bool)>> = Vec::with_capacity(width);
        // A replacing row's values, gathered once for the three passes of
        // `record::write` over them.
        let mut values: Vec<Option<(usize, &[u8])>> = Vec::with_capacity(width);
        for (row, &group) in groups.iter().enumerate() {
            if !selected(filter, row) {
                continue;
            }
            arena.prefetch_ahead(refs, groups, row);
            let record = arena.get(refs[group]);
            parsed.read(record, width);
            if replaces(&rows, row, parsed, record, *wins, width) {
                // The record the general case would write, for less work:
                // one key, the row's, and the row's values.
                values.clear();
                values.extend(
                    (0..width).map(|field| rows.has(field, row).then(|| (0, encoded[field].bytes(row)))),
                );
                record::write(written, std::iter::once(rows.key(row)), &values);
                arena.replace(refs, group, written);
                continue;
            }
            won.clear();
            compared.clear();
            for field in 0..width {
                let key = rows.has(field, row).then(|| rows.key_index(row, field));
                won.push(key.filter(|&key| match parsed.field(field) {
                    None => true,
                    // The fields of a row mostly win or lose together,
                    // against the same key: compare each pair once.
                    Some((best, _)) => match compared.iter().find(|c| (c.0, c.1) == (best, key)) {
                        Some(c) => c.2,
                        None => {
                            let better = rows.key(key).cmp(&parsed.key(record, best)) == *wins;
                            compared.push((best, key, better));
                            better
                        }
                    },
                }));
            }
            if won.iter().all(Option::is_none) {
                continue;
            }
            keys.clear();
            sources.clear();
            for (field, won) in won.iter().enumerate() {
                let origin = match won {
                    Some(key) => Some(Origin::Row(*key)),
                    None => parsed.field(field).map(|(key, _)| Origin::Record(key)),
                };
                sources.push(origin.map(|origin| {
                    let index = keys.iter().position(|k| *k == origin).unwrap_or_else(|| {
                        keys.push(origin);
                        keys.len() - 1
                    });
                    (index, won.is_some())
                }));
            }
            let key_values = keys.iter().map(|origin| match *origin {
                Origin::Record(key) => parsed.key(record, key),
                Origin::Row(key) => rows.key(key),
            });
            // These values borrow the record being replaced, so they cannot
            // go in `values`, which outlives it.
            let merged: Vec<_> = sources
                .iter()
                .enumerate()
                .map(|(field, source)| {
                    source.map(|(key, new)| match new {
                        true => (key, encoded[field].bytes(row)),
                        false => (key, &record[parsed.field(field).map_or(0..0, |(_, value)| value)]),
                    })
                })
                .collect();
            record::write(written, key_values, &merged);
            arena.replace(refs, group, written);
        }
        arena.tidy(refs);
        Ok(())
    }

    /// The first `n` groups' values, and with `keys` their keys (a state
    /// needs them; the final values do not). With `take`, the groups are
    /// let go.
    fn emit(&mut self, n: usize, take: bool, keys: bool) -> Result<Emitted> {
        if take && n == self.refs.len() {
            return self.emit_all(keys);
        }
        let width = self.width();
        let mut parts: Vec<Vec<ArrayRef>> = vec![Vec::new(); width];
        let mut emitted_keys = keys.then(|| Keys::with_capacity(width, n));
        for start in (0..n).step_by(PART) {
            let end = (start + PART).min(n);
            let records: Vec<&[u8]> = self.refs[start..end].iter().map(|at| self.arena.get(*at)).collect();
            decode(&mut self.parsed, &self.codecs, &records, &mut parts, emitted_keys.as_mut())?;
        }
        if take {
            self.arena.let_go(&mut self.refs, n);
        }
        let columns = parts
            .into_iter()
            .zip(self.fields.iter())
            .map(|(part, field)| match part.len() {
                0 => Ok(new_empty_array(field.data_type())),
                1 => Ok(Arc::clone(&part[0])),
                _ => Ok(concat(&part.iter().map(|a| a.as_ref()).collect::<Vec<_>>())?),
            })
            .collect::<Result<_>>()?;
        let keys = emitted_keys.map(|k| k.finish(width)).transpose()?;
        Ok(Emitted { columns, keys })
    }

    /// Every group, decoded chunk by chunk in the order of the arena and
    /// then put in the order of the groups: each chunk is freed as soon as
    /// it is decoded, so that the records and the values never both exist
    /// whole.
    fn emit_all(&mut self, keys: bool) -> Result<Emitted> {
        let width = self.width();
        let refs = std::mem::take(&mut self.refs);
        tracing::debug!(groups = refs.len(), bytes = self.arena.bytes(), "latest_fields emitting");
        let Self { arena, parsed, codecs, .. } = self;
        let mut parts: Vec<Vec<ArrayRef>> = vec![Vec::new(); width];
        let mut emitted_keys = keys.then(|| Keys::with_capacity(width, refs.len() + 1));
        // Decoded position 0 is a group without a record.
        decode(parsed, codecs, &[&[]], &mut parts, emitted_keys.as_mut())?;
        let mut starts = vec![0];
        let mut position = vec![0u32; refs.len()];
        let mut decoded = 1;
        let mut failed = Ok(());
        arena.drain(&refs, |records| {
            if records.is_empty() || failed.is_err() {
                return;
            }
            starts.push(decoded);
            for (i, (group, _)) in records.iter().enumerate() {
                position[*group] = (decoded + i) as u32;
            }
            decoded += records.len();
            let bytes: Vec<&[u8]> = records.iter().map(|(_, record)| *record).collect();
            failed = decode(parsed, codecs, &bytes, &mut parts, emitted_keys.as_mut());
        });
        arena.forget(refs.len());
        failed?;
        let indices: Vec<(usize, usize)> = position
            .iter()
            .map(|&p| {
                let part = starts.partition_point(|&s| s <= p as usize) - 1;
                (part, p as usize - starts[part])
            })
            .collect();
        let mut columns = Vec::with_capacity(width);
        for part in parts {
            let arrays: Vec<&dyn Array> = part.iter().map(|a| a.as_ref()).collect();
            columns.push(interleave(&arrays, &indices)?);
        }
        let keys = match emitted_keys {
            None => None,
            Some(k) => {
                let (list, sources) = k.finish(width)?;
                let position = UInt32Array::from(position);
                Some((take(&list, &position, None)?, take(&sources, &position, None)?))
            }
        };
        Ok(Emitted { columns, keys })
    }

    fn take(&mut self, emit_to: EmitTo, keys: bool) -> Result<Emitted> {
        self.emit(first_groups(emit_to, self.refs.len()), true, keys)
    }

    fn values(&self, columns: Vec<ArrayRef>) -> ArrayRef {
        Arc::new(StructArray::new(self.fields.clone(), columns, None))
    }

    fn state_arrays(&self, emitted: Emitted) -> Result<Vec<ArrayRef>> {
        let Some((keys, sources)) = emitted.keys else {
            return internal_err!("latest_fields' state is emitted with its keys");
        };
        Ok(vec![self.values(emitted.columns), keys, sources])
    }
}

/// Where a key of a record being rewritten comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Origin {
    /// The record's own key of that index.
    Record(usize),
    /// The key of that index among the candidate rows'.
    Row(usize),
}

impl GroupsAccumulator for GroupsLatestFields {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.update(Rows::from_input(values)?, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let emitted = self.take(emit_to, false)?;
        Ok(self.values(emitted.columns))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let emitted = self.take(emit_to, true)?;
        self.state_arrays(emitted)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.update(Rows::from_state(values)?, group_indices, None, total_num_groups)
    }

    /// Each row as a state of its own: one key, the source of every field.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let rows = Rows::from_input(values)?;
        let len = rows.len();
        let width = self.width();
        let mut columns = rows.columns;
        if let Some(filter) = opt_filter {
            // A filtered-out row has no values, which merging skips.
            let kept = if filter.nulls().is_some() { prep_null_mask_filter(filter) } else { filter.clone() };
            let dropped = not(&kept)?;
            columns = columns.iter().map(|c| nullif(c, &dropped)).collect::<Result<_, _>>()?;
        }
        let sources = Sources::zeros(width, len).finish(width);
        let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(1, len));
        let keys = key_list(rows.timestamp, rows.received_at, rows.id, offsets);
        Ok(vec![self.values(columns), Arc::new(keys), Arc::new(sources)])
    }

    fn size(&self) -> usize {
        self.arena.bytes() + self.refs.capacity() * size_of::<Ref>()
    }
}

/// The same rule for DataFusion's ungrouped plans: one group.
#[derive(Debug)]
pub(crate) struct OneGroup(pub(crate) GroupsLatestFields);

impl OneGroup {
    /// The group's values, emitted without letting it go: a window frame
    /// evaluates after every row and goes on updating.
    fn peek(&mut self, keys: bool) -> Result<Emitted> {
        if self.0.refs.is_empty() {
            self.0.refs.push(Ref::NONE);
        }
        self.0.emit(1, false, keys)
    }
}

impl Accumulator for OneGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0.update_batch(values, &vec![0; values[0].len()], None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let emitted = self.peek(false)?;
        ScalarValue::try_from_array(&self.0.values(emitted.columns), 0)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let emitted = self.peek(true)?;
        self.0.state_arrays(emitted)?.iter().map(|a| ScalarValue::try_from_array(a, 0)).collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.0.merge_batch(states, &vec![0; states[0].len()], 1)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.0.size()
    }
}

#[cfg(test)]
#[path = "latest_fields_tests.rs"]
mod tests;

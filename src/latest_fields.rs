//! `latest_fields(traits, "timestamp", received_at, id)`: `latest` (see
//! src/latest.rs) for every field of the struct `traits` at once. Each field
//! of the result is the field's value in the group's latest row where that
//! field is not null, rows ordered by (`timestamp`, `received_at`, `id`).
//!
//! Twenty `latest` aggregates, one per trait, each read a row's order key,
//! each keep a slot per group in its own array (twenty cache misses per
//! row), and each gather and copy the winning ids. Here a group's slots sit
//! side by side, a row's key is compared once for all the fields it wins
//! together, and a group's state lists each winning row's key once.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeListArray, Int64Array, ListArray, PrimitiveArray,
    StringArray, StringBuilder, StructArray, new_null_array,
};
use datafusion::arrow::buffer::ScalarBuffer;
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, interleave, not, nullif, prep_null_mask_filter};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, FieldRef, Fields, Int64Type, UInt8Type, UInt16Type, UInt32Type,
};
use datafusion::common::{
    DataFusionError, Result, ScalarValue, internal_datafusion_err, internal_err, plan_err,
};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use crate::latest::compare;

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
        Ok(Box::new(OneGroup(GroupsLatestFields::new(fields, Ordering::Greater))))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name, struct_fields(args.return_field.data_type())?))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let fields = struct_fields(args.return_field.data_type())?;
        Ok(Box::new(GroupsLatestFields::new(fields, Ordering::Greater)))
    }
}

/// Candidate rows: input rows, whose fields share the row's key, or states
/// (and compacted rows), one row per group, whose fields each name one of
/// the group's keys.
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
    bytes: usize,
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
/// as the fields: it takes the narrowest integer that holds the width. As
/// u32 the sources were a quarter of the state (26 traits: 104 of a group's
/// ~460 bytes), held twice while compaction builds the next state.
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
        let len = width * rows;
        match source_type(width) {
            DataType::UInt8 => Sources::U8(vec![0; len]),
            DataType::UInt16 => Sources::U16(vec![0; len]),
            _ => Sources::U32(vec![0; len]),
        }
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

fn slice_bytes(array: &dyn Array) -> usize {
    array.to_data().get_slice_memory_size().unwrap_or(0)
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
        let bytes = columns.iter().map(|c| slice_bytes(c.as_ref())).sum::<usize>()
            + slice_bytes(&timestamp)
            + slice_bytes(&received_at)
            + slice_bytes(&id)
            + listed.as_ref().map_or(0, |l| l.offsets.inner().inner().len() + slice_bytes(&l.sources));
        Rows { columns, nulls, timestamp, received_at, id, listed, bytes }
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

    fn order(&self, key: usize) -> (i64, i64) {
        (self.timestamp.value(key), self.received_at.value(key))
    }

    fn id(&self, key: usize) -> Option<&str> {
        self.id.is_valid(key).then(|| self.id.value(key))
    }
}

/// Where a group's value of one field lives: a row of the held rows,
/// numbered across them by [`Layout`]. Row 0 is a row of nulls, the value
/// of a field not seen yet.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Slot(u32);

impl Slot {
    const NONE: Slot = Slot(0);
}

/// Held batches are numbered from a multiple of a block's rows on.
const BLOCK_SHIFT: u32 = 12;

/// The numbering of the held rows. A slot was a batch and a row, 8 bytes:
/// with 26 traits its slots were a group's largest part and spanned four
/// cache lines; one number is half of both. Each batch starts at a block of
/// its own, and `blocks` gives the batch of each block.
#[derive(Debug, Default)]
struct Layout {
    starts: Vec<u32>,
    blocks: Vec<u32>,
}

impl Layout {
    /// Numbers a new last batch of `len` rows; `None` when the numbers are
    /// used up (a compaction frees them).
    fn place(&mut self, len: usize) -> Option<u32> {
        let start = (self.blocks.len() as u64) << BLOCK_SHIFT;
        let blocks = len.max(1).div_ceil(1 << BLOCK_SHIFT);
        if start + ((blocks as u64) << BLOCK_SHIFT) > 1 << 32 {
            return None;
        }
        let batch = self.starts.len() as u32;
        self.starts.push(start as u32);
        self.blocks.extend(std::iter::repeat_n(batch, blocks));
        Some(start as u32)
    }

    /// Forgets the last batch.
    fn unplace(&mut self) {
        if let Some(start) = self.starts.pop() {
            self.blocks.truncate((start >> BLOCK_SHIFT) as usize);
        }
    }

    /// The batch and row of `slot`.
    fn locate(&self, slot: Slot) -> (usize, usize) {
        let batch = self.blocks[(slot.0 >> BLOCK_SHIFT) as usize] as usize;
        (batch, (slot.0 - self.starts[batch]) as usize)
    }
}

/// More groups than a u32 numbers, with nothing left to compact.
fn numbers_used_up() -> DataFusionError {
    internal_datafusion_err!("latest_fields holds more groups than a u32 numbers")
}

/// A group's values gathered into one row: the form of states, and of the
/// rows held after compaction.
struct Gathered {
    columns: Vec<ArrayRef>,
    timestamp: Vec<i64>,
    received_at: Vec<i64>,
    id: StringBuilder,
    offsets: Vec<i32>,
    sources: Sources,
}

#[derive(Debug)]
pub(crate) struct GroupsLatestFields {
    fields: Fields,
    /// How a row's key compares to the best one's when it replaces it:
    /// `Greater` for the latest row, `Less` for the earliest.
    wins: Ordering,
    rows: Vec<Rows>,
    layout: Layout,
    /// `slots[group * fields + field]`.
    slots: Vec<Slot>,
    /// Rows held in `rows`, and their bytes; past twice the groups plus
    /// `slack`, they are compacted.
    held: usize,
    bytes: usize,
    pub(crate) slack: usize,
}

impl GroupsLatestFields {
    pub(crate) fn new(fields: Fields, wins: Ordering) -> Self {
        let mut this = Self {
            fields,
            wins,
            rows: Vec::new(),
            layout: Layout::default(),
            slots: Vec::new(),
            held: 0,
            bytes: 0,
            slack: 65_536,
        };
        this.hold_nulls();
        this
    }

    fn width(&self) -> usize {
        self.fields.len()
    }

    /// Holds only the row of nulls.
    fn hold_nulls(&mut self) {
        let nulls = self.fields.iter().map(|f| new_null_array(f.data_type(), 1)).collect();
        let one = Int64Array::from(vec![i64::MAX]);
        let row = Rows::new(nulls, one.clone(), one, StringArray::new_null(1), None);
        self.held = 1;
        self.bytes = row.bytes;
        self.rows = vec![row];
        self.layout = Layout { starts: vec![0], blocks: vec![0] };
    }

    /// Holds only the row of nulls and `gathered`: one row per group, which
    /// the slots that have a value then point to.
    fn hold_gathered(&mut self, gathered: Rows) -> Result<()> {
        self.hold_nulls();
        let start = self.layout.place(gathered.len()).ok_or_else(numbers_used_up)?;
        let width = self.width();
        for (i, slot) in self.slots.iter_mut().enumerate().filter(|(_, s)| **s != Slot::NONE) {
            *slot = Slot(start + (i / width) as u32);
        }
        self.held += gathered.len();
        self.bytes += gathered.bytes;
        self.rows.push(gathered);
        Ok(())
    }

    /// Gathers every group's values into one row each and lets the rest go.
    fn compact(&mut self) -> Result<()> {
        let all = std::mem::take(&mut self.slots);
        let gathered = self.gather(&all, true, true)?;
        self.slots = all;
        self.hold_gathered(gathered)
    }

    fn update(
        &mut self,
        rows: Rows,
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) -> Result<()> {
        let (width, wins) = (self.width(), self.wins);
        self.slots.resize(total * width, Slot::NONE);
        let start = match self.layout.place(rows.len()) {
            Some(start) => start,
            None => {
                self.compact()?;
                self.layout.place(rows.len()).ok_or_else(numbers_used_up)?
            }
        };
        let batch = self.rows.len();
        self.rows.push(rows);
        let (held, current) = self.rows.split_at(batch);
        let rows = &current[0];
        let layout = &self.layout;
        let at = |slot: Slot| {
            let (b, row) = layout.locate(slot);
            (b, if b == batch { rows } else { &held[b] }, row)
        };
        let mut used = false;
        for (row, &group) in groups.iter().enumerate() {
            if filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                continue;
            }
            // The fields of a row mostly win or lose together, against the
            // same best row: compare each pair of keys once.
            let mut last: Option<(usize, usize, usize, bool)> = None;
            for field in 0..width {
                if !rows.has(field, row) {
                    continue;
                }
                let slot = &mut self.slots[group * width + field];
                let key = rows.key_index(row, field);
                let better = if *slot == Slot::NONE {
                    true
                } else {
                    let (best_batch, best_rows, best_row) = at(*slot);
                    let best = best_rows.key_index(best_row, field);
                    match last {
                        Some((b, k, own, better)) if b == best_batch && k == best && own == key => better,
                        _ => {
                            let ordering = match rows.order(key).cmp(&best_rows.order(best)) {
                                Ordering::Equal => compare((0, 0, rows.id(key)), (0, 0, best_rows.id(best))),
                                other => other,
                            };
                            let better = ordering == wins;
                            last = Some((best_batch, best, key, better));
                            better
                        }
                    }
                };
                if better {
                    *slot = Slot(start + row as u32);
                    used = true;
                }
            }
        }
        if !used {
            self.rows.pop();
            self.layout.unplace();
            return Ok(());
        }
        let rows = &self.rows[batch];
        self.held += rows.len();
        self.bytes += rows.bytes;
        if self.held > 2 * (self.slots.len() / width) + self.slack {
            self.compact()?;
        }
        Ok(())
    }

    /// The values of `slots` (whole groups), one row per group, and with
    /// `keys` their order keys (a state, or compacted rows, needs them; the
    /// final values do not, and gathering them was a third of emitting).
    /// With `release`, each field's held values are dropped once gathered:
    /// all of the held rows are about to be, and the copy and the originals
    /// then never both exist whole.
    fn gather(&mut self, slots: &[Slot], release: bool, keys: bool) -> Result<Rows> {
        let width = self.width();
        // Room for the keys only when they are gathered.
        let groups = if keys { slots.len() / width } else { 0 };
        let mut out = Gathered {
            columns: Vec::with_capacity(width),
            timestamp: Vec::with_capacity(groups),
            received_at: Vec::with_capacity(groups),
            id: StringBuilder::with_capacity(groups, groups * 36),
            offsets: Vec::with_capacity(groups + 1),
            sources: Sources::with_capacity(width, groups * width),
        };
        for field in 0..width {
            let arrays: Vec<&dyn Array> = self.rows.iter().map(|r| r.columns[field].as_ref()).collect();
            let indices: Vec<(usize, usize)> =
                slots.iter().skip(field).step_by(width).map(|&s| self.layout.locate(s)).collect();
            out.columns.push(interleave(&arrays, &indices)?);
            if release {
                for rows in &mut self.rows[1..] {
                    rows.columns[field] = new_null_array(self.fields[field].data_type(), 0);
                }
            }
        }
        if !keys {
            let none = Int64Array::from(Vec::<i64>::new());
            return Ok(Rows::new(
                out.columns,
                none.clone(),
                none,
                StringArray::from(Vec::<&str>::new()),
                None,
            ));
        }
        out.offsets.push(0);
        let mut distinct: Vec<(usize, usize)> = Vec::with_capacity(width);
        for group in slots.chunks(width) {
            distinct.clear();
            for (field, slot) in group.iter().enumerate() {
                if *slot == Slot::NONE {
                    out.sources.push(0);
                    continue;
                }
                let (batch, row) = self.layout.locate(*slot);
                let rows = &self.rows[batch];
                let key = rows.key_index(row, field);
                let source = match distinct.iter().position(|&d| d == (batch, key)) {
                    Some(source) => source,
                    None => {
                        distinct.push((batch, key));
                        let (timestamp, received_at) = rows.order(key);
                        out.timestamp.push(timestamp);
                        out.received_at.push(received_at);
                        out.id.append_option(rows.id(key));
                        distinct.len() - 1
                    }
                };
                out.sources.push(source);
            }
            out.offsets.push(out.timestamp.len() as i32);
        }
        let sources = out.sources.finish(width);
        Ok(Rows::new(
            out.columns,
            Int64Array::from(out.timestamp),
            Int64Array::from(out.received_at),
            out.id.finish(),
            Some(Listed::new(OffsetBuffer::new(out.offsets.into()), sources)?),
        ))
    }

    /// The first groups per `emit_to`, gathered. The rest keep pointing into
    /// the held rows, so that emitting in small steps (as a spilled
    /// aggregation does) costs each step only its own groups.
    fn take(&mut self, emit_to: EmitTo, keys: bool) -> Result<Rows> {
        let width = self.width();
        let groups = self.slots.len() / width;
        let n = match emit_to {
            EmitTo::All => groups,
            EmitTo::First(n) => n.min(groups),
        };
        let rest = self.slots.split_off(n * width);
        let taken = std::mem::replace(&mut self.slots, rest);
        let gathered = self.gather(&taken, self.slots.is_empty(), keys)?;
        if self.slots.is_empty() {
            self.hold_nulls();
        }
        Ok(gathered)
    }

    fn values(&self, rows: Rows) -> ArrayRef {
        Arc::new(StructArray::new(self.fields.clone(), rows.columns, None))
    }

    fn state_arrays(&self, rows: Rows) -> Vec<ArrayRef> {
        let Rows { columns, timestamp, received_at, id, listed, .. } = rows;
        let Listed { offsets, sources, .. } = listed.expect("gathered rows are listed");
        let keys = StructArray::new(
            key_fields(),
            vec![Arc::new(timestamp), Arc::new(received_at), Arc::new(id)],
            None,
        );
        let keys = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Struct(key_fields()), false)),
            offsets,
            Arc::new(keys),
            None,
        );
        let values = StructArray::new(self.fields.clone(), columns, None);
        vec![Arc::new(values), Arc::new(keys), Arc::new(sources)]
    }
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
        let rows = self.take(emit_to, false)?;
        Ok(self.values(rows))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let rows = self.take(emit_to, true)?;
        Ok(self.state_arrays(rows))
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
            let dropped = not(&prep_null_mask_filter(filter))?;
            columns = columns.iter().map(|c| nullif(c, &dropped)).collect::<Result<_, _>>()?;
        }
        let sources = Sources::zeros(width, len).finish(width);
        let listed = Listed::new(OffsetBuffer::from_lengths(std::iter::repeat_n(1, len)), sources)?;
        Ok(self.state_arrays(Rows::new(columns, rows.timestamp, rows.received_at, rows.id, Some(listed))))
    }

    fn size(&self) -> usize {
        self.bytes + self.slots.capacity() * size_of::<Slot>()
    }
}

/// The same rule for DataFusion's ungrouped plans: one group.
#[derive(Debug)]
pub(crate) struct OneGroup(pub(crate) GroupsLatestFields);

impl OneGroup {
    /// The group's values, gathered without taking them: a window frame
    /// evaluates after every row and goes on updating.
    fn peek(&mut self, keys: bool) -> Result<Rows> {
        let width = self.0.width();
        if self.0.slots.is_empty() {
            self.0.slots.resize(width, Slot::NONE);
        }
        let slots = self.0.slots.clone();
        self.0.gather(&slots, false, keys)
    }
}

impl Accumulator for OneGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0.update_batch(values, &vec![0; values[0].len()], None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let rows = self.peek(false)?;
        ScalarValue::try_from_array(&self.0.values(rows), 0)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let rows = self.peek(true)?;
        self.0.state_arrays(rows).iter().map(|a| ScalarValue::try_from_array(a, 0)).collect()
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

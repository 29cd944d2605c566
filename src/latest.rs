//! `latest(value, "timestamp", received_at, id)`: the rule behind each trait
//! of `users` (SPEC §6), which `users` applies to all traits at once with
//! `latest_fields` (src/latest_fields.rs). It returns the value of the
//! group's latest row whose value is not null, rows ordered by
//! (`timestamp`, `received_at`, `id`), so a null never erases a value and a
//! late, backfilled event never overrides a newer one. `earliest(…)` is its
//! mirror, behind the user of each anonymous id in `identity_map`; both are
//! also there for `query`.
//!
//! DataFusion's `last_value(… ORDER BY …) FILTER (…)` computes the same thing
//! but keeps each group's ordering as `ScalarValue`s and emits partial states
//! many times the size of the input. This one keeps each group's best order
//! key beside a pointer into the value arrays it was given, compacting them
//! with one `interleave` when they outgrow the groups, so any value type
//! works (lists included) at the cost of 24 bytes per group.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArray, new_null_array,
};
use datafusion::arrow::compute::{cast, interleave, not, nullif, prep_null_mask_filter};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

/// The `latest`, `earliest` and `latest_fields` aggregates, to register on a session.
pub fn udafs() -> [AggregateUDF; 3] {
    let signature = Signature::any(4, Volatility::Immutable);
    [
        AggregateUDF::from(Latest { name: "latest", wins: Ordering::Greater, signature: signature.clone() }),
        AggregateUDF::from(Latest { name: "earliest", wins: Ordering::Less, signature }),
        crate::latest_fields::udaf(),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Latest {
    name: &'static str,
    /// How a row's order key compares to the best one's when it replaces it.
    wins: Ordering,
    signature: Signature,
}

impl AggregateUDFImpl for Latest {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(RowLatest {
            data_type: args.return_field.data_type().clone(),
            wins: self.wins,
            best: None,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[value]", args.name),
                args.return_field.data_type().clone(),
                true,
            )),
            Arc::new(Field::new(format!("{}[timestamp]", args.name), DataType::Int64, true)),
            Arc::new(Field::new(format!("{}[received_at]", args.name), DataType::Int64, true)),
            Arc::new(Field::new(format!("{}[id]", args.name), DataType::Utf8, true)),
        ])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(GroupsLatest::new(args.return_field.data_type(), self.wins)))
    }
}

/// Message ids: they only break ties of (`timestamp`, `received_at`).
struct Ids {
    values: StringArray,
    /// Whether these ids are this aggregate's own copy (gathered), not the
    /// input's column, which every trait's aggregate holds at once.
    own: bool,
}

impl Ids {
    fn from_array(array: &ArrayRef) -> Result<Self> {
        Ok(Ids { values: cast(array, &DataType::Utf8)?.as_string::<i32>().clone(), own: false })
    }

    fn get(&self, row: usize) -> Option<&str> {
        self.values.is_valid(row).then(|| self.values.value(row))
    }

    fn into_state(self) -> ArrayRef {
        Arc::new(self.values)
    }
}

/// One batch of candidate rows: values and their order keys.
struct Input {
    value: ArrayRef,
    timestamp: Int64Array,
    received_at: Int64Array,
    id: Ids,
}

impl Input {
    /// Order keys as primitives; a null key sorts last, as `NULLS LAST` does.
    fn from_arrays(values: &[ArrayRef]) -> Result<Self> {
        if values.len() != 4 {
            return internal_err!("latest takes (value, timestamp, received_at, id)");
        }
        Ok(Self {
            value: Arc::clone(&values[0]),
            timestamp: cast(&values[1], &DataType::Int64)?.as_primitive::<Int64Type>().clone(),
            received_at: cast(&values[2], &DataType::Int64)?.as_primitive::<Int64Type>().clone(),
            id: Ids::from_array(&values[3])?,
        })
    }

    /// `timestamp` and `received_at`: the id is only read to break a tie.
    fn order(&self, row: usize) -> (i64, i64) {
        let int = |a: &Int64Array| if a.is_null(row) { i64::MAX } else { a.value(row) };
        (int(&self.timestamp), int(&self.received_at))
    }

    fn key(&self, row: usize) -> (i64, i64, Option<&str>) {
        let (timestamp, received_at) = self.order(row);
        (timestamp, received_at, self.id.get(row))
    }
}

/// Rows held for the groups that point into them: the order keys live in the
/// slots, the ids only break ties.
struct Held {
    value: ArrayRef,
    id: Ids,
}

impl Held {
    /// The bytes of the rows held, not of the buffers they are sliced from;
    /// the input's ids are counted by no one trait's aggregate, as they are
    /// shared by all of them.
    fn memory_size(&self) -> usize {
        let slice = |a: &dyn Array| a.to_data().get_slice_memory_size().unwrap_or(0);
        slice(self.value.as_ref()) + if self.id.own { slice(&self.id.values) } else { 0 }
    }
}

/// `(timestamp, received_at, id)` order with a null id last.
pub(crate) fn compare(a: (i64, i64, Option<&str>), b: (i64, i64, Option<&str>)) -> Ordering {
    a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then_with(|| match (a.2, b.2) {
        (Some(x), Some(y)) => x.cmp(y),
        (x, y) => x.is_none().cmp(&y.is_none()),
    })
}

/// A group's best row so far: its order keys, and where it lives,
/// `rows[batch].row`. Batch 0 is a single null row, the value of a group
/// that has seen no value yet. The keys sit here so that the common
/// comparison reads no other memory.
#[derive(Clone, Copy, Default)]
struct Slot {
    timestamp: i64,
    received_at: i64,
    batch: u32,
    row: u32,
}

struct GroupsLatest {
    data_type: DataType,
    wins: Ordering,
    rows: Vec<Held>,
    slots: Vec<Slot>,
    /// Rows held in `rows`; past four times the groups plus `slack`, they are
    /// compacted.
    held: usize,
    slack: usize,
}

impl GroupsLatest {
    fn new(data_type: &DataType, wins: Ordering) -> Self {
        let mut this = Self {
            data_type: data_type.clone(),
            wins,
            rows: Vec::new(),
            slots: Vec::new(),
            held: 0,
            slack: 262_144,
        };
        this.reset(Vec::new(), None);
        this
    }

    /// Holds only the null row and, if given, `gathered`: one row per slot.
    fn reset(&mut self, mut slots: Vec<Slot>, gathered: Option<Held>) {
        let nulls = Held {
            value: new_null_array(&self.data_type, 1),
            id: Ids { values: StringArray::new_null(1), own: true },
        };
        self.rows = vec![nulls];
        self.held = 1;
        if let Some(gathered) = gathered {
            for (group, slot) in slots.iter_mut().enumerate().filter(|(_, s)| s.batch != 0) {
                (slot.batch, slot.row) = (1, group as u32);
            }
            self.held += gathered.value.len();
            self.rows.push(gathered);
        }
        self.slots = slots;
    }

    fn update(
        &mut self,
        rows: Input,
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) -> Result<()> {
        self.slots.resize(total, Slot::default());
        let batch = self.rows.len() as u32;
        let mut used = false;
        for (row, &group) in groups.iter().enumerate() {
            if rows.value.is_null(row) || filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                continue;
            }
            let slot = self.slots[group];
            let (timestamp, received_at) = rows.order(row);
            let better = slot.batch == 0
                || match (timestamp, received_at).cmp(&(slot.timestamp, slot.received_at)) {
                    Ordering::Equal => {
                        // The best row may be one of this batch's.
                        let best = slot.row as usize;
                        let best_id = if slot.batch == batch {
                            rows.id.get(best)
                        } else {
                            self.rows[slot.batch as usize].id.get(best)
                        };
                        compare(rows.key(row), (timestamp, received_at, best_id)) == self.wins
                    }
                    order => order == self.wins,
                };
            if better {
                self.slots[group] = Slot { timestamp, received_at, batch, row: row as u32 };
                used = true;
            }
        }
        if used {
            self.held += rows.value.len();
            self.rows.push(Held { value: rows.value, id: rows.id });
            if self.held > 4 * self.slots.len() + self.slack {
                let gathered = self.gather(&self.slots)?;
                let slots = std::mem::take(&mut self.slots);
                self.reset(slots, Some(gathered));
            }
        }
        Ok(())
    }

    /// Gathers the best rows of `slots` into one batch, in their order.
    fn gather(&self, slots: &[Slot]) -> Result<Held> {
        let indices: Vec<(usize, usize)> = slots.iter().map(|s| (s.batch as usize, s.row as usize)).collect();
        let pick = |f: fn(&Held) -> &dyn Array| -> Result<ArrayRef> {
            let arrays: Vec<&dyn Array> = self.rows.iter().map(f).collect();
            Ok(interleave(&arrays, &indices)?)
        };
        let ids =
            StringArray::from_iter(slots.iter().map(|s| self.rows[s.batch as usize].id.get(s.row as usize)));
        Ok(Held { value: pick(|r| r.value.as_ref())?, id: Ids { values: ids, own: true } })
    }

    /// The first groups' rows and slots per `emit_to`. The rest keep
    /// pointing into the held rows, so that emitting in small steps (as a
    /// spilled aggregation does) costs each step only its own groups.
    fn take(&mut self, emit_to: EmitTo) -> Result<(Held, Vec<Slot>)> {
        let n = match emit_to {
            EmitTo::All => self.slots.len(),
            EmitTo::First(n) => n.min(self.slots.len()),
        };
        let rest = self.slots.split_off(n);
        let taken = std::mem::replace(&mut self.slots, rest);
        let gathered = self.gather(&taken)?;
        if self.slots.is_empty() {
            self.reset(Vec::new(), None);
        }
        Ok((gathered, taken))
    }
}

impl GroupsAccumulator for GroupsLatest {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.update(Input::from_arrays(values)?, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(self.take(emit_to)?.0.value)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (held, slots) = self.take(emit_to)?;
        let key = |f: fn(&Slot) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter(slots.iter().map(|s| (s.batch != 0).then(|| f(s)))))
        };
        Ok(vec![held.value, key(|s| s.timestamp), key(|s| s.received_at), held.id.into_state()])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.update(Input::from_arrays(values)?, group_indices, None, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let rows = Input::from_arrays(values)?;
        // A filtered-out row becomes a null value, which merging skips.
        let value = match opt_filter {
            Some(filter) => nullif(&rows.value, &not(&prep_null_mask_filter(filter))?)?,
            None => rows.value,
        };
        Ok(vec![value, Arc::new(rows.timestamp), Arc::new(rows.received_at), rows.id.into_state()])
    }

    fn size(&self) -> usize {
        self.rows.iter().map(Held::memory_size).sum::<usize>() + self.slots.capacity() * size_of::<Slot>()
    }
}

/// The same rule for DataFusion's ungrouped plans.
#[derive(Debug)]
struct RowLatest {
    data_type: DataType,
    wins: Ordering,
    best: Option<(ScalarValue, i64, i64, Option<String>)>,
}

impl Accumulator for RowLatest {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let rows = Input::from_arrays(values)?;
        for row in 0..rows.value.len() {
            if rows.value.is_null(row) {
                continue;
            }
            let key = rows.key(row);
            let better = match &self.best {
                None => true,
                Some((_, t, r, id)) => compare(key, (*t, *r, id.as_deref())) == self.wins,
            };
            if better {
                let value = ScalarValue::try_from_array(&rows.value, row)?;
                self.best = Some((value, key.0, key.1, key.2.map(str::to_owned)));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match &self.best {
            Some((value, ..)) => Ok(value.clone()),
            None => ScalarValue::try_from(&self.data_type),
        }
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(match &self.best {
            Some((value, t, r, id)) => vec![
                value.clone(),
                ScalarValue::Int64(Some(*t)),
                ScalarValue::Int64(Some(*r)),
                ScalarValue::Utf8(id.clone()),
            ],
            None => vec![
                ScalarValue::try_from(&self.data_type)?,
                ScalarValue::Int64(None),
                ScalarValue::Int64(None),
                ScalarValue::Utf8(None),
            ],
        })
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.best.as_ref().map_or(0, |(v, ..)| v.size())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::TimestampMicrosecondArray;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn later_keys_win_and_a_null_id_sorts_last() {
        assert_eq!(compare((2, 0, Some("a")), (1, 9, Some("z"))), Ordering::Greater);
        assert_eq!(compare((1, 2, Some("a")), (1, 1, Some("z"))), Ordering::Greater);
        assert_eq!(compare((1, 1, Some("b")), (1, 1, Some("a"))), Ordering::Greater);
        assert_eq!(compare((1, 1, None), (1, 1, Some("a"))), Ordering::Greater);
        assert_eq!(compare((1, 1, Some("a")), (1, 1, None)), Ordering::Less);
        assert_eq!(compare((1, 1, None), (1, 1, None)), Ordering::Equal);
    }

    /// (group, timestamp, received_at, id, value); ids are unique, as
    /// deduplicated events' are.
    type Row = (usize, i64, i64, usize, Option<i64>);

    fn arrays(rows: &[Row]) -> Vec<ArrayRef> {
        vec![
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.4))),
            Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| format!("e{}", r.3)))),
        ]
    }

    fn feed(acc: &mut GroupsLatest, rows: &[Row], batch: usize, groups: usize) {
        for chunk in rows.chunks(batch.max(1)) {
            let indices: Vec<usize> = chunk.iter().map(|r| r.0).collect();
            acc.update_batch(&arrays(chunk), &indices, None, groups).unwrap();
        }
    }

    /// The latest (or earliest) non-null value per group, by sorting.
    fn expected(rows: &[Row], groups: usize, wins: Ordering) -> Vec<Option<i64>> {
        let mut sorted: Vec<&Row> = rows.iter().filter(|r| r.4.is_some()).collect();
        sorted.sort_by_key(|r| (r.1, r.2, format!("e{}", r.3)));
        if wins == Ordering::Less {
            sorted.reverse();
        }
        let mut latest = vec![None; groups];
        for r in sorted {
            latest[r.0] = r.4;
        }
        latest
    }

    fn values(array: &ArrayRef) -> Vec<Option<i64>> {
        array.as_primitive::<Int64Type>().iter().collect()
    }

    proptest! {
        /// Any batching, compaction, split into partial states and merge,
        /// and emission in two parts give the latest (earliest) non-null
        /// value.
        #[test]
        fn matches_a_sort(
            rows in prop::collection::vec((0..7usize, 0..4i64, 0..3i64, prop::option::of(0..100i64)), 0..200),
            batch in 1..40usize,
            split in 0..200usize,
            first in 0..8usize,
            earliest: bool,
        ) {
            let wins = if earliest { Ordering::Less } else { Ordering::Greater };
            let groups = 7;
            let rows: Vec<Row> = rows.into_iter().enumerate().map(|(id, (g, t, r, v))| (g, t, r, id, v)).collect();
            let split = split.min(rows.len());
            let mut left = GroupsLatest::new(&DataType::Int64, wins);
            let mut right = GroupsLatest::new(&DataType::Int64, wins);
            left.slack = 0;
            right.slack = 0;
            feed(&mut left, &rows[..split], batch, groups);
            feed(&mut right, &rows[split..], batch, groups);
            let state = right.state(EmitTo::All).unwrap();
            let indices: Vec<usize> = (0..state[0].len()).collect();
            left.merge_batch(&state, &indices, groups).unwrap();
            let mut got = values(&left.evaluate(EmitTo::First(first.min(groups))).unwrap());
            got.extend(values(&left.evaluate(EmitTo::All).unwrap()));
            prop_assert_eq!(got, expected(&rows, groups, wins));
        }
    }
}

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
//! many times the size of the input. These are `latest_fields` over a struct
//! of the one value, which keeps each group's winning value and key in one
//! small record instead.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use crate::latest_fields::{GroupsLatestFields, OneGroup, state_fields};

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

/// The one field of the struct the value is wrapped in.
fn value_fields(data_type: &DataType) -> Fields {
    Fields::from(vec![Field::new("value", data_type.clone(), true)])
}

/// `(value, …)` as `(struct of value, …)`.
fn wrap(values: &[ArrayRef]) -> Result<Vec<ArrayRef>> {
    let Some(value) = values.first() else {
        return internal_err!("latest takes (value, timestamp, received_at, id)");
    };
    let traits = StructArray::new(value_fields(value.data_type()), vec![Arc::clone(value)], None);
    Ok(std::iter::once(Arc::new(traits) as ArrayRef).chain(values[1..].iter().cloned()).collect())
}

fn unwrap(traits: &ArrayRef) -> ArrayRef {
    Arc::clone(traits.as_struct().column(0))
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
        let fields = value_fields(args.return_field.data_type());
        Ok(Box::new(RowLatest(OneGroup(GroupsLatestFields::new(fields, self.wins)?))))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name, value_fields(args.return_field.data_type())))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let fields = value_fields(args.return_field.data_type());
        Ok(Box::new(GroupsLatest(GroupsLatestFields::new(fields, self.wins)?)))
    }
}

#[derive(Debug)]
struct GroupsLatest(GroupsLatestFields);

impl GroupsAccumulator for GroupsLatest {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.0.update_batch(&wrap(values)?, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(unwrap(&self.0.evaluate(emit_to)?))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.0.state(emit_to)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.0.merge_batch(values, group_indices, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        self.0.convert_to_state(&wrap(values)?, opt_filter)
    }

    fn size(&self) -> usize {
        self.0.size()
    }
}

/// The same rule for DataFusion's ungrouped plans.
#[derive(Debug)]
struct RowLatest(OneGroup);

impl Accumulator for RowLatest {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0.update_batch(&wrap(values)?)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match self.0.evaluate()? {
            ScalarValue::Struct(traits) => ScalarValue::try_from_array(traits.column(0), 0),
            other => internal_err!("latest_fields gave {other:?}, not a struct"),
        }
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.0.merge_batch(states)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.0.size()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::Int64Type;
    use proptest::prelude::*;

    use super::*;

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
        /// Any batching, split into partial states and merge, and emission
        /// in two parts give the latest (earliest) non-null value.
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
            let new = || {
                GroupsLatest(GroupsLatestFields::new(value_fields(&DataType::Int64), wins).unwrap())
            };
            let (mut left, mut right) = (new(), new());
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

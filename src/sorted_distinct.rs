//! `sorted_distinct(value)`: a group's distinct non-null strings, in
//! ascending order (of their bytes, as `array_sort` orders strings), and an
//! empty list for a group without any: `users.anonymous_ids` (SPEC §6).
//!
//! It is `array_sort(array_distinct(array_agg(value)))`, but `array_agg`
//! held every input batch's column until the end, each of a user's
//! identifies adding its anonymous id again: at 5M events ~150 MB for ~1M
//! distinct ids. Here a group's record (in an [`Arena`]) lists its distinct
//! values, each once, already sorted.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayBuilder, ArrayRef, AsArray, BinaryBuilder, BooleanArray, ListArray, StringArray,
    new_empty_array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{cast, filter};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use crate::arena::{Arena, Ref, first_groups, put_varint, read_varint, selected};

/// The `sorted_distinct` aggregate, to register on a session.
pub fn udaf() -> AggregateUDF {
    AggregateUDF::from(SortedDistinct { signature: Signature::any(1, Volatility::Immutable) })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SortedDistinct {
    signature: Signature,
}

fn list_field() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Utf8, true))
}

fn list_type() -> DataType {
    DataType::List(list_field())
}

impl AggregateUDFImpl for SortedDistinct {
    fn name(&self) -> &str {
        "sorted_distinct"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => Ok(list_type()),
            other => internal_err!("sorted_distinct takes strings, not {other}"),
        }
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(OneGroup::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format!("{}[values]", args.name), list_type(), true))])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(GroupsSortedDistinct::default()))
    }
}

fn strings(array: &ArrayRef) -> Result<StringArray> {
    Ok(cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
}

/// Per group, a record of its values: each as its length (a varint) and
/// bytes, in ascending order.
#[derive(Debug, Default)]
struct GroupsSortedDistinct {
    refs: Vec<Ref>,
    arena: Arena,
    written: Vec<u8>,
}

impl GroupsSortedDistinct {
    fn insert(&mut self, group: usize, value: &[u8]) {
        let record = self.arena.get(self.refs[group]);
        let mut split = record.len();
        for (start, existing) in values(record) {
            match existing.cmp(value) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return,
                std::cmp::Ordering::Greater => {
                    split = start;
                    break;
                }
            }
        }
        self.written.clear();
        self.written.extend_from_slice(&record[..split]);
        put_varint(&mut self.written, value.len());
        self.written.extend_from_slice(value);
        self.written.extend_from_slice(&record[split..]);
        self.arena.replace(&mut self.refs, group, &self.written);
    }

    /// The first `n` groups' lists; the groups are let go.
    fn take(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let n = first_groups(emit_to, self.refs.len());
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0i32);
        let mut bytes = BinaryBuilder::new();
        for at in &self.refs[..n] {
            values(self.arena.get(*at)).for_each(|(_, value)| bytes.append_value(value));
            offsets.push(bytes.len() as i32);
        }
        self.arena.let_go(&mut self.refs, n);
        let values = StringArray::try_from_binary(bytes.finish())?;
        Ok(list(OffsetBuffer::new(offsets.into()), Arc::new(values)))
    }
}

/// A record's values, each with where it starts in the record.
fn values(record: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        (at < record.len()).then(|| {
            let start = at;
            let len = read_varint(record, &mut at);
            at += len;
            (start, &record[at - len..at])
        })
    })
}

fn list(offsets: OffsetBuffer<i32>, values: ArrayRef) -> ArrayRef {
    Arc::new(ListArray::new(list_field(), offsets, values, None))
}

impl GroupsAccumulator for GroupsSortedDistinct {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.refs.resize(total_num_groups, Ref::NONE);
        let values = strings(&values[0])?;
        for (row, &group) in group_indices.iter().enumerate() {
            self.arena.prefetch_ahead(&self.refs, group_indices, row);
            if selected(opt_filter, row) && values.is_valid(row) {
                self.insert(group, values.value(row).as_bytes());
            }
        }
        self.arena.tidy(&mut self.refs);
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        self.take(emit_to)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.take(emit_to)?])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.refs.resize(total_num_groups, Ref::NONE);
        let lists = values[0].as_list::<i32>();
        let inner = strings(lists.values())?;
        for (row, &group) in group_indices.iter().enumerate() {
            if lists.is_null(row) {
                continue;
            }
            let range = lists.value_offsets()[row] as usize..lists.value_offsets()[row + 1] as usize;
            for i in range.filter(|&i| inner.is_valid(i)) {
                self.insert(group, inner.value(i).as_bytes());
            }
        }
        self.arena.tidy(&mut self.refs);
        Ok(())
    }

    /// Each row as a list of its value, or of none.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let values = strings(&values[0])?;
        let keep: BooleanArray =
            (0..values.len()).map(|row| Some(values.is_valid(row) && selected(opt_filter, row))).collect();
        let lengths = keep.values().iter().map(usize::from);
        let kept = filter(&values, &keep)?;
        Ok(vec![list(OffsetBuffer::from_lengths(lengths), kept)])
    }

    fn size(&self) -> usize {
        self.arena.bytes() + self.refs.capacity() * size_of::<Ref>() + self.written.capacity()
    }
}

/// The same for DataFusion's ungrouped plans.
#[derive(Debug, Default)]
struct OneGroup(BTreeSet<String>);

impl Accumulator for OneGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0.extend(strings(&values[0])?.iter().flatten().map(str::to_owned));
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let values: ArrayRef = if self.0.is_empty() {
            new_empty_array(&DataType::Utf8)
        } else {
            Arc::new(StringArray::from_iter_values(&self.0))
        };
        let list = list(OffsetBuffer::from_lengths([values.len()]), values);
        ScalarValue::try_from_array(&list, 0)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for row in (0..lists.len()).filter(|&row| lists.is_valid(row)) {
            self.0.extend(strings(&lists.value(row))?.iter().flatten().map(str::to_owned));
        }
        Ok(())
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.0.iter().map(|s| s.capacity() + size_of::<String>()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn lists(array: &ArrayRef) -> Vec<Vec<String>> {
        let lists = array.as_list::<i32>();
        (0..lists.len())
            .map(|row| strings(&lists.value(row)).unwrap().iter().flatten().map(str::to_owned).collect())
            .collect()
    }

    proptest! {
        /// Any batching, partial states merged, rows converted to states
        /// and emission in two parts give each group's distinct values,
        /// sorted, with filtered-out and null values left out.
        #[test]
        fn matches_a_sorted_set(
            rows in prop::collection::vec((0..6usize, prop::option::of("[a-c]{0,3}"), any::<bool>()), 0..150),
            batch in 1..30usize,
            split in 0..150usize,
            first in 0..7usize,
        ) {
            let groups = 6;
            let feed = |acc: &mut GroupsSortedDistinct, rows: &[(usize, Option<String>, bool)], merge: bool| {
                for chunk in rows.chunks(batch) {
                    let indices: Vec<usize> = chunk.iter().map(|r| r.0).collect();
                    let values: ArrayRef = Arc::new(StringArray::from_iter(chunk.iter().map(|r| r.1.clone())));
                    let keep = BooleanArray::from_iter(chunk.iter().map(|r| Some(r.2)));
                    if merge {
                        let state = acc.convert_to_state(&[values], Some(&keep)).unwrap();
                        acc.merge_batch(&state, &indices, groups).unwrap();
                    } else {
                        acc.update_batch(&[values], &indices, Some(&keep), groups).unwrap();
                    }
                }
            };
            let split = split.min(rows.len());
            let (mut left, mut right) = (GroupsSortedDistinct::default(), GroupsSortedDistinct::default());
            feed(&mut left, &rows[..split], false);
            feed(&mut right, &rows[split..], true);
            let state = right.state(EmitTo::All).unwrap();
            let indices: Vec<usize> = (0..state[0].len()).collect();
            left.merge_batch(&state, &indices, groups).unwrap();
            let mut got = lists(&left.evaluate(EmitTo::First(first.min(groups))).unwrap());
            got.extend(lists(&left.evaluate(EmitTo::All).unwrap()));
            let mut expected = vec![BTreeSet::new(); groups];
            for (group, value, keep) in &rows {
                if let (Some(value), true) = (value, keep) {
                    expected[*group].insert(value.clone());
                }
            }
            let expected: Vec<Vec<String>> = expected.into_iter().map(|s| s.into_iter().collect()).collect();
            prop_assert_eq!(got, expected);
        }
    }

    /// Values of ~2 KB over a few hundred groups fill several chunks;
    /// emitting the first groups renumbers the rest, which still merge.
    #[test]
    fn large_values_over_many_chunks_survive_a_partial_emission() {
        let value = |group: usize, n: usize| format!("{n}{}", "v".repeat(2000 + group % 7));
        let mut acc = GroupsSortedDistinct::default();
        let feed =
            |acc: &mut GroupsSortedDistinct, n: usize, groups: std::ops::Range<usize>, total: usize| {
                let start = groups.start;
                let values: ArrayRef =
                    Arc::new(StringArray::from_iter_values(groups.clone().map(|g| value(g, n))));
                let indices: Vec<usize> = groups.map(|g| g - start).collect();
                acc.update_batch(&[values], &indices, None, total).unwrap();
            };
        for n in [2, 1, 2] {
            feed(&mut acc, n, 0..300, 300);
        }
        let first = lists(&acc.evaluate(EmitTo::First(100)).unwrap());
        assert_eq!(first, (0..100).map(|g| vec![value(g, 1), value(g, 2)]).collect::<Vec<_>>());
        // Groups 100..300 are now 0..200: the first 150 get a third value.
        let values: ArrayRef = Arc::new(StringArray::from_iter_values((100..250).map(|g| value(g, 3))));
        acc.update_batch(&[values], &(0..150).collect::<Vec<_>>(), None, 200).unwrap();
        let rest = lists(&acc.evaluate(EmitTo::All).unwrap());
        let expected: Vec<Vec<String>> =
            (100..300).map(|g| (1..if g < 250 { 4 } else { 3 }).map(|n| value(g, n)).collect()).collect();
        assert_eq!(rest, expected);
    }

    #[test]
    fn one_group_lists_its_distinct_values_sorted() {
        let mut acc = OneGroup::default();
        let values: ArrayRef = Arc::new(StringArray::from(vec![Some("b"), None, Some("a"), Some("b")]));
        acc.update_batch(&[values]).unwrap();
        let ScalarValue::List(got) = acc.evaluate().unwrap() else { panic!("not a list") };
        let got: ArrayRef = got;
        assert_eq!(lists(&got), vec![vec!["a".to_owned(), "b".to_owned()]]);
    }
}

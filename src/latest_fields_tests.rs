use datafusion::arrow::array::TimestampMicrosecondArray;
use proptest::prelude::*;

use super::*;

const WIDTH: usize = 3;

/// (group, timestamp, received_at, id, a value per field); ids are unique,
/// as deduplicated events' are.
type Row = (usize, i64, i64, usize, [Option<i64>; WIDTH]);

fn fields() -> Fields {
    (0..WIDTH).map(|f| Field::new(format!("f{f}"), DataType::Int64, true)).collect()
}

fn arrays(rows: &[Row]) -> Vec<ArrayRef> {
    let columns: Vec<ArrayRef> = (0..WIDTH)
        .map(|f| Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.4[f]))) as ArrayRef)
        .collect();
    vec![
        Arc::new(StructArray::new(fields(), columns, None)),
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.2))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| format!("e{}", r.3)))),
    ]
}

fn feed(acc: &mut GroupsLatestFields, rows: &[Row], batch: usize, groups: usize) {
    for chunk in rows.chunks(batch.max(1)) {
        let indices: Vec<usize> = chunk.iter().map(|r| r.0).collect();
        acc.update_batch(&arrays(chunk), &indices, None, groups).unwrap();
    }
}

/// Per group, per field, the latest non-null value, by sorting.
fn expected(rows: &[Row], groups: usize) -> Vec<[Option<i64>; WIDTH]> {
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by_key(|r| (r.1, r.2, format!("e{}", r.3)));
    let mut latest = vec![[None; WIDTH]; groups];
    for r in sorted {
        for (best, value) in latest[r.0].iter_mut().zip(r.4) {
            if value.is_some() {
                *best = value;
            }
        }
    }
    latest
}

fn values_of(array: &ArrayRef) -> Vec<[Option<i64>; WIDTH]> {
    let columns = array.as_struct().columns();
    (0..array.len())
        .map(|row| std::array::from_fn(|f| columns[f].as_primitive::<Int64Type>().iter().nth(row).flatten()))
        .collect()
}

fn new() -> GroupsLatestFields {
    GroupsLatestFields::new(struct_fields(&DataType::Struct(fields())).unwrap(), Ordering::Greater).unwrap()
}

proptest! {
    /// Any batching, rows converted to states, partial states merged, and
    /// emission in two parts give each field's latest non-null value.
    #[test]
    fn matches_a_sort(
        rows in prop::collection::vec(
            (0..7usize, 0..4i64, 0..3i64, prop::array::uniform3(prop::option::of(0..100i64))),
            0..200,
        ),
        batch in 1..40usize,
        splits in (0..200usize, 0..200usize),
        first in 0..8usize,
    ) {
        let groups = 7;
        let rows: Vec<Row> = rows.into_iter().enumerate().map(|(id, (g, t, r, v))| (g, t, r, id, v)).collect();
        let (a, b) = (splits.0.min(rows.len()), splits.1.min(rows.len()));
        let (a, b) = (a.min(b), a.max(b));
        let mut left = new();
        let mut right = new();
        feed(&mut left, &rows[..a], batch, groups);
        feed(&mut right, &rows[a..b], batch, groups);
        let state = right.state(EmitTo::All).unwrap();
        let indices: Vec<usize> = (0..state[0].len()).collect();
        left.merge_batch(&state, &indices, groups).unwrap();
        // The rest arrive as rows converted to states. DataFusion does that
        // only for aggregates that declare it (these do not, as
        // `one_phase.rs` shuffles rows instead), but the form must merge.
        for chunk in rows[b..].chunks(batch) {
            let indices: Vec<usize> = chunk.iter().map(|r| r.0).collect();
            let all = BooleanArray::from(vec![true; chunk.len()]);
            let state = left.convert_to_state(&arrays(chunk), Some(&all)).unwrap();
            left.merge_batch(&state, &indices, groups).unwrap();
        }
        let mut got = values_of(&left.evaluate(EmitTo::First(first.min(groups))).unwrap());
        got.extend(values_of(&left.evaluate(EmitTo::All).unwrap()));
        prop_assert_eq!(got, expected(&rows, groups));
    }

    /// Without groups (DataFusion's plan for a query with no GROUP BY), the
    /// rule is the same.
    #[test]
    fn one_group_matches_a_sort(
        rows in prop::collection::vec((0..4i64, 0..3i64, prop::array::uniform3(prop::option::of(0..100i64))), 0..60),
        batch in 1..20usize,
    ) {
        let rows: Vec<Row> = rows.into_iter().enumerate().map(|(id, (t, r, v))| (0, t, r, id, v)).collect();
        let mut acc = OneGroup(new());
        for chunk in rows.chunks(batch) {
            acc.update_batch(&arrays(chunk)).unwrap();
        }
        let ScalarValue::Struct(got) = acc.evaluate().unwrap() else { panic!("not a struct") };
        let got: ArrayRef = got;
        prop_assert_eq!(values_of(&got), expected(&rows, 1));
    }
}

#[test]
fn a_field_that_is_never_set_is_null_and_a_tie_goes_to_the_greater_id() {
    let mut acc = new();
    let rows = [(0, 5, 5, 1, [Some(1), None, None]), (0, 5, 5, 2, [Some(2), None, None])];
    feed(&mut acc, &rows, 1, 1);
    assert_eq!(values_of(&acc.evaluate(EmitTo::All).unwrap()), vec![[Some(2), None, None]]);
}

#[test]
fn a_null_struct_has_no_values_and_evaluating_one_group_keeps_it() {
    let rows = [(0, 1, 1, 1, [Some(1), Some(1), None]), (0, 2, 2, 2, [Some(2), None, None])];
    let mut values = arrays(&rows);
    let traits = values[0].as_struct().clone();
    let (fields, columns, _) = traits.into_parts();
    let nulls = NullBuffer::from(vec![true, false]);
    values[0] = Arc::new(StructArray::new(fields, columns, Some(nulls)));
    let mut acc = OneGroup(new());
    acc.update_batch(&values).unwrap();
    let first = acc.evaluate().unwrap();
    assert_eq!(acc.evaluate().unwrap(), first);
    let ScalarValue::Struct(got) = first else { panic!("not a struct") };
    let got: ArrayRef = got;
    assert_eq!(values_of(&got), vec![[Some(1), Some(1), None]]);
}

/// More fields than a byte can number, each won by a row of its own: the
/// sources are 16-bit and a state merged elsewhere keeps every value.
#[test]
fn a_state_of_more_keys_than_a_byte_numbers_merges_whole() {
    let width = 300;
    let fields: Fields = (0..width).map(|f| Field::new(format!("f{f}"), DataType::Int64, true)).collect();
    let columns = (0..width)
        .map(|f| {
            Arc::new(Int64Array::from_iter((0..width).map(|row| (row == f).then_some(row as i64))))
                as ArrayRef
        })
        .collect();
    let at = |row: usize| row as i64;
    let values: Vec<ArrayRef> = vec![
        Arc::new(StructArray::new(fields.clone(), columns, None)),
        Arc::new(TimestampMicrosecondArray::from_iter_values((0..width).map(at))),
        Arc::new(TimestampMicrosecondArray::from_iter_values((0..width).map(at))),
        Arc::new(StringArray::from_iter_values((0..width).map(|row| format!("e{row}")))),
    ];
    let mut first = GroupsLatestFields::new(fields.clone(), Ordering::Greater).unwrap();
    first.update_batch(&values, &vec![0; width], None, 1).unwrap();
    let state = first.state(EmitTo::All).unwrap();
    assert_eq!(state[2].as_fixed_size_list().value_type(), DataType::UInt16);
    let mut second = GroupsLatestFields::new(fields, Ordering::Greater).unwrap();
    second.merge_batch(&state, &[0], 1).unwrap();
    let got = second.evaluate(EmitTo::All).unwrap();
    let got: Vec<Option<i64>> = got
        .as_struct()
        .columns()
        .iter()
        .map(|c| c.as_primitive::<Int64Type>().iter().next().flatten())
        .collect();
    assert_eq!(got, (0..width as i64).map(Some).collect::<Vec<_>>());
}

/// Records of ~2 KB over a few hundred groups fill several chunks: rewrites
/// leave chunks to empty, emitting the first groups renumbers the rest, and
/// later rows and the last emission (chunk by chunk) still find every value.
#[test]
fn large_records_over_many_chunks_survive_rewrites_and_a_partial_emission() {
    let fields = Fields::from(vec![Field::new("v", DataType::Utf8, true)]);
    let mut acc = GroupsLatestFields::new(fields.clone(), Ordering::Greater).unwrap();
    let value = |group: usize, round: i64| format!("{group}:{round}:{}", "x".repeat(2000 + group % 13));
    let batch = |round: i64, groups: std::ops::Range<usize>| -> Vec<ArrayRef> {
        let values: ArrayRef =
            Arc::new(StringArray::from_iter_values(groups.clone().map(|g| value(g, round))));
        let n = groups.len();
        vec![
            Arc::new(StructArray::new(fields.clone(), vec![values], None)),
            Arc::new(TimestampMicrosecondArray::from_iter_values(std::iter::repeat_n(round, n))),
            Arc::new(TimestampMicrosecondArray::from_iter_values(std::iter::repeat_n(0, n))),
            Arc::new(StringArray::from_iter_values(groups.map(|g| format!("e{round}-{g}")))),
        ]
    };
    let strings = |a: &ArrayRef| -> Vec<String> {
        a.as_struct().column(0).as_string::<i32>().iter().map(|v| v.unwrap().to_owned()).collect()
    };
    // Round 2 arrives after round 3 and loses.
    for round in [1, 3, 2] {
        acc.update_batch(&batch(round, 0..300), &(0..300).collect::<Vec<_>>(), None, 300).unwrap();
    }
    let first = acc.evaluate(EmitTo::First(100)).unwrap();
    assert_eq!(strings(&first), (0..100).map(|g| value(g, 3)).collect::<Vec<_>>());
    // Groups 100..300 are now 0..200.
    acc.update_batch(&batch(4, 100..250), &(0..150).collect::<Vec<_>>(), None, 200).unwrap();
    let rest = acc.evaluate(EmitTo::All).unwrap();
    let expected: Vec<String> = (100..300).map(|g| value(g, if g < 250 { 4 } else { 3 })).collect();
    assert_eq!(strings(&rest), expected);
}

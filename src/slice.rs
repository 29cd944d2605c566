//! `il_slice(id, slices)`: which of `build-users`' slices an id falls in, a
//! hash of its bytes modulo the number of slices. `users` is built one slice
//! of its users at a time, and `identity_map` one slice of its anonymous
//! ids, when all of them at once would not fit the memory budget (see
//! `pipeline/users.rs`); every row of an id falls in the id's slice, so each
//! slice's groups are complete.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use xxhash_rust::xxh3::xxh3_64;

/// The function, to register on a session.
pub fn udf() -> ScalarUDF {
    ScalarUDF::from(Slice {
        signature: Signature::exact(vec![DataType::Utf8, DataType::Int64], Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Slice {
    signature: Signature,
}

/// The slice of one id.
pub fn slice_of(id: &str, slices: u64) -> i64 {
    (xxh3_64(id.as_bytes()) % slices.max(1)) as i64
}

impl ScalarUDFImpl for Slice {
    fn name(&self) -> &str {
        "il_slice"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [ids, ColumnarValue::Scalar(ScalarValue::Int64(Some(slices @ 1..)))] = args.args.as_slice()
        else {
            return exec_err!("il_slice takes an id and a positive number of slices");
        };
        let ids = ids.to_array(args.number_rows)?;
        let Some(ids) = ids.as_string_opt::<i32>() else {
            return exec_err!("il_slice takes a string, not {}", ids.data_type());
        };
        let slices = *slices as u64;
        let slices: Int64Array = ids.iter().map(|id| id.map(|id| slice_of(id, slices))).collect();
        Ok(ColumnarValue::Array(Arc::new(slices)))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    #[tokio::test]
    async fn every_id_falls_in_one_slice_the_same_in_sql_and_rust() {
        let ctx = SessionContext::new();
        ctx.register_udf(udf());
        let batches = ctx
            .sql("SELECT il_slice(id, 3) AS s FROM (VALUES ('u1'), ('u2'), ('u3'), (NULL)) AS t(id)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let column = batches[0].column(0).as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let expected: Vec<Option<i64>> =
            ["u1", "u2", "u3"].iter().map(|id| Some(slice_of(id, 3))).chain([None]).collect();
        assert_eq!(column.iter().collect::<Vec<_>>(), expected);
        assert!(expected.iter().flatten().all(|s| (0..3).contains(s)));
        let spread: std::collections::HashSet<i64> =
            (0..100).map(|i| slice_of(&format!("user{i}"), 3)).collect();
        assert_eq!(spread.len(), 3, "ids spread over every slice");
        assert_eq!(slice_of("u1", 1), 0);
        let zero = ctx.sql("SELECT il_slice('u1', 0)").await.unwrap().collect().await;
        assert!(zero.is_err(), "no slice of none");
    }
}

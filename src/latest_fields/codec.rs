//! One field's values as bytes in a group's record, and back. Strings (most
//! traits) are their own bytes; any other type goes through arrow's row
//! format, which encodes every type and decodes it exactly.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryViewBuilder, GenericBinaryBuilder, GenericStringArray, OffsetSizeTrait,
    new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::Result;

#[derive(Debug)]
pub(super) enum Codec {
    Utf8,
    LargeUtf8,
    Utf8View,
    Rows { converter: RowConverter, data_type: DataType, null: Vec<u8> },
}

/// A batch's column, ready to give each row's bytes.
pub(super) enum Encoded {
    Utf8(GenericStringArray<i32>),
    LargeUtf8(GenericStringArray<i64>),
    Utf8View(datafusion::arrow::array::StringViewArray),
    Rows(Rows),
}

impl Encoded {
    /// A row's bytes; only asked of rows with a value.
    pub fn bytes(&self, row: usize) -> &[u8] {
        match self {
            Encoded::Utf8(a) => a.value(row).as_bytes(),
            Encoded::LargeUtf8(a) => a.value(row).as_bytes(),
            Encoded::Utf8View(a) => a.value(row).as_bytes(),
            Encoded::Rows(rows) => rows.row(row).data(),
        }
    }
}

impl Codec {
    pub fn new(data_type: &DataType) -> Result<Self> {
        Ok(match data_type {
            DataType::Utf8 => Codec::Utf8,
            DataType::LargeUtf8 => Codec::LargeUtf8,
            DataType::Utf8View => Codec::Utf8View,
            other => {
                let converter = RowConverter::new(vec![SortField::new(other.clone())])?;
                // A group without a value decodes from an encoded null.
                let null = converter.convert_columns(&[new_null_array(other, 1)])?;
                let null = null.row(0).data().to_vec();
                Codec::Rows { converter, data_type: other.clone(), null }
            }
        })
    }

    pub fn encode(&self, column: &ArrayRef) -> Result<Encoded> {
        Ok(match self {
            Codec::Utf8 => Encoded::Utf8(column.as_string::<i32>().clone()),
            Codec::LargeUtf8 => Encoded::LargeUtf8(column.as_string::<i64>().clone()),
            Codec::Utf8View => Encoded::Utf8View(column.as_string_view().clone()),
            Codec::Rows { converter, .. } => Encoded::Rows(converter.convert_columns(&[Arc::clone(column)])?),
        })
    }

    /// An array of `values`, null where there is none.
    pub fn decode(&self, values: &[Option<&[u8]>]) -> Result<ArrayRef> {
        Ok(match self {
            Codec::Utf8 => strings::<i32>(values)?,
            Codec::LargeUtf8 => strings::<i64>(values)?,
            Codec::Utf8View => {
                let mut builder = BinaryViewBuilder::with_capacity(values.len());
                values.iter().for_each(|v| builder.append_option(*v));
                Arc::new(builder.finish().to_string_view()?)
            }
            Codec::Rows { converter, data_type, null } => {
                let parser = converter.parser();
                let rows = values.iter().map(|v| parser.parse(v.unwrap_or(null)));
                let array = converter.convert_rows(rows)?.remove(0);
                // Dictionaries decode as their values' type.
                if array.data_type() == data_type { array } else { cast(&array, data_type)? }
            }
        })
    }
}

fn strings<O: OffsetSizeTrait>(values: &[Option<&[u8]>]) -> Result<ArrayRef> {
    let bytes = values.iter().flatten().map(|v| v.len()).sum();
    let mut builder = GenericBinaryBuilder::<O>::with_capacity(values.len(), bytes);
    values.iter().for_each(|v| builder.append_option(*v));
    Ok(Arc::new(GenericStringArray::<O>::try_from_binary(builder.finish())?))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        BooleanArray, DictionaryArray, Float64Array, LargeStringArray, StringArray, StringViewArray,
        TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;

    fn round_trip(array: ArrayRef) {
        let codec = Codec::new(array.data_type()).unwrap();
        let encoded = codec.encode(&array).unwrap();
        let values: Vec<Option<&[u8]>> =
            (0..array.len()).map(|row| array.is_valid(row).then(|| encoded.bytes(row))).collect();
        assert_eq!(codec.decode(&values).unwrap().as_ref(), array.as_ref());
    }

    #[test]
    fn every_type_decodes_as_it_was() {
        round_trip(Arc::new(StringArray::from(vec![Some("a"), None, Some(""), Some("ü€")])));
        round_trip(Arc::new(LargeStringArray::from(vec![Some("long"), None])));
        round_trip(Arc::new(StringViewArray::from(vec![Some("a string longer than twelve"), None])));
        round_trip(Arc::new(Float64Array::from(vec![Some(-0.0), None, Some(f64::NAN), Some(1e300)])));
        round_trip(Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])));
        round_trip(Arc::new(TimestampMicrosecondArray::from(vec![Some(-1), None]).with_timezone("UTC")));
        let dictionary: DictionaryArray<Int32Type> = vec![Some("x"), None, Some("x")].into_iter().collect();
        round_trip(Arc::new(dictionary));
    }
}

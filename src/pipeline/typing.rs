//! Column typing (SPEC §5 "Column types"): the type of one leaf value, the
//! join of types within a run, and the conversion of a value to a column's
//! settled type.

use std::fmt;

use arrow::datatypes::{DataType, TimeUnit};
use serde::{Deserialize, Serialize};

use super::timestamp::{Micros, parse_rfc3339};

/// The type of a dynamic column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColumnType {
    Boolean,
    Int64,
    Float64,
    Timestamp,
    Utf8,
}

impl ColumnType {
    /// The join within the run that creates a column: equal types stay,
    /// Int64 with Float64 is Float64, any other mix is Utf8.
    pub fn join(self, other: ColumnType) -> ColumnType {
        use ColumnType::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Int64, Float64) | (Float64, Int64) => Float64,
            _ => Utf8,
        }
    }

    pub fn data_type(self) -> DataType {
        match self {
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Timestamp => timestamp_type(),
            ColumnType::Utf8 => DataType::Utf8,
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// `Timestamp(Microsecond, "UTC")`, the type of every timestamp column.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// What kind of JSON a leaf value was. A leaf is kept as this kind plus its
/// text in Utf8 form (SPEC: numbers keep their JSON text, booleans are
/// `true`/`false`, strings and timestamps their string, arrays compact JSON),
/// so that it can be converted once the column's type is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Bool,
    Int,
    Float,
    Timestamp,
    String,
    Array,
}

impl Kind {
    pub fn column_type(self) -> ColumnType {
        match self {
            Kind::Bool => ColumnType::Boolean,
            Kind::Int => ColumnType::Int64,
            Kind::Float => ColumnType::Float64,
            Kind::Timestamp => ColumnType::Timestamp,
            Kind::String | Kind::Array => ColumnType::Utf8,
        }
    }

    /// The kind of a JSON number: an integer that fits i64 is Int, any other
    /// number (fraction, exponent, out of range) is Float.
    pub fn of_number(text: &str) -> Kind {
        if text.parse::<i64>().is_ok() { Kind::Int } else { Kind::Float }
    }

    /// The kind of a JSON string: an RFC 3339 date-time is a Timestamp.
    pub fn of_string(s: &str) -> Kind {
        if parse_rfc3339(s).is_some() { Kind::Timestamp } else { Kind::String }
    }
}

/// A value converted to a column's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Converted<'a> {
    Boolean(bool),
    Int64(i64),
    Float64(f64),
    Timestamp(Micros),
    Utf8(&'a str),
}

/// Converts a leaf of `kind` with Utf8 form `text` to `target`, when that
/// loses nothing (Int64→Float64; anything→Utf8). `None` is a type mismatch.
pub fn convert(kind: Kind, text: &str, target: ColumnType) -> Option<Converted<'_>> {
    match (target, kind) {
        (ColumnType::Utf8, _) => Some(Converted::Utf8(text)),
        (ColumnType::Boolean, Kind::Bool) => Some(Converted::Boolean(text == "true")),
        (ColumnType::Int64, Kind::Int) => text.parse().ok().map(Converted::Int64),
        (ColumnType::Float64, Kind::Int | Kind::Float) => text.parse().ok().map(Converted::Float64),
        (ColumnType::Timestamp, Kind::Timestamp) => parse_rfc3339(text).map(Converted::Timestamp),
        _ => None,
    }
}

/// The value as JSON text, for the `discards` table.
pub fn json_text(kind: Kind, text: &str) -> String {
    match kind {
        Kind::String | Kind::Timestamp => serde_json::to_string(text).unwrap_or_default(),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::ColumnType::*;
    use super::*;

    #[test]
    fn join_rules() {
        for t in [Boolean, Int64, Float64, Timestamp, Utf8] {
            assert_eq!(t.join(t), t);
            assert_eq!(t.join(Utf8), Utf8);
        }
        assert_eq!(Int64.join(Float64), Float64);
        assert_eq!(Float64.join(Int64), Float64);
        assert_eq!(Boolean.join(Int64), Utf8);
        assert_eq!(Timestamp.join(Int64), Utf8);
        assert_eq!(Timestamp.join(Float64), Utf8);
        assert_eq!(Boolean.join(Float64), Utf8);
    }

    #[test]
    fn kinds() {
        assert_eq!(Kind::of_number("42"), Kind::Int);
        assert_eq!(Kind::of_number("-9223372036854775808"), Kind::Int);
        assert_eq!(Kind::of_number("9223372036854775808"), Kind::Float);
        assert_eq!(Kind::of_number("1.0"), Kind::Float);
        assert_eq!(Kind::of_number("1e3"), Kind::Float);
        assert_eq!(Kind::of_string("2024-01-01T00:00:00Z"), Kind::Timestamp);
        assert_eq!(Kind::of_string("2024-01-01"), Kind::String);
    }

    #[test]
    fn lossless_conversions_only() {
        assert_eq!(convert(Kind::Int, "3", Float64), Some(Converted::Float64(3.0)));
        assert_eq!(convert(Kind::Float, "1.50", Utf8), Some(Converted::Utf8("1.50")));
        assert_eq!(convert(Kind::Bool, "true", Utf8), Some(Converted::Utf8("true")));
        let ts = "2024-01-01T01:00:00+01:00";
        assert_eq!(convert(Kind::Timestamp, ts, Utf8), Some(Converted::Utf8(ts)));
        assert_eq!(convert(Kind::Float, "1.5", Int64), None);
        assert_eq!(convert(Kind::String, "12", Int64), None);
        assert_eq!(convert(Kind::Int, "1", Boolean), None);
        assert_eq!(convert(Kind::String, "x", Timestamp), None);
        assert_eq!(convert(Kind::Int, "0", Timestamp), None);
        assert_eq!(convert(Kind::Array, "[1]", Float64), None);
    }

    #[test]
    fn discarded_values_are_json() {
        assert_eq!(json_text(Kind::String, "a\"b"), r#""a\"b""#);
        assert_eq!(json_text(Kind::Float, "1.50"), "1.50");
        assert_eq!(json_text(Kind::Array, "[1,2]"), "[1,2]");
    }
}

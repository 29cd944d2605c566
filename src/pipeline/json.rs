//! Borrowed JSON: an object's members as raw, unparsed text, so that numbers
//! keep their exact JSON text and nested values are only parsed when needed.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::small_map::SmallMap;

/// A JSON object's members in input order. A key given twice keeps its first
/// position and its last value, as JSON parsers in Python and JavaScript do.
#[derive(Debug, Default)]
pub struct RawObject<'a>(pub SmallMap<Cow<'a, str>, &'a RawValue>);

/// Keys come from the input, but a collision only costs time within one
/// line: a fast hash beats SipHash's protection here.
pub type FastHash = foldhash::fast::RandomState;

/// Why a text is not a JSON object.
#[derive(Debug, PartialEq, Eq)]
pub enum NotObject {
    InvalidJson(String),
    NotAnObject,
}

/// Deeper JSON is rejected as invalid: flattening recurses once per level.
pub const MAX_DEPTH: usize = 128;

impl<'a> RawObject<'a> {
    /// Parses a whole line. Beyond [`RawObject::parse`], it refuses nesting
    /// deeper than [`MAX_DEPTH`] and strings that cannot be decoded (lone
    /// UTF-16 surrogates), which the raw parse lets through.
    pub fn parse_line(text: &'a str) -> Result<Self, NotObject> {
        if text.contains("\\u") && has_lone_surrogate(text) {
            // Checked first: it is invalid JSON text, not a non-object.
            if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
                return Err(NotObject::InvalidJson("a \\u escape is a lone UTF-16 surrogate".into()));
            }
        }
        let object = Self::parse(text)?;
        // Only a line with more brackets than the limit can nest that deep.
        let brackets = memchr::memchr2_iter(b'{', b'[', text.as_bytes()).count();
        if brackets > MAX_DEPTH && depth(text) > MAX_DEPTH {
            return Err(NotObject::InvalidJson(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(object)
    }

    pub fn parse(text: &'a str) -> Result<Self, NotObject> {
        serde_json::from_str::<RawObject<'a>>(text).map_err(|e| {
            if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
                NotObject::NotAnObject
            } else {
                NotObject::InvalidJson(e.to_string())
            }
        })
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.get(key).copied()
    }

    /// The member `key` unless it is absent or `null`.
    pub fn present(&self, key: &str) -> Option<&'a RawValue> {
        self.get(key).filter(|v| v.get() != "null")
    }

    /// Compact JSON text of the object, keys in order, values as given
    /// without insignificant white space.
    pub fn to_compact(&self) -> String {
        let members: usize = self.0.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum();
        let mut out = String::with_capacity(members + 2);
        out.push('{');
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(&mut out, key);
            out.push(':');
            minify_into(value.get(), &mut out);
        }
        out.push('}');
        out
    }
}

/// A parsed JSON value whose children stay raw.
#[derive(Debug)]
pub enum Raw<'a> {
    Null,
    Bool(bool),
    Number(&'a str),
    String(Cow<'a, str>),
    /// Compact JSON text of the array.
    Array(String),
    Object(RawObject<'a>),
}

impl<'a> Raw<'a> {
    /// Classifies an already validated raw value by its first byte.
    pub fn of(value: &'a RawValue) -> Raw<'a> {
        let text = value.get();
        match text.as_bytes().first() {
            Some(b'n') => Raw::Null,
            Some(b't') => Raw::Bool(true),
            Some(b'f') => Raw::Bool(false),
            Some(b'"') => Raw::String(unquote(text)),
            Some(b'[') => Raw::Array(minify(text)),
            Some(b'{') => Raw::Object(RawObject::parse(text).unwrap_or_default()),
            _ => Raw::Number(text),
        }
    }
}

/// The content of a validated JSON string. Without a backslash there is
/// nothing to decode (valid JSON strings hold no raw control characters), so
/// it borrows the text between the quotes.
fn unquote(text: &str) -> Cow<'_, str> {
    let inner = &text[1..text.len() - 1];
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        return Cow::Borrowed(inner);
    }
    serde_json::from_str::<CowStr>(text).map(|s| s.0).unwrap_or_default()
}

/// The deepest nesting of arrays and objects in valid JSON text.
fn depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &c in text.as_bytes() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Does valid JSON text hold a `\\uD800`–`\\uDFFF` escape that is not half
/// of a surrogate pair? Such a string has no UTF-8 form.
fn has_lone_surrogate(text: &str) -> bool {
    let b = text.as_bytes();
    let unit = |i: usize| -> Option<u16> {
        let hex = b.get(i..i + 4)?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let mut i = 0;
    let mut pending_high = false;
    while i < b.len() {
        if b[i] != b'\\' {
            if pending_high {
                return true;
            }
            i += 1;
            continue;
        }
        if b.get(i + 1) != Some(&b'u') {
            if pending_high {
                return true;
            }
            i += 2;
            continue;
        }
        let u = unit(i + 2).unwrap_or(0);
        match u {
            0xD800..=0xDBFF if pending_high => return true,
            0xD800..=0xDBFF => pending_high = true,
            0xDC00..=0xDFFF if !pending_high => return true,
            0xDC00..=0xDFFF => pending_high = false,
            _ if pending_high => return true,
            _ => {}
        }
        i += 6;
    }
    pending_high
}

/// Is this raw number an integer (no fraction, no exponent)?
pub fn is_integer_token(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
}

pub fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    // Writing a str to a String cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// Removes white space outside strings from valid JSON text.
pub fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    minify_into(text, &mut out);
    out
}

fn minify_into(text: &str, out: &mut String) {
    let bytes = text.as_bytes();
    // Runs between white space are copied whole; strings are skipped to
    // their closing quote. All the bytes looked at are ASCII, so every cut
    // is on a character boundary.
    let (mut i, mut run) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while let Some(j) = bytes.get(i..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) {
                    i += j;
                    if bytes[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
                i += 1;
            }
            b' ' | b'\t' | b'\n' | b'\r' => {
                out.push_str(&text[run..i]);
                i += 1;
                run = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[run..]);
}

/// A string that borrows from the input when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = SmallMap::with_capacity(16);
                while let Some(CowStr(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.insert(key, value);
                }
                Ok(RawObject(members))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_order_and_last_duplicate() {
        let o = RawObject::parse(r#" {"b": 1, "a": [1, 2], "b": 3.50 } "#).unwrap();
        let keys: Vec<_> = o.0.keys().map(|k| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(o.to_compact(), r#"{"b":3.50,"a":[1,2]}"#);
    }

    #[test]
    fn not_objects() {
        assert_eq!(RawObject::parse("[1]").unwrap_err(), NotObject::NotAnObject);
        assert_eq!(RawObject::parse("\"x\"").unwrap_err(), NotObject::NotAnObject);
        assert!(matches!(RawObject::parse("{").unwrap_err(), NotObject::InvalidJson(_)));
        assert!(matches!(RawObject::parse("{} x").unwrap_err(), NotObject::InvalidJson(_)));
    }

    #[test]
    fn escaped_keys_and_strings() {
        let o = RawObject::parse(r#"{"a\u0062":"x\ny","k":" s p "}"#).unwrap();
        assert!(o.get("ab").is_some());
        match Raw::of(o.get("ab").unwrap()) {
            Raw::String(s) => assert_eq!(s, "x\ny"),
            other => panic!("{other:?}"),
        }
        assert_eq!(o.to_compact(), r#"{"ab":"x\ny","k":" s p "}"#);
    }

    #[test]
    fn minify_leaves_strings_alone() {
        assert_eq!(minify(r#" "a \\" "#), r#""a \\""#);
        assert_eq!(minify("[ \"a b\\\" c\" , { \"k\" : 1 } ]"), "[\"a b\\\" c\",{\"k\":1}]");
    }

    #[test]
    fn lines_too_deep_or_with_lone_surrogates_are_invalid() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(matches!(RawObject::parse_line(&deep), Err(NotObject::InvalidJson(_))));
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(RawObject::parse_line(&ok).is_ok());
        assert!(RawObject::parse_line(r#"{"s":"[[[[{{{{"}"#).is_ok());
        assert!(matches!(RawObject::parse_line(r#"{"a":"x\ud800"}"#), Err(NotObject::InvalidJson(_))));
        assert!(matches!(RawObject::parse_line(r#"{"\udc00":1}"#), Err(NotObject::InvalidJson(_))));
        assert!(RawObject::parse_line(r#"{"a":"\ud83d\ude00 \u00e9"}"#).is_ok());
        assert!(RawObject::parse_line(r#"{"a":"\\ud800"}"#).is_ok(), "an escaped backslash");
        assert!(matches!(RawObject::parse_line(r#"{"a":"\ud83d\u0041"}"#), Err(NotObject::InvalidJson(_))));
    }

    #[test]
    fn integer_tokens() {
        assert!(is_integer_token("42"));
        assert!(is_integer_token("-7"));
        assert!(is_integer_token("123456789012345678901234567890"));
        assert!(!is_integer_token("1.0"));
        assert!(!is_integer_token("1e3"));
        assert!(!is_integer_token("-"));
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[ a-z\\\\\"\\t\\n\\u{e9}]{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z ]{0,3}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Minifying pretty-printed JSON gives the compact form.
        #[test]
        fn minify_undoes_pretty_printing(value in json_value()) {
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            proptest::prop_assert_eq!(minify(&pretty), serde_json::to_string(&value).unwrap());
        }
    }
}

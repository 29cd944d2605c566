//! Borrowed JSON: an object's members as raw, unparsed text, so that numbers
//! keep their exact JSON text and nested values are only parsed when needed.
//! A line is validated once, by the scan of `json_scan` (or serde_json, for
//! what the scan gives up on). The scan also splits the objects nested in
//! `context` and `traits` ([`Nested`]); the others, and those of a line
//! serde_json parsed, are split by [`RawObject::split`], which relies on the
//! line being valid and only finds where members start and end.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::small_map::SmallMap;

/// A JSON object's members in input order, each value as its JSON text. A
/// key given twice keeps its first position and its last value, as JSON
/// parsers in Python and JavaScript do.
#[derive(Debug, Default)]
pub struct RawObject<'a>(pub SmallMap<Cow<'a, str>, &'a str>);

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
        // Checked first: it is invalid JSON text, not a non-object.
        if has_lone_surrogate(text) && serde_json::from_str::<IgnoredAny>(text).is_ok() {
            return Err(NotObject::InvalidJson("a \\u escape is a lone UTF-16 surrogate".into()));
        }
        let object = Self::parse(text)?;
        check_depth(text)?;
        Ok(object)
    }

    pub fn parse(text: &'a str) -> Result<Self, NotObject> {
        serde_json::from_str::<RawObject<'a>>(text).map_err(|e| {
            if serde_json::from_str::<IgnoredAny>(text).is_ok() {
                NotObject::NotAnObject
            } else {
                NotObject::InvalidJson(e.to_string())
            }
        })
    }

    /// The members of `text`, a JSON object already validated as part of its
    /// line: only where each key and value starts and ends is left to find.
    /// Parsing the nested objects of `context` and `traits` a second time
    /// with serde_json was ~5% of a load. `plain`: `text` is of a
    /// [`Line::plain`] line.
    pub fn split(text: &'a str, plain: bool) -> Self {
        let b = text.as_bytes();
        let mut members = SmallMap::with_capacity(8);
        let mut i = skip_white(b, 0) + 1;
        loop {
            i = skip_white(b, i);
            if b.get(i) != Some(&b'"') {
                // `}`: the end, or an empty object.
                break;
            }
            let key_end = string_end(b, i);
            let key = unquote_plain(&text[i..key_end], plain);
            // White space, then `:`, then white space.
            let start = skip_white(b, skip_white(b, key_end) + 1);
            let end = value_end(b, start);
            members.insert(key, &text[start..end]);
            // White space, then `,` or `}`.
            i = skip_white(b, end) + 1;
        }
        RawObject(members)
    }

    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.0.get(key).copied()
    }

    /// The member `key` unless it is absent or `null`.
    pub fn present(&self, key: &str) -> Option<&'a str> {
        self.get(key).filter(|v| *v != "null")
    }

    /// Compact JSON text of the object, keys in order, values as given
    /// without insignificant white space.
    pub fn to_compact(&self) -> String {
        let mut out = String::new();
        self.write_compact(&mut out, false, |_, _| {});
        out
    }

    /// Appends [`RawObject::to_compact`]'s text to `out`, and calls
    /// `copied(i, at)` for each member `i` whose value went in unchanged
    /// (it had no white space to drop), starting at byte `at` of `out`.
    /// The values of a [`Line::plain`] line are compact already.
    pub fn write_compact(&self, out: &mut String, plain: bool, mut copied: impl FnMut(usize, usize)) {
        let members: usize = self.0.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        out.reserve(members + 2);
        out.push('{');
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(out, key);
            out.push(':');
            let at = out.len();
            if plain {
                out.push_str(value);
            } else {
                minify_into(value, out);
            }
            if out.len() - at == value.len() {
                copied(i, at);
            }
        }
        out.push('}');
    }
}

/// A parsed JSON value whose children stay raw.
#[derive(Debug)]
pub enum Raw<'a> {
    Null,
    /// `true` or `false`: the text says which.
    Bool,
    Number(&'a str),
    String(Cow<'a, str>),
    /// The array's JSON text as given (see [`minify_into`] for its compact
    /// form, which only a value that is not already compact needs).
    Array(&'a str),
    /// The object's JSON text as given, for [`RawObject::split`] or
    /// [`Nested::split`].
    Object(&'a str),
}

impl<'a> Raw<'a> {
    /// Classifies an already validated value's JSON text by its first byte.
    pub fn of(text: &'a str) -> Raw<'a> {
        Self::read(text, false)
    }

    /// [`Raw::of`], for a value of a [`Line::plain`] line when `plain`.
    pub fn read(text: &'a str, plain: bool) -> Raw<'a> {
        match text.as_bytes().first() {
            Some(b'n') => Raw::Null,
            Some(b't' | b'f') => Raw::Bool,
            Some(b'"') => Raw::String(unquote_plain(text, plain)),
            Some(b'[') => Raw::Array(text),
            Some(b'{') => Raw::Object(text),
            _ => Raw::Number(text),
        }
    }
}

fn skip_white(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Just past the closing quote of the valid JSON string opening at `i`
/// (and never past the end of `b`, whatever it holds).
fn string_end(b: &[u8], mut i: usize) -> usize {
    i += 1;
    loop {
        i = special(b, i);
        match b.get(i) {
            None => return b.len(),
            Some(b'"') => return i + 1,
            // An escape: skip the backslash and the character it escapes.
            Some(b'\\') => i += 2,
            // A raw control character, in text that is not valid JSON.
            Some(_) => i += 1,
        }
    }
}

/// Where the first `"`, `\\` or control character is, from `i` on (the
/// length of `b` if none is): sixteen bytes at a time with SSE2, which every
/// x86-64 has. JSON strings are mostly short, too short for `memchr`'s setup
/// to pay off. The parse bench took 11% less time than with eight bytes at a
/// time; the load, where a string's end costs more than its bytes, as long.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(super) fn special(b: &[u8], i: usize) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut i = i.min(b.len());
    while let Some(chunk) = b.get(i..i + 16) {
        // SAFETY: SSE2 is part of every x86-64; `chunk` is 16 readable bytes,
        // and an unaligned load reads exactly those.
        let mask = unsafe {
            let x = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            // A byte is a control character when it is its minimum with 0x1f.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
            let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
        };
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    special_in_words(b, i)
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) fn special(b: &[u8], i: usize) -> usize {
    special_in_words(b, i)
}

/// [`special`] eight bytes at a time, as serde_json's own scan does.
pub(super) fn special_in_words(b: &[u8], i: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let mut i = i.min(b.len());
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let control = w.wrapping_sub(ONES * 0x20) & !w;
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let found =
            (control | (quote.wrapping_sub(ONES) & !quote) | (backslash.wrapping_sub(ONES) & !backslash))
                & HIGH;
        if found != 0 {
            // The lowest flag is exact; those above it may not be.
            return i + found.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    i + b[i..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(b.len() - i)
}

/// Just past the valid JSON value starting at `i`.
fn value_end(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{' | b'[') => {
            let (mut depth, mut i) = (0usize, i);
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            b.len()
        }
        // A number, `true`, `false` or `null`.
        _ => {
            let rest = b.get(i..).unwrap_or_default();
            i + rest
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(rest.len())
        }
    }
}

/// Valid JSON text nested deeper than [`MAX_DEPTH`] is refused.
fn check_depth(text: &str) -> Result<(), NotObject> {
    // Only a line with more brackets than the limit can nest that deep.
    let brackets = memchr::memchr2_iter(b'{', b'[', text.as_bytes()).count();
    if brackets > MAX_DEPTH && depth(text) > MAX_DEPTH {
        return Err(NotObject::InvalidJson(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(())
}

/// The content of a validated JSON string. Without a backslash there is
/// nothing to decode (valid JSON strings hold no raw control characters), so
/// it borrows the text between the quotes.
pub(super) fn unquote(text: &str) -> Cow<'_, str> {
    let inner = &text[1..text.len() - 1];
    // Nothing but an escape's backslash is special in a valid string.
    if special(inner.as_bytes(), 0) == inner.len() {
        return Cow::Borrowed(inner);
    }
    serde_json::from_str::<CowStr>(text).map(|s| s.0).unwrap_or_default()
}

/// [`unquote`], which a string of a [`Line::plain`] line needs not look
/// through for an escape.
fn unquote_plain(text: &str, plain: bool) -> Cow<'_, str> {
    match plain {
        true => Cow::Borrowed(&text[1..text.len() - 1]),
        false => unquote(text),
    }
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
    if !text.contains("\\u") {
        return false;
    }
    let b = text.as_bytes();
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
        let u = utf16_unit(b, i + 2).unwrap_or(0);
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

/// The UTF-16 unit of the four hex digits at `i` of a `\\u` escape.
pub(super) fn utf16_unit(b: &[u8], i: usize) -> Option<u32> {
    b.get(i..i + 4)?.iter().try_fold(0, |unit, &c| Some(unit << 4 | char::from(c).to_digit(16)?))
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

pub fn minify_into(text: &str, out: &mut String) {
    let bytes = text.as_bytes();
    // Runs between white space are copied whole; strings are skipped to
    // their closing quote. All the bytes looked at are ASCII, so every cut
    // is on a character boundary.
    let (mut i, mut run) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i),
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
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                members(map)
            }
        }
        d.deserialize_map(V)
    }
}

fn members<'de, A: MapAccess<'de>>(mut map: A) -> Result<RawObject<'de>, A::Error> {
    let mut members = SmallMap::with_capacity(16);
    while let Some(CowStr(key)) = map.next_key()? {
        let value: &'de RawValue = map.next_value()?;
        members.insert(key, value.get());
    }
    Ok(RawObject(members))
}

/// A line's top-level object. `context` and `traits`, which hold most of an
/// identify's bytes, are parsed as objects in the line's own pass rather
/// than skipped as raw text and parsed again.
#[derive(Debug, Default)]
pub struct Line<'a> {
    /// The other members.
    pub members: RawObject<'a>,
    pub context: Member<'a>,
    pub traits: Member<'a>,
    /// No string of the line holds an escape, and no white space separates
    /// its tokens: a string's text between its quotes is its value, and every
    /// value's text is compact. Only the scan says so (`json_scan`).
    pub plain: bool,
    /// The objects nested in `context` and `traits`, as the scan split them.
    pub nested: Nested<'a>,
}

/// Objects of a line already split into members, found by where their text
/// is. The line's scan reads every member of the objects nested in
/// `context` and `traits` anyway: splitting them again when they are
/// flattened was 8% of the parse bench.
#[derive(Debug, Default)]
pub struct Nested<'a>(Vec<(usize, RawObject<'a>)>);

impl<'a> Nested<'a> {
    /// Keeps `object`, split from `text`.
    pub fn push(&mut self, text: &'a str, object: RawObject<'a>) {
        self.0.push((text.as_ptr() as usize, object));
    }

    /// The members of `text`, an object's text of the same line: kept ones,
    /// or split now. A line has a handful of nested objects: a linear search
    /// by address costs less than a hash.
    pub fn split<'n>(&'n self, text: &'a str, plain: bool) -> SplitObject<'n, 'a> {
        match self.position(text) {
            Some(i) => SplitObject::Kept(&self.0[i].1),
            None => SplitObject::Split(RawObject::split(text, plain)),
        }
    }

    /// [`Nested::split`], for a caller that changes the members: a kept
    /// object is taken out.
    pub fn take(&mut self, text: &'a str, plain: bool) -> RawObject<'a> {
        match self.position(text) {
            Some(i) => self.0.swap_remove(i).1,
            None => RawObject::split(text, plain),
        }
    }

    fn position(&self, text: &str) -> Option<usize> {
        self.0.iter().position(|(at, _)| *at == text.as_ptr() as usize)
    }
}

/// An object's members, from [`Nested::split`].
pub enum SplitObject<'n, 'a> {
    Kept(&'n RawObject<'a>),
    Split(RawObject<'a>),
}

impl<'a> std::ops::Deref for SplitObject<'_, 'a> {
    type Target = RawObject<'a>;

    fn deref(&self) -> &RawObject<'a> {
        match self {
            SplitObject::Kept(object) => object,
            SplitObject::Split(object) => object,
        }
    }
}

/// A member parsed with its line.
#[derive(Debug, Default)]
pub enum Member<'a> {
    /// Absent or `null`.
    #[default]
    Absent,
    Object(RawObject<'a>),
    /// Any other value.
    Other,
}

impl<'a> Member<'a> {
    pub fn of(value: Option<&'a str>) -> Self {
        Self::of_line(value, &mut Nested::default(), false)
    }

    /// [`Member::of`] for a value of a line whose scan kept its nested
    /// objects split (`context.traits`, say): a kept object is not split
    /// again. `plain`: the line is [`Line::plain`].
    pub fn of_line(value: Option<&'a str>, nested: &mut Nested<'a>, plain: bool) -> Self {
        match value.map(Raw::of) {
            None => Member::Absent,
            Some(Raw::Object(text)) => Member::Object(nested.take(text, plain)),
            Some(_) => Member::Other,
        }
    }
}

impl<'a> Line<'a> {
    /// [`RawObject::parse_line`] for a whole line.
    pub fn parse_line(text: &'a str) -> Result<Self, NotObject> {
        match super::json_scan::scan_line(text) {
            Some(line) => Ok(line),
            None => Self::parse_serde(text),
        }
    }

    /// What the scan does not take, serde_json parses and decides.
    fn parse_serde(text: &'a str) -> Result<Self, NotObject> {
        // A line with a lone surrogate or nested too deep is decided below.
        if !has_lone_surrogate(text)
            && let Ok(line) = serde_json::from_str::<Line<'a>>(text)
            && check_depth(text).is_ok()
        {
            return Ok(line);
        }
        // The one-pass parse reads numbers, and so refuses some that are
        // valid JSON (`1e400`): the raw parse decides every line it does
        // not accept, with its reason.
        RawObject::parse_line(text).map(Line::of_raw)
    }

    /// The line as the raw parse gives it: `context` and `traits` stay among
    /// the members too.
    fn of_raw(members: RawObject<'a>) -> Self {
        let context = Member::of(members.present("context"));
        let traits = Member::of(members.present("traits"));
        Line { members, context, traits, plain: false, nested: Nested::default() }
    }
}

impl<'de> Deserialize<'de> for Line<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Line<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut line = Line { members: RawObject(SmallMap::with_capacity(16)), ..Line::default() };
                while let Some(CowStr(key)) = map.next_key()? {
                    match key.as_ref() {
                        "context" => line.context = map.next_value()?,
                        "traits" => line.traits = map.next_value()?,
                        _ => {
                            let value: &'de RawValue = map.next_value()?;
                            line.members.0.insert(key, value.get());
                        }
                    }
                }
                Ok(line)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Member<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Member<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                members(map).map(Member::Object)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Member::Absent)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Member::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Member::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Member::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Member::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Member::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Member::Other)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn objects_keep_order_and_last_duplicate() {
        let o = RawObject::parse(r#" {"b": 1, "a": [1, 2], "b": 3.50 } "#).unwrap();
        let keys: Vec<_> = o.0.keys().map(|k| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(o.to_compact(), r#"{"b":3.50,"a":[1,2]}"#);
    }

    pub(crate) fn members<'a>(object: &RawObject<'a>) -> Vec<(String, &'a str)> {
        object.0.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn valid_objects_are_split_as_serde_json_splits_them() {
        for text in [
            "{}",
            " { } ",
            r#"{"a":1,"b":"x","c":null,"d":true,"e":false,"f":-1.5e3}"#,
            "{ \"a\" :\t[ 1, {\"b\": \"]}\\\"\" } ] ,\n\"c\" : { } }",
            r#"{"k\u0065y":"v\"}","k\\":{"n":{"m":[[]]}},"key":2}"#,
            r#"{"":"","é":"ü"}"#,
        ] {
            let serde = RawObject::parse(text).unwrap();
            assert_eq!(members(&RawObject::split(text, false)), members(&serde), "{text}");
        }
        let o = RawObject::split(r#"{"a":{"x":1},"b":2,"a":[3]}"#, false);
        assert_eq!(members(&o), [("a".to_owned(), "[3]"), ("b".to_owned(), "2")]);
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
    fn minify_stops_at_the_end_of_a_string_cut_short() {
        for text in ["\"", "\"a\\", "[\"a\\", " \"\\"] {
            assert_eq!(minify(text), text.trim_start(), "{text}");
        }
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

    pub(crate) fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
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

    /// A line as the raw parse alone sees it: context, traits and the other
    /// members, each in compact form.
    pub(crate) fn seen(line: &Line) -> [String; 3] {
        let member = |m: &Member| match m {
            Member::Absent => "absent".to_owned(),
            Member::Object(o) => o.to_compact(),
            Member::Other => "other".to_owned(),
        };
        let mut others = RawObject::default();
        for (k, v) in line.members.0.iter().filter(|(k, _)| !matches!(k.as_ref(), "context" | "traits")) {
            others.0.insert(k.clone(), *v);
        }
        [member(&line.context), member(&line.traits), others.to_compact()]
    }

    pub(crate) fn raw_parse(text: &str) -> Result<[String; 3], NotObject> {
        RawObject::parse_line(text).map(|members| seen(&Line::of_raw(members)))
    }

    #[test]
    fn the_one_pass_line_parse_agrees_with_the_raw_parse() {
        for text in [
            r#"{"type":"identify","context":{"ip":"1"},"traits":{"a":{"b":1}}}"#,
            r#"{"context":1e400,"traits":[1e400]}"#,
            r#"{"context":{"a":1},"context":null,"traits":"x","traits":{"t":2}}"#,
            r#"{"con\u0074ext":{"k":"v"},"traits":true}"#,
            r#"{"context":{"s":"\ud800"}}"#,
            r#"{"traits":"\ud800"}"#,
            r#"{"context":{}} x"#,
            "[1]",
        ] {
            let one_pass = Line::parse_line(text).map(|l| seen(&l));
            assert_eq!(one_pass, raw_parse(text), "{text}");
        }
    }

    proptest::proptest! {
        /// Whatever the members, the one-pass parse sees what the raw parse does.
        #[test]
        fn line_parse_matches_raw_parse(
            context in json_value(), traits in json_value(), other in json_value(), order in 0..3usize
        ) {
            let mut members = vec![("context", context), ("traits", traits), ("other", other)];
            members.rotate_left(order);
            let object: serde_json::Map<String, serde_json::Value> =
                members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let text = serde_json::to_string(&object).unwrap();
            let one_pass = Line::parse_line(&text).map(|l| seen(&l));
            proptest::prop_assert_eq!(one_pass, raw_parse(&text));
        }

        /// Any valid object, compact or pretty-printed, is split into the
        /// members serde_json finds.
        #[test]
        fn split_matches_serde_json(value in json_value()) {
            let object = serde_json::json!({ "o": value, "k": [value], "z": 1 });
            let compact = serde_json::to_string(&object).unwrap();
            for text in [compact, serde_json::to_string_pretty(&object).unwrap()] {
                let serde = RawObject::parse(&text).unwrap();
                proptest::prop_assert_eq!(members(&RawObject::split(&text, false)), members(&serde));
                // A nested object, split by `Raw::of`.
                let nested = serde.get("o").unwrap();
                if let Raw::Object(inner) = Raw::of(nested) {
                    let inner = RawObject::split(inner, false);
                    proptest::prop_assert_eq!(members(&inner), members(&RawObject::parse(nested).unwrap()));
                }
            }
        }

        /// Minifying pretty-printed JSON gives the compact form.
        #[test]
        fn minify_undoes_pretty_printing(value in json_value()) {
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            proptest::prop_assert_eq!(minify(&pretty), serde_json::to_string(&value).unwrap());
        }
    }
}

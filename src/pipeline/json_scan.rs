//! A line's usual one pass: a scan that checks JSON's grammar while it
//! splits the line's object, and its `context` and `traits`, into members.
//! serde_json did this pass before, at ~11% of a load, most of it in its
//! deserializer's visits rather than in reading bytes.
//!
//! The scan accepts a subset of what serde_json accepts, and splits it as
//! serde_json does (pinned by property tests). It gives up on a line that is
//! not valid JSON, on one nested deeper than [`MAX_DEPTH`], and on one with a
//! `\u` escape of a surrogate that is not half of a pair: serde_json parses
//! those, and decides them with its reason.

use std::borrow::Cow;

use super::json::{Line, MAX_DEPTH, Member, Nested, RawObject, special, unquote, utf16_unit as unit};
use super::small_map::SmallMap;

/// The line split as [`Line::parse_line`] splits it, if the scan takes it.
pub fn scan_line(text: &str) -> Option<Line<'_>> {
    let mut scan =
        Scan { text, b: text.as_bytes(), i: 0, escaped: false, spaced: false, nested: Nested::default() };
    scan.white();
    scan.spaced = false;
    if scan.peek() != Some(b'{') {
        return None;
    }
    let mut line = Line { members: RawObject(SmallMap::with_capacity(16)), ..Line::default() };
    scan.object(1, |scan, key| {
        let start = scan.i;
        match key.as_ref() {
            "context" => line.context = scan.member(1)?,
            "traits" => line.traits = scan.member(1)?,
            _ => {
                scan.value(1)?;
                line.members.0.insert(key, &scan.text[start..scan.i]);
            }
        }
        Some(())
    })?;
    line.plain = !scan.escaped && !scan.spaced;
    line.nested = std::mem::take(&mut scan.nested);
    scan.white();
    (scan.i == scan.b.len()).then_some(line)
}

struct Scan<'a> {
    text: &'a str,
    b: &'a [u8],
    /// The next byte to read.
    i: usize,
    /// A string so far held an escape.
    escaped: bool,
    /// White space so far separated tokens.
    spaced: bool,
    /// The objects nested in `context` and `traits` so far.
    nested: Nested<'a>,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn white(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
            self.spaced = true;
        }
    }

    /// `context` or `traits` of an object at `depth`, as serde_json's one
    /// pass gave it: an object split into members, absent when `null`.
    fn member(&mut self, depth: usize) -> Option<Member<'a>> {
        match self.peek()? {
            b'{' => self.split_object(depth + 1, 16).map(Member::Object),
            b'n' => self.literal(b"null").map(|()| Member::Absent),
            _ => self.value(depth).map(|()| Member::Other),
        }
    }

    /// The object at `{`, nesting `depth` deep, split into members; the
    /// objects nested in it are kept split in [`Self::nested`], as they will
    /// be flattened.
    fn split_object(&mut self, depth: usize, capacity: usize) -> Option<RawObject<'a>> {
        let mut members = SmallMap::with_capacity(capacity);
        self.object(depth, |scan, key| {
            let start = scan.i;
            match scan.peek()? {
                b'{' => {
                    let object = scan.split_object(depth + 1, 8)?;
                    scan.nested.push(&scan.text[start..scan.i], object);
                }
                _ => scan.value(depth)?,
            }
            members.insert(key, &scan.text[start..scan.i]);
            Some(())
        })?;
        Some(RawObject(members))
    }

    /// A value inside a container at `depth`.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(depth + 1, |scan, _| scan.value(depth + 1)),
            b'[' => self.array(depth + 1),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// The object at `{`, nesting `depth` deep; `member` reads each value,
    /// given its key.
    fn object(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<()> {
        let mut more = self.open(depth, b'}')?;
        while more {
            if self.peek() != Some(b'"') {
                return None;
            }
            let start = self.i;
            let key = match self.string()? {
                true => unquote(&self.text[start..self.i]),
                false => Cow::Borrowed(&self.text[start + 1..self.i - 1]),
            };
            self.white();
            if self.peek() != Some(b':') {
                return None;
            }
            self.i += 1;
            self.white();
            member(self, key)?;
            more = self.next(b'}')?;
        }
        Some(())
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        let mut more = self.open(depth, b']')?;
        while more {
            self.value(depth)?;
            more = self.next(b']')?;
        }
        Some(())
    }

    /// Past the opening bracket of a container nesting `depth` deep: does
    /// an element follow, or `close` at once?
    fn open(&mut self, depth: usize, close: u8) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.i += 1;
        self.white();
        let empty = self.peek() == Some(close);
        self.i += usize::from(empty);
        Some(!empty)
    }

    /// Past an element: does another follow its `,`, or `close` end them?
    fn next(&mut self, close: u8) -> Option<bool> {
        self.white();
        match self.peek()? {
            b',' => {
                self.i += 1;
                self.white();
                Some(true)
            }
            c if c == close => {
                self.i += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// The string at `"`; whether it holds an escape.
    fn string(&mut self) -> Option<bool> {
        let b = self.b;
        let (mut i, mut escaped) = (self.i + 1, false);
        loop {
            i = special(b, i);
            match b.get(i)? {
                b'"' => {
                    self.i = i + 1;
                    return Some(escaped);
                }
                b'\\' => {}
                // A raw control character.
                _ => return None,
            }
            escaped = true;
            self.escaped = true;
            match b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                // A surrogate only as the first half of a pair (an emoji,
                // say); serde_json decides a lone one.
                b'u' => match unit(b, i + 2)? {
                    0xD800..=0xDBFF if b.get(i + 6..i + 8) == Some(b"\\u") => {
                        if !(0xDC00..=0xDFFF).contains(&unit(b, i + 8)?) {
                            return None;
                        }
                        i += 12;
                    }
                    0xD800..=0xDFFF => return None,
                    _ => i += 6,
                },
                _ => return None,
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.b[self.i..].starts_with(word).then(|| self.i += word.len())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let b = self.b;
        let digits = |mut i: usize| {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let mut i = self.i + usize::from(b.get(self.i) == Some(&b'-'));
        match b.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => i = digits(i + 1),
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            let end = digits(i + 1);
            if end == i + 1 {
                return None;
            }
            i = end;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let end = digits(i);
            if end == i {
                return None;
            }
            i = end;
        }
        self.i = i;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::flatten::flatten_event;
    use super::super::json::tests::{json_value, members, raw_parse, seen};
    use super::super::json::{NotObject, SplitObject, special, special_in_words};
    use super::*;

    /// What the scan makes of `text`, which must be what the raw parse makes
    /// of it.
    fn scanned(text: &str) -> Option<[String; 3]> {
        let line = scan_line(text)?;
        assert_eq!(Ok(seen(&line)), raw_parse(text), "{text}");
        Some(seen(&line))
    }

    #[test]
    fn nested_objects_are_split_once_as_split_would() {
        let text = r#"{"context":{"page":{"url":"u","a":{"b":1},"url":"v"},"n":[{"x":1}]},"traits":{"a\u0062":{"k":1,"k":{"z":null}}}}"#;
        let line = scan_line(text).unwrap();
        let object = |o: &str| &text[text.find(o).unwrap()..][..o.len()];
        for kept in [
            r#"{"url":"u","a":{"b":1},"url":"v"}"#,
            r#"{"b":1}"#,
            r#"{"k":1,"k":{"z":null}}"#,
            r#"{"z":null}"#,
        ] {
            let split = line.nested.split(object(kept), false);
            assert!(matches!(split, SplitObject::Kept(_)), "{kept}");
            assert_eq!(members(&split), members(&RawObject::split(object(kept), false)), "{kept}");
        }
        // Objects in arrays are not flattened, so not kept.
        assert!(matches!(line.nested.split(object(r#"{"x":1}"#), false), SplitObject::Split(_)));
        let (Member::Object(context), Member::Object(traits)) = (&line.context, &line.traits) else {
            panic!()
        };
        assert_eq!(
            flatten_event(Some(context), traits, line.plain, &line.nested),
            flatten_event(Some(context), traits, false, &Nested::default())
        );
    }

    #[test]
    fn context_traits_are_taken_from_the_kept_objects() {
        let text = r#"{"context":{"traits":{"a":1,"b":{"c":2},"a":3}},"traits":{"d":4}}"#;
        let mut line = scan_line(text).unwrap();
        let Member::Object(context) = &line.context else { panic!() };
        let value = context.get("traits");
        let (Member::Object(taken), Member::Object(split)) =
            (Member::of_line(value, &mut line.nested, line.plain), Member::of(value))
        else {
            panic!()
        };
        assert_eq!(members(&taken), members(&split));
        assert!(matches!(line.nested.split(value.unwrap(), false), SplitObject::Split(_)), "taken out");
        assert!(matches!(line.nested.split(r#"{"c":2}"#, false), SplitObject::Split(_)), "not of the line");
        let inner = &text[text.find(r#"{"c":2}"#).unwrap()..][..7];
        assert!(matches!(line.nested.split(inner, false), SplitObject::Kept(_)), "still kept");
    }

    #[test]
    fn plain_lines() {
        assert!(
            scan_line(r#" {"a":{"b":[1,"é"]},"c":"d"} "#).unwrap().plain,
            "white space around the object"
        );
        for text in [r#"{"a": 1}"#, r#"{"a":[1, 2]}"#, r#"{"a":"\u00e9"}"#, r#"{"a\/":1}"#, "{\"a\":{}\n}"] {
            assert!(!scan_line(text).unwrap().plain, "{text}");
        }
    }

    #[test]
    fn takes_valid_lines_and_splits_them_as_serde_json_does() {
        for text in [
            "{}",
            " {\t}\r\n",
            r#" {"a" : [1, -2.5e+3, 0, -0.0E-1, true, false, null, {"b": "\"\\\/\b\f\n\r\t\u00e9"}] } "#,
            r#"{"context":{"ip":"1","page":{"url":"x"}},"traits":{"a":{"b":1}},"type":"identify"}"#,
            r#"{"context":null,"traits":[1e400],"k\u0065y":"\u00e9\u20AC"}"#,
            r#"{"context":{"a":1},"context":"x","traits":{"t":2},"traits":null}"#,
            r#"{"":"","é":"ü","a\"b":{"":[[],{}]}}"#,
            r#"{"emoji":"\uD83D\uDE00 \ud83d\ude00","\uDBFF\uDFFF":1}"#,
        ] {
            assert!(scanned(text).is_some(), "{text}");
        }
    }

    #[test]
    fn gives_up_on_invalid_json_and_what_serde_json_decides() {
        let deep = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
        assert!(scanned(&deep(MAX_DEPTH)).is_some());
        for text in [
            "",
            " ",
            "[1]",
            "\"x\"",
            "{",
            "}",
            "{} x",
            "{}{}",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":[1 2]}"#,
            r#"{a:1}"#,
            r#"{'a':1}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":-}"#,
            r#"{"a":+1}"#,
            r#"{"a":1e}"#,
            r#"{"a":1e+}"#,
            r#"{"a":0x1}"#,
            r#"{"a":NaN}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":truex}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12G4"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"x}"#,
            "{\"a\":\"\t\"}",
            "{\"a\u{1}\":1}",
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\uDC00"}"#,
            r#"{"a":"\uD83D\u0041"}"#,
            r#"{"a":"\uD83D\uD83D"}"#,
            r#"{"a":"\uD83D"}"#,
            r#"{"a":"\uD83D\uDE0"}"#,
            r#"{"a":"\uDE00\uD83D"}"#,
            "{\"a\":1}\u{b}",
            "\u{feff}{}",
        ] {
            assert_eq!(scan_line(text).map(|l| seen(&l)), None, "{text:?}");
        }
        assert_eq!(scan_line(&deep(MAX_DEPTH + 1)).map(|l| seen(&l)), None);
        assert!(matches!(raw_parse(&deep(MAX_DEPTH + 1)), Err(NotObject::InvalidJson(_))));
    }

    fn mutation() -> impl Strategy<Value = (usize, Option<char>)> {
        let chars = prop::sample::select(
            "{}[]\",:\\ \t0123456789.eE+-tfnulrsau\u{1}\u{e9}".chars().collect::<Vec<_>>(),
        );
        (any::<usize>(), prop::option::of(chars))
    }

    proptest! {
        /// Any object serde_json writes, compact or pretty, the scan takes.
        #[test]
        fn takes_what_serde_json_writes(context in json_value(), traits in json_value(), other in json_value()) {
            let line = serde_json::json!({ "type": "identify", "context": context, "other": other, "traits": traits });
            for text in [serde_json::to_string(&line).unwrap(), serde_json::to_string_pretty(&line).unwrap()] {
                prop_assert!(scanned(&text).is_some(), "{}", text);
            }
        }

        /// A line is plain when it has no escape and no white space between
        /// tokens, and a plain line's leaves are those it would have if not;
        /// and the nested objects the scan split give the leaves that
        /// splitting them again gives.
        #[test]
        fn plain_lines_flatten_as_any_other(context in json_value(), traits in json_value()) {
            let line = serde_json::json!({ "context": { "c": context }, "traits": { "t": traits, "u": [traits] } });
            let (compact, pretty) = (serde_json::to_string(&line).unwrap(), serde_json::to_string_pretty(&line).unwrap());
            for (text, spaced) in [(compact, false), (pretty, true)] {
                let scanned = scan_line(&text).unwrap();
                prop_assert_eq!(scanned.plain, !spaced && !text.contains('\\'), "{}", text);
                let (Member::Object(context), Member::Object(traits)) = (&scanned.context, &scanned.traits) else {
                    panic!("{text}")
                };
                let flatten = |plain, nested| flatten_event(Some(context), traits, plain, nested);
                prop_assert_eq!(flatten(scanned.plain, &scanned.nested), flatten(false, &Nested::default()));
            }
        }

        /// A line with a few characters changed, dropped or added: whatever
        /// the scan takes, serde_json takes too, and splits the same way.
        #[test]
        fn takes_nothing_serde_json_refuses(
            value in json_value(), edits in prop::collection::vec(mutation(), 1..4), insert in any::<bool>()
        ) {
            let mut chars: Vec<char> = serde_json::json!({ "context": value, "traits": [value] }).to_string().chars().collect();
            for (at, c) in edits {
                let at = at % (chars.len() + 1);
                match c {
                    Some(c) if insert || at == chars.len() => chars.insert(at, c),
                    Some(c) => chars[at] = c,
                    None if at < chars.len() => drop(chars.remove(at)),
                    None => chars.truncate(at / 2),
                }
            }
            let text: String = chars.into_iter().collect();
            if scan_line(&text).is_some() {
                prop_assert!(serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok(), "{}", text);
            }
            scanned(&text);
        }

        /// `\\u` escapes of any UTF-16 units: the scan takes a line whose
        /// surrogates all pair up, and leaves the rest to serde_json.
        #[test]
        fn surrogates_in_pairs_only(units in prop::collection::vec(prop_oneof![0xD7F0u16..0xE010, any::<u16>()], 0..6)) {
            let escapes: String = units.iter().map(|u| format!("\\u{u:04x}")).collect();
            let text = format!(r#"{{"traits":{{"k":"{escapes}"}},"{escapes}":1}}"#);
            prop_assert_eq!(scanned(&text).is_some(), String::from_utf16(&units).is_ok(), "{}", text);
        }

        /// Sixteen (SSE2) or eight bytes at a time finds what a byte at a
        /// time finds.
        #[test]
        fn special_finds_the_first_quote_backslash_or_control(
            bytes in prop::collection::vec(prop::sample::select(vec![b'a', b'"', b'\\', 0x1f, 0x20, 0x7f, 0x80, 0xff, 0xa2, 0x00, 0x9f]), 0..70),
            from in 0..75usize,
        ) {
            let naive = (from.min(bytes.len())..bytes.len())
                .find(|&i| matches!(bytes[i], b'"' | b'\\') || bytes[i] < 0x20)
                .unwrap_or(bytes.len());
            prop_assert_eq!(special(&bytes, from), naive);
            prop_assert_eq!(special_in_words(&bytes, from), naive);
        }
    }
}

//! Flatten `context` and the merged traits into column leaves (SPEC §5):
//! naming, null dropping, collision precedence and the `name` fill.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use super::json::{Nested, Raw, RawObject, minify_into};
use super::naming::{LeafSource, Named, Names};
use super::typing::Kind;

/// One value bound for a dynamic column, whose name is its position's in
/// the event's [`Shape`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub kind: Kind,
    /// Where the value's Utf8 form (see [`Kind`]) is in [`Leaves::text`].
    pub span: Range<usize>,
}

/// An event's leaves. Their values' text shares one buffer: an event has
/// dozens of small values, and one allocation instead of one per value is
/// most of what parsing costs beyond the JSON scan. Their names are the
/// [`Shape`]'s, which consecutive events mostly share.
///
/// The text starts with the merged traits' compact JSON (the `traits`
/// column), and a trait's value that appears there unchanged (a string
/// without escapes, a number, a boolean, an array) is a span of it rather
/// than a copy: the staged record, which is about as large as the input,
/// would otherwise carry most of the traits twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leaves {
    pub text: String,
    /// The length of the traits JSON at the start of `text`.
    pub traits_len: usize,
    shape: Arc<Shape>,
    pub list: Vec<Leaf>,
}

/// The column names of an event's leaves, by position. The events of a
/// stream mostly have the leaves of the events before them in the same
/// order: those share one shape, made when the leaves change, instead of
/// each copying every name, and the thread that stages them binds a shape's
/// names to column ids once ([`super::columns::Columns::observe_leaves`]).
/// One reference is counted per event, not one per name: a count shared
/// with the staging thread pulls a cache line across cores.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Each leaf's name id on the parsing thread, [`INVALID`] set for a leaf
    /// that cannot be a column.
    key: Vec<u32>,
    names: String,
    /// Where each leaf's column name is in `names`, or `Err` with where the
    /// would-be name of a leaf that cannot be a column is (it goes to
    /// `discards` as `invalid_column_name`).
    columns: Vec<Result<Range<usize>, Range<usize>>>,
}

/// Marks a [`Shape::key`] entry whose name cannot be a column.
const INVALID: u32 = 1 << 31;

impl Shape {
    fn new(names: &Names, key: &[u32]) -> Self {
        let mut text = String::with_capacity(key.len() * 16);
        let columns = key
            .iter()
            .map(|&k| {
                let name = append(&mut text, names.name(k & !INVALID));
                if k & INVALID == 0 { Ok(name) } else { Err(name) }
            })
            .collect();
        Shape { key: key.to_vec(), names: text, columns }
    }

    /// The column name at `position`, or `Err` with its invalid would-be name.
    pub fn column(&self, position: usize) -> Result<&str, &str> {
        match &self.columns[position] {
            Ok(name) => Ok(&self.names[name.clone()]),
            Err(name) => Err(&self.names[name.clone()]),
        }
    }
}

impl Leaves {
    pub fn value(&self, leaf: &Leaf) -> &str {
        &self.text[leaf.span.clone()]
    }

    /// The merged traits as compact JSON.
    pub fn traits(&self) -> &str {
        &self.text[..self.traits_len]
    }

    /// The column name of the leaf at `position` in [`Self::list`], or
    /// `Err` with its invalid would-be name.
    pub fn column(&self, position: usize) -> Result<&str, &str> {
        self.shape.column(position)
    }

    pub fn shape(&self) -> &Arc<Shape> {
        &self.shape
    }

    fn push_text(&mut self, text: &str) -> Range<usize> {
        append(&mut self.text, text)
    }

    /// Where `value` is in the traits JSON if it lies in a member copied
    /// there unchanged; else where it is once appended.
    fn place(&mut self, copied: Option<Copied>, value: &str) -> Range<usize> {
        copied.and_then(|c| c.span(value)).unwrap_or_else(|| self.push_text(value))
    }

    /// Appends `json` without its insignificant white space.
    fn push_minified(&mut self, json: &str) -> Range<usize> {
        let start = self.text.len();
        minify_into(json, &mut self.text);
        start..self.text.len()
    }
}

/// Appends `text` to `buffer`; where it landed.
fn append(buffer: &mut String, text: &str) -> Range<usize> {
    let start = buffer.len();
    buffer.push_str(text);
    start..buffer.len()
}

struct Candidate {
    /// The key path joined with `_` is spelled exactly as the column.
    exact: bool,
    kind: Kind,
    span: Range<usize>,
}

/// A top-level trait's value text, which went into the traits JSON
/// unchanged at byte `at`.
#[derive(Clone, Copy)]
struct Copied<'a> {
    raw: &'a str,
    at: usize,
}

impl Copied<'_> {
    /// The span of the traits JSON that holds `value`, if `value` is a slice
    /// of this member's raw text (as a borrowed string, number or nested
    /// member is): found by its address, as the parse hands out slices and
    /// not positions.
    fn span(&self, value: &str) -> Option<Range<usize>> {
        let offset = (value.as_ptr() as usize).checked_sub(self.raw.as_ptr() as usize)?;
        let start = self.at + offset;
        (offset + value.len() <= self.raw.len()).then(|| start..start + value.len())
    }
}

/// What flattening keeps on its thread from one event to the next.
#[derive(Default)]
struct Scratch {
    names: Names,
    /// For each name id, where its candidate is in [`Columns::list`] (plus
    /// one; zero for none). Zero again between events.
    at: Vec<u32>,
    /// For each top-level trait, where the traits JSON has its value
    /// unchanged, if it does.
    copied: Vec<Option<usize>>,
    /// The last event's leaves by position: key path, source and name. The
    /// events of a stream mostly have the same leaves in the same order,
    /// and comparing a path with the one expected costs less than hashing
    /// it.
    recent: Vec<(String, LeafSource, Named)>,
    /// Leaves named so far in this event.
    visited: usize,
    /// This event's [`Shape::key`] so far.
    key: Vec<u32>,
    /// The latest shapes, the last used first.
    shapes: Vec<Arc<Shape>>,
    /// The shape of events not flattened yet: one per thread, so that
    /// taking it counts a reference no other thread touches.
    empty: Arc<Shape>,
}

/// Shapes kept to share: events that alternate between a few sets of
/// leaves share theirs too.
const SHAPES: usize = 4;

impl Scratch {
    /// Between events: past the bound the names are forgotten, and so are
    /// the ids of the last event's leaves and the shapes keyed by them.
    fn next_event(&mut self) {
        if self.names.bound() {
            self.recent.clear();
            self.shapes.clear();
        }
        self.visited = 0;
        self.key.clear();
    }

    /// The shape of this event's leaves: a kept one if it has them.
    fn shape(&mut self) -> Arc<Shape> {
        if let Some(i) = self.shapes.iter().position(|s| s.key == self.key) {
            self.shapes[..=i].rotate_right(1);
        } else {
            self.shapes.truncate(SHAPES - 1);
            self.shapes.insert(0, Arc::new(Shape::new(&self.names, &self.key)));
        }
        Arc::clone(&self.shapes[0])
    }
}

/// One event's candidate value per column name, in order of first
/// appearance.
struct Columns<'s> {
    names: &'s mut Names,
    at: &'s mut Vec<u32>,
    recent: &'s mut Vec<(String, LeafSource, Named)>,
    visited: &'s mut usize,
    key: &'s mut Vec<u32>,
    list: Vec<(u32, Candidate)>,
}

impl<'s> Columns<'s> {
    fn new(scratch: &'s mut Scratch, capacity: usize) -> Self {
        Columns {
            names: &mut scratch.names,
            at: &mut scratch.at,
            recent: &mut scratch.recent,
            visited: &mut scratch.visited,
            key: &mut scratch.key,
            list: Vec::with_capacity(capacity),
        }
    }

    /// [`Names::lookup`] for the event's next leaf.
    fn named(&mut self, path: &str, source: LeafSource) -> Named {
        let position = *self.visited;
        *self.visited += 1;
        if let Some((p, s, named)) = self.recent.get(position)
            && *s == source
            && p == path
        {
            return *named;
        }
        let named = self.names.lookup(path, source);
        if self.recent.len() <= position {
            self.recent.resize_with(position + 1, || (String::new(), source, named));
        }
        let slot = &mut self.recent[position];
        slot.0.clear();
        slot.0.push_str(path);
        (slot.1, slot.2) = (source, named);
        named
    }

    fn get(&self, id: u32) -> Option<&Candidate> {
        match self.at.get(id as usize) {
            Some(&at) if at > 0 => Some(&self.list[at as usize - 1].1),
            _ => None,
        }
    }

    fn get_named(&self, name: &str) -> Option<&Candidate> {
        self.get(self.names.id(name)?)
    }

    /// Keeps `candidate` for its column unless the column's current one has
    /// precedence: an exactly spelled key beats a non-exact one; otherwise
    /// the later key wins.
    // Out of line, the candidate was stored on the caller's stack field by
    // field and read back as two wide loads, which stalled on store
    // forwarding: 8% of the parse bench's samples; inlined, the bench
    // takes 11% less time.
    #[inline(always)]
    fn offer(&mut self, id: u32, candidate: Candidate) {
        // Ids are below the names' count.
        if self.at.len() <= id as usize {
            self.at.resize(self.names.count(), 0);
        }
        match self.at[id as usize] {
            0 => {
                self.list.push((id, candidate));
                self.at[id as usize] = self.list.len() as u32;
            }
            at => {
                let old = &mut self.list[at as usize - 1].1;
                if !old.exact || candidate.exact {
                    *old = candidate;
                }
            }
        }
    }

    /// The candidates become leaves, in order.
    fn push_to(self, leaves: &mut Leaves) {
        for (id, c) in self.list {
            self.at[id as usize] = 0;
            self.key.push(id);
            leaves.list.push(Leaf { kind: c.kind, span: c.span });
        }
    }
}

/// Leaves of `context` (except `context.traits`) and of the merged traits,
/// in input order, one per column.
/// `plain`: they are of a [`super::json::Line::plain`] line; `nested`: the
/// line's objects already split.
pub fn flatten_event(
    context: Option<&RawObject>,
    traits: &RawObject,
    plain: bool,
    nested: &Nested,
) -> Leaves {
    thread_local! {
        static SCRATCH: RefCell<Scratch> = RefCell::default();
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.next_event();
        flatten_with(scratch, Event { context, traits, plain, nested })
    })
}

/// What [`flatten_event`] flattens.
struct Event<'e, 'a> {
    context: Option<&'e RawObject<'a>>,
    traits: &'e RawObject<'a>,
    plain: bool,
    nested: &'e Nested<'a>,
}

fn flatten_with(scratch: &mut Scratch, event: Event) -> Leaves {
    let Event { context, traits, plain, nested } = event;
    let mut leaves = Leaves {
        text: String::with_capacity(1024),
        traits_len: 0,
        shape: Arc::clone(&scratch.empty),
        list: Vec::with_capacity(32),
    };
    let mut copied = std::mem::take(&mut scratch.copied);
    copied.clear();
    copied.resize(traits.0.len(), None);
    traits.write_compact(&mut leaves.text, plain, |i, at| copied[i] = Some(at));
    leaves.traits_len = leaves.text.len();

    let mut path = String::with_capacity(64);
    if let Some(context) = context {
        let mut columns = Columns::new(scratch, 16);
        path.push_str("context");
        for (key, value) in context.0.iter() {
            if key != "traits" {
                let origin = Visit { source: LeafSource::Context, plain, nested, copied: None };
                visit(false, key, value, origin, &mut path, &mut columns, &mut leaves);
            }
        }
        columns.push_to(&mut leaves);
    }
    let mut columns = Columns::new(scratch, traits.0.len() + 8);
    path.clear();
    for ((key, value), at) in traits.0.iter().zip(&copied) {
        let copied = at.map(|at| Copied { raw: value, at });
        let origin = Visit { source: LeafSource::Trait, plain, nested, copied };
        visit(false, key, value, origin, &mut path, &mut columns, &mut leaves);
    }
    fill_name(&mut columns, &mut leaves);
    columns.push_to(&mut leaves);
    scratch.copied = copied;
    leaves.shape = scratch.shape();
    leaves
}

/// Where a member's leaves come from, which its nested members share.
#[derive(Clone, Copy)]
struct Visit<'e, 'a> {
    source: LeafSource,
    /// The line is plain (see [`super::json::Line::plain`]).
    plain: bool,
    /// The line's objects its scan split, which need not be split again.
    nested: &'e Nested<'a>,
    /// The top-level trait's value, if it went into the traits JSON unchanged.
    copied: Option<Copied<'a>>,
}

fn visit(
    nested: bool,
    key: &str,
    value: &str,
    origin: Visit,
    path: &mut String,
    columns: &mut Columns,
    leaves: &mut Leaves,
) {
    let Visit { source, plain, nested: objects, copied } = origin;
    let len = path.len();
    // Context paths start with `context`; a nested trait key always gets a
    // separator, even below an empty key.
    if !path.is_empty() || nested {
        path.push('_');
    }
    path.push_str(key);
    // A member copied unchanged had no white space: its raw text is already
    // the compact form of every value in it.
    let (kind, span) = match Raw::read(value, plain) {
        Raw::Null => {
            path.truncate(len);
            return;
        }
        Raw::Object(text) => {
            for (k, v) in objects.split(text, plain).0.iter() {
                visit(true, k, v, origin, path, columns, leaves);
            }
            path.truncate(len);
            return;
        }
        Raw::Bool => (Kind::Bool, leaves.place(copied, value)),
        Raw::Number(n) => (Kind::of_number(n), leaves.place(copied, n)),
        Raw::String(s) => {
            let span = match &s {
                Cow::Borrowed(s) => leaves.place(copied, s),
                Cow::Owned(s) => leaves.push_text(s),
            };
            (Kind::of_string(&s), span)
        }
        // An array not copied unchanged may hold white space: its text is
        // minified rather than placed.
        Raw::Array(array) => {
            (Kind::Array, copied.and_then(|c| c.span(array)).unwrap_or_else(|| leaves.push_minified(array)))
        }
    };
    let named = columns.named(path, source);
    if named.valid {
        columns.offer(named.id, Candidate { exact: named.exact, kind, span });
    } else {
        columns.key.push(named.id | INVALID);
        leaves.list.push(Leaf { kind, span });
    }
    path.truncate(len);
}

/// Segment's reserved-trait rule: `name` from `first_name` and `last_name`.
fn fill_name(columns: &mut Columns, leaves: &mut Leaves) {
    if columns.get_named("name").is_some() {
        return;
    }
    let is_string = |c: &Candidate| matches!(c.kind, Kind::String | Kind::Timestamp);
    let first = columns.get_named("first_name").filter(|c| is_string(c)).map(|c| c.span.clone());
    let last = columns.get_named("last_name").filter(|c| is_string(c)).map(|c| c.span.clone());
    if let (Some(first), Some(last)) = (first, last) {
        let start = leaves.text.len();
        leaves.text.extend_from_within(first);
        leaves.text.push(' ');
        leaves.text.extend_from_within(last);
        let span = start..leaves.text.len();
        let candidate = Candidate { exact: true, kind: Kind::of_string(&leaves.text[span.clone()]), span };
        let id = columns.names.intern("name");
        columns.offer(id, candidate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::json::tests::json_value;

    fn leaves(context: &str, traits: &str) -> Vec<(String, Kind, String)> {
        let context = RawObject::parse(context).unwrap();
        let traits = RawObject::parse(traits).unwrap();
        let leaves = flatten_event(Some(&context), &traits, false, &Nested::default());
        leaves
            .list
            .iter()
            .enumerate()
            .map(|(i, l)| {
                (
                    leaves.column(i).map_or_else(|e| format!("!{e}"), str::to_owned),
                    l.kind,
                    leaves.value(l).into(),
                )
            })
            .collect()
    }

    fn names(context: &str, traits: &str) -> Vec<String> {
        leaves(context, traits).into_iter().map(|l| l.0).collect()
    }

    #[test]
    fn leaves_in_the_places_of_the_last_events_are_named_by_their_own_paths() {
        assert_eq!(names("{}", r#"{"a":1,"bB":2}"#), ["a", "b_b"]);
        assert_eq!(names("{}", r#"{"bB":1,"a":2}"#), ["b_b", "a"]);
        assert_eq!(names(r#"{"a":1}"#, r#"{"a":1}"#), ["context_a", "a"]);
        // Past the bound on names every id is void, those of the last
        // event's leaves too.
        let many: Vec<String> = (0..5000).map(|i| format!(r#""k{i}":{i}"#)).collect();
        assert_eq!(names("{}", &format!("{{{}}}", many.join(","))).len(), 5000);
        assert_eq!(names("{}", r#"{"k0":1,"k1":2}"#), ["k0", "k1"]);
    }

    #[test]
    fn events_with_the_same_leaves_share_their_names() {
        let flatten =
            |traits: &str| flatten_event(None, &RawObject::parse(traits).unwrap(), false, &Nested::default());
        let [a, b, c, d] =
            [r#"{"a":1,"b":2}"#, r#"{"a":"x","b":null,"b":3}"#, r#"{"b":1,"a":2}"#, r#"{"a":1}"#]
                .map(flatten);
        assert!(Arc::ptr_eq(a.shape(), b.shape()), "values and null members do not matter");
        assert!(!Arc::ptr_eq(a.shape(), c.shape()), "the same leaves in another order are another shape");
        assert_eq!(d.column(0), Ok("a"));
        assert!(Arc::ptr_eq(a.shape(), flatten(r#"{"a":0,"b":0}"#).shape()), "a few shapes are kept");
        // Past the bound on names, ids are given again: the shapes kept are
        // forgotten with them.
        let many: Vec<String> = (0..5000).map(|i| format!(r#""k{i}":{i}"#)).collect();
        flatten(&format!("{{{}}}", many.join(",")));
        let [x, y] = [r#"{"b":1,"a":2}"#, r#"{"a":1,"b":2}"#].map(flatten);
        assert!(!Arc::ptr_eq(a.shape(), y.shape()));
        assert_eq!(
            (x.column(0), x.column(1), y.column(0), y.column(1)),
            (Ok("b"), Ok("a"), Ok("a"), Ok("b"))
        );
    }

    #[test]
    fn nested_keys_are_joined_and_snake_cased() {
        let got = names(
            r#"{"library":{"name":"js","version":"1.0"},"userAgent":"x","traits":{"a":1}}"#,
            r#"{"address":{"postalCode":"123","city":null},"firstName":"Ann"}"#,
        );
        assert_eq!(
            got,
            [
                "context_library_name",
                "context_library_version",
                "context_user_agent",
                "address_postal_code",
                "first_name"
            ]
        );
    }

    #[test]
    fn trait_values_are_spans_of_the_traits_json_where_it_has_them_unchanged() {
        let traits = RawObject::parse(
            r#"{"plan":"pro","n":1.50,"ok":true,"tags":["a", "b"],"esc":"a\"b","address":{"city":"Oslo","zip":""},"spaced": {"x" : 1}}"#,
        )
        .unwrap();
        let leaves = flatten_event(None, &traits, false, &Nested::default());
        assert_eq!(leaves.traits(), traits.to_compact());
        let got: Vec<(&str, &str, bool)> = leaves
            .list
            .iter()
            .enumerate()
            .map(|(i, l)| (leaves.column(i).unwrap(), leaves.value(l), l.span.end <= leaves.traits_len))
            .collect();
        assert_eq!(
            got,
            [
                ("plan", "pro", true),
                ("n", "1.50", true),
                ("ok", "true", true),
                ("tags", r#"["a","b"]"#, false),
                ("esc", "a\"b", false),
                ("address_city", "Oslo", true),
                ("address_zip", "", true),
                ("spaced_x", "1", false),
            ]
        );
    }

    #[test]
    fn a_nested_key_given_twice_is_a_span_of_its_last_value() {
        let text = r#"{"a":{"k":"first","k":"second"}}"#;
        let leaves = flatten_event(None, &RawObject::parse(text).unwrap(), false, &Nested::default());
        assert_eq!(leaves.traits(), text);
        let [leaf] = leaves.list.as_slice() else { panic!("one leaf: {:?}", leaves.list) };
        assert_eq!((leaves.value(leaf), leaf.span.end <= leaves.traits_len), ("second", true));
    }

    proptest::proptest! {
        /// A trait's value is the same whether it is a span of the traits
        /// JSON (compact input) or a copy (the same traits pretty-printed,
        /// whose white space keeps members from being copied unchanged).
        #[test]
        fn where_a_trait_value_is_kept_does_not_change_it(
            traits in proptest::collection::btree_map("[a-zA-Z_ ]{0,4}", json_value(), 0..6)
        ) {
            let compact = serde_json::to_string(&traits).unwrap();
            let pretty = serde_json::to_string_pretty(&traits).unwrap();
            proptest::prop_assert_eq!(leaves("{}", &compact), leaves("{}", &pretty));
            let json = |text: &str| flatten_event(None, &RawObject::parse(text).unwrap(), false, &Nested::default()).traits().to_owned();
            proptest::prop_assert_eq!(json(&compact), json(&pretty));
        }
    }

    #[test]
    fn exact_spelling_wins_collisions() {
        let got = leaves("{}", r#"{"first_name":"exact","firstName":"camel"}"#);
        assert_eq!(got, [("first_name".into(), Kind::String, "exact".into())]);
        let got = leaves("{}", r#"{"firstName":"camel","first_name":"exact"}"#);
        assert_eq!(got, [("first_name".into(), Kind::String, "exact".into())]);
    }

    #[test]
    fn otherwise_the_later_key_wins_and_nulls_never_do() {
        let got = leaves("{}", r#"{"FirstName":"a","firstName":"b","first-name":null}"#);
        assert_eq!(got, [("first_name".into(), Kind::String, "b".into())]);
    }

    #[test]
    fn reserved_names_and_invalid_names() {
        let got = names(r#"{"$":1}"#, r#"{"user_id":"u","$$":2,"context_x":3}"#);
        assert_eq!(got, ["!context", "!", "_user_id", "_context_x"]);
    }

    #[test]
    fn an_empty_key_still_joins_with_an_underscore() {
        // go-snakecase keeps one leading `_` before a lower-case letter.
        let got = leaves("{}", r#"{"x":1,"":{"x":2}}"#);
        assert_eq!(got, [("x".into(), Kind::Int, "1".into()), ("_x".into(), Kind::Int, "2".into())]);
        let got = leaves("{}", r#"{"x":1,"":{"X":3}}"#);
        assert_eq!(got, [("x".into(), Kind::Int, "1".into())], "`_X` is not spelled as `x`");
    }

    #[test]
    fn value_kinds() {
        let got = leaves(
            "{}",
            r#"{"b":true,"i":-3,"f":2.50,"big":92233720368547758070,"t":"2024-01-01T00:00:00+02:00","s":"x","a":[1, {"k": 2}],"e":{}}"#,
        );
        let kinds: Vec<_> = got.iter().map(|l| (l.1, l.2.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (Kind::Bool, "true"),
                (Kind::Int, "-3"),
                (Kind::Float, "2.50"),
                (Kind::Float, "92233720368547758070"),
                (Kind::Timestamp, "2024-01-01T00:00:00+02:00"),
                (Kind::String, "x"),
                (Kind::Array, r#"[1,{"k":2}]"#),
            ]
        );
    }

    #[test]
    fn more_keys_than_the_name_cache_holds() {
        // The cache forgets its names between events past its bound; an
        // event with more keys than that still gets each of its own.
        let many: Vec<String> = (0..5000).map(|i| format!("\"k{i}\":{i}")).collect();
        let got = names("{}", &format!("{{{}}}", many.join(",")));
        assert_eq!(got.len(), 5000);
        assert_eq!((got[0].as_str(), got[4999].as_str()), ("k0", "k4999"));
        let got = leaves("{}", r#"{"firstName":"A","first_name":"B","k7":1}"#);
        assert_eq!(got[0], ("first_name".into(), Kind::String, "B".into()));
        assert_eq!(got[1], ("k7".into(), Kind::Int, "1".into()));
    }

    #[test]
    fn name_is_filled_from_first_and_last_name() {
        let got = leaves("{}", r#"{"firstName":"Ada","lastName":"Lovelace"}"#);
        assert_eq!(got[2], ("name".into(), Kind::String, "Ada Lovelace".into()));
        let got = names("{}", r#"{"first_name":"Ada","last_name":"L","name":"Countess"}"#);
        assert_eq!(got, ["first_name", "last_name", "name"]);
        let got = names("{}", r#"{"first_name":"Ada","last_name":7}"#);
        assert_eq!(got, ["first_name", "last_name"]);
    }
}

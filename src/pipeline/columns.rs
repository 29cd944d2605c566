//! The dynamic columns of `identifies` (SPEC §5): existing columns keep
//! their type, new columns take the join of their values' types in this run,
//! and at most `--max-columns` exist.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::flatten::{Leaves, Shape};
use super::json::FastHash;
use super::typing::{ColumnType, Kind};

/// A dynamic column of the table as recorded in the warehouse log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// The run that created the column.
    pub since_run: String,
}

#[derive(Debug, Clone)]
enum Status {
    Existing(ColumnType),
    New(ColumnType),
    InvalidName,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    status: Status,
}

impl Entry {
    /// Joins a leaf's type into a new column's; the column's type if it
    /// changed.
    fn join(&mut self, leaf_type: ColumnType) -> Option<ColumnType> {
        let Status::New(t) = &mut self.status else { return None };
        let joined = t.join(leaf_type);
        (*t != joined).then(|| {
            *t = joined;
            joined
        })
    }

    fn is(&self, column: Result<&str, &str>) -> bool {
        match column {
            Ok(name) => !matches!(self.status, Status::InvalidName) && self.name == name,
            Err(name) => matches!(self.status, Status::InvalidName) && self.name == name,
        }
    }
}

/// Every column name met in this run, by id in order of first appearance.
#[derive(Debug, Default)]
pub struct Columns {
    entries: Vec<Entry>,
    valid: HashMap<String, u32, FastHash>,
    invalid: HashMap<String, u32, FastHash>,
    /// The table's columns before this run.
    existing: Vec<ColumnDef>,
    /// The ids of the last event's leaves by position: the events of a
    /// stream mostly have the same leaves in the same order, and comparing
    /// a name with the one expected costs less than hashing it.
    recent: Vec<u32>,
    /// The column ids of the leaves of the latest [`Shape`]s, the last
    /// made first, valid while `generation` is `shapes_generation`.
    shapes: Vec<(Arc<Shape>, Vec<u32>)>,
    shapes_generation: u64,
    /// Counts the changes of `entries`: a column seen for the first time, a
    /// new column's type widened, a rollback.
    generation: u64,
    /// A column new to this run has become Utf8 after values of another
    /// type, whose text it keeps (SPEC §5), which typed values do not.
    widened: bool,
}

/// Shapes whose leaves' column ids are kept: the parsing threads make
/// theirs in turn.
const SHAPES: usize = 8;

/// Where the values staged under one column id go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Index among the table's dynamic columns, and its type.
    Column(usize, ColumnType),
    Discard(DiscardReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscardReason {
    InvalidColumnName,
    TooManyColumns,
    TypeMismatch,
}

impl DiscardReason {
    pub fn code(self) -> &'static str {
        match self {
            DiscardReason::InvalidColumnName => "invalid_column_name",
            DiscardReason::TooManyColumns => "too_many_columns",
            DiscardReason::TypeMismatch => "type_mismatch",
        }
    }
}

/// A snapshot to return to when a source object fails.
pub struct Checkpoint(Vec<Entry>);

/// The outcome of a run for the table's columns.
#[derive(Debug)]
pub struct Resolved {
    /// The table's dynamic columns after this run: existing, then new.
    pub schema: Vec<ColumnDef>,
    /// By column id.
    pub targets: Vec<Target>,
    pub new_columns: Vec<(String, ColumnType)>,
}

impl Columns {
    pub fn new(existing: &[ColumnDef]) -> Self {
        let mut columns = Columns::default();
        for def in existing {
            columns.valid.insert(def.name.clone(), columns.entries.len() as u32);
            columns.entries.push(Entry { name: def.name.clone(), status: Status::Existing(def.column_type) });
        }
        columns.existing = existing.to_vec();
        columns
    }

    /// The ids of the columns of an event's leaves, by position; the
    /// leaves' types join new columns'. The names of a shape the events
    /// before had are not compared again.
    pub fn observe_leaves(&mut self, leaves: &Leaves) -> &[u32] {
        self.forget_stale_shapes();
        let shape = leaves.shape();
        let at = match self.shapes.iter().position(|(s, _)| Arc::ptr_eq(s, shape)) {
            Some(at) => {
                let (ids, entries) = (&self.shapes[at].1, &mut self.entries);
                for (&id, leaf) in ids.iter().zip(&leaves.list) {
                    if let Some(t) = entries[id as usize].join(leaf.kind.column_type()) {
                        // The shapes' ids stay valid for this event.
                        self.generation += 1;
                        self.widened |= t == ColumnType::Utf8;
                    }
                }
                at
            }
            None => {
                let ids = (0..leaves.list.len())
                    .map(|i| self.observe(i, leaves.column(i), leaves.list[i].kind))
                    .collect();
                self.forget_stale_shapes();
                self.shapes.truncate(SHAPES - 1);
                self.shapes.insert(0, (Arc::clone(shape), ids));
                0
            }
        };
        &self.shapes[at].1
    }

    /// The shapes' ids are void once the columns change.
    fn forget_stale_shapes(&mut self) {
        if self.shapes_generation != self.generation {
            self.shapes.clear();
            self.shapes_generation = self.generation;
        }
    }

    /// The id of the column of an event's leaf at `position` among its
    /// leaves; the leaf's type joins a new column's.
    pub fn observe(&mut self, position: usize, column: Result<&str, &str>, kind: Kind) -> u32 {
        let leaf_type = kind.column_type();
        let id = match self.recent.get(position) {
            Some(&id) if self.entries[id as usize].is(column) => id,
            _ => {
                let id = self.id(column, leaf_type);
                if self.recent.len() <= position {
                    self.recent.resize(position + 1, 0);
                }
                self.recent[position] = id;
                id
            }
        };
        if let Some(t) = self.entries[id as usize].join(leaf_type) {
            self.generation += 1;
            self.widened |= t == ColumnType::Utf8;
        }
        id
    }

    /// The column's id, a new one if it has none yet.
    fn id(&mut self, column: Result<&str, &str>, leaf_type: ColumnType) -> u32 {
        let (map, name, status) = match column {
            Ok(name) => (&mut self.valid, name, Status::New(leaf_type)),
            Err(name) => (&mut self.invalid, name, Status::InvalidName),
        };
        if let Some(&id) = map.get(name) {
            return id;
        }
        let id = self.entries.len() as u32;
        self.generation += 1;
        map.insert(name.to_owned(), id);
        self.entries.push(Entry { name: name.to_owned(), status });
        id
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.entries.clone())
    }

    pub fn rollback(&mut self, checkpoint: Checkpoint) {
        for entry in &self.entries[checkpoint.0.len()..] {
            match entry.status {
                Status::InvalidName => self.invalid.remove(&entry.name),
                _ => self.valid.remove(&entry.name),
            };
        }
        self.entries = checkpoint.0;
        // Ids past the checkpoint are void.
        self.recent.clear();
        self.generation += 1;
    }

    /// Changes with every change of the columns or their types.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A column new to this run has become Utf8 after values of another
    /// type: their Utf8 form is their input text, which the values written
    /// with their first type no longer have. (Int64 to Float64 is a cast.)
    pub fn widened(&self) -> bool {
        self.widened
    }

    /// The name staged under `id` (for `discards.column_name`).
    pub fn name(&self, id: u32) -> &str {
        &self.entries[id as usize].name
    }

    /// Settles the table's columns: new columns in order of first
    /// appearance while fewer than `max_columns` exist, the rest discarded.
    pub fn resolve(&self, max_columns: usize, run_id: &str) -> Resolved {
        let mut schema = self.existing.clone();
        let mut new_columns = Vec::new();
        let targets = self
            .entries
            .iter()
            .enumerate()
            .map(|(id, entry)| match entry.status {
                Status::Existing(t) => Target::Column(id, t),
                Status::InvalidName => Target::Discard(DiscardReason::InvalidColumnName),
                Status::New(_) if schema.len() >= max_columns => {
                    Target::Discard(DiscardReason::TooManyColumns)
                }
                Status::New(t) => {
                    schema.push(ColumnDef {
                        name: entry.name.clone(),
                        column_type: t,
                        since_run: run_id.to_owned(),
                    });
                    new_columns.push((entry.name.clone(), t));
                    Target::Column(schema.len() - 1, t)
                }
            })
            .collect();
        Resolved { schema, targets, new_columns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_columns_join_and_existing_keep_their_type() {
        let existing =
            [ColumnDef { name: "age".into(), column_type: ColumnType::Int64, since_run: "r0".into() }];
        let mut c = Columns::new(&existing);
        assert_eq!(c.observe(0, Ok("age"), Kind::String), 0);
        assert_eq!(c.observe(0, Ok("score"), Kind::Int), 1);
        assert_eq!(c.observe(0, Ok("score"), Kind::Float), 1);
        assert_eq!(c.observe(0, Ok("flag"), Kind::Bool), 2);
        assert_eq!(c.observe(0, Ok("flag"), Kind::Int), 2);
        let r = c.resolve(10, "r1");
        assert_eq!(
            r.targets,
            [
                Target::Column(0, ColumnType::Int64),
                Target::Column(1, ColumnType::Float64),
                Target::Column(2, ColumnType::Utf8)
            ]
        );
        assert_eq!(r.new_columns, [("score".into(), ColumnType::Float64), ("flag".into(), ColumnType::Utf8)]);
    }

    #[test]
    fn generation_counts_new_columns_and_widened_types() {
        let existing =
            [ColumnDef { name: "age".into(), column_type: ColumnType::Int64, since_run: "r0".into() }];
        let mut c = Columns::new(&existing);
        let start = c.generation();
        c.observe(0, Ok("age"), Kind::String);
        c.observe(1, Ok("score"), Kind::Int);
        c.observe(1, Ok("score"), Kind::Int);
        assert_eq!(
            (c.generation(), c.widened()),
            (start + 1, false),
            "one new column; an existing one keeps its type"
        );
        let checkpoint = c.checkpoint();
        c.observe(1, Ok("score"), Kind::Float);
        assert_eq!((c.generation(), c.widened()), (start + 2, false), "Int64 to Float64 is a cast");
        c.observe(1, Ok("score"), Kind::String);
        assert_eq!((c.generation(), c.widened()), (start + 3, true));
        c.rollback(checkpoint);
        assert_eq!(c.generation(), start + 4);
    }

    #[test]
    fn leaves_of_a_shape_seen_before_keep_their_ids_and_still_join_types() {
        let leaves = |traits: &str| {
            let traits = super::super::json::RawObject::parse(traits).unwrap();
            super::super::flatten::flatten_event(None, &traits, false, &super::super::json::Nested::default())
        };
        let mut c = Columns::new(&[]);
        let first = leaves(r#"{"a":1,"$$":"x","b":"x"}"#);
        let second = leaves(r#"{"a":1.5,"$$":"y","b":"y"}"#);
        assert!(Arc::ptr_eq(first.shape(), second.shape()), "the same leaves in the same order");
        assert_eq!(c.observe_leaves(&first), [0, 1, 2], "invalid leaves come first");
        let generation = c.generation();
        assert_eq!(c.observe_leaves(&second), [0, 1, 2]);
        assert_eq!(c.generation(), generation + 1, "a widened to Float64");
        assert_eq!(c.observe_leaves(&leaves(r#"{"a":"s","$$":1,"b":2}"#)), [0, 1, 2]);
        assert!(c.widened(), "a became Utf8");
        let r = c.resolve(10, "r");
        assert_eq!(r.new_columns, [("a".into(), ColumnType::Utf8), ("b".into(), ColumnType::Utf8)]);

        // A rollback voids the ids past it, those of a shape seen before too.
        let checkpoint = c.checkpoint();
        let other = leaves(r#"{"c":true,"a":"t"}"#);
        assert_eq!(c.observe_leaves(&other), [3, 1]);
        c.rollback(checkpoint);
        assert_eq!(c.observe_leaves(&leaves(r#"{"d":1}"#)), [3]);
        let again = leaves(r#"{"c":false,"a":"u"}"#);
        assert!(Arc::ptr_eq(other.shape(), again.shape()));
        assert_eq!(c.observe_leaves(&again), [4, 1]);
        assert_eq!(c.name(4), "c");
    }

    #[test]
    fn max_columns_admits_the_first_seen() {
        let mut c = Columns::new(&[]);
        for name in ["a", "b", "c"] {
            c.observe(0, Ok(name), Kind::Int);
        }
        c.observe(3, Err(""), Kind::Int);
        let r = c.resolve(2, "r");
        assert_eq!(r.schema.len(), 2);
        assert_eq!(r.targets[2], Target::Discard(DiscardReason::TooManyColumns));
        assert_eq!(r.targets[3], Target::Discard(DiscardReason::InvalidColumnName));
    }

    #[test]
    fn a_leaf_in_the_place_of_the_last_events_is_still_looked_up_by_name() {
        let mut c = Columns::new(&[]);
        assert_eq!(c.observe(0, Ok("a"), Kind::Int), 0);
        assert_eq!(c.observe(1, Ok("b"), Kind::Int), 1);
        assert_eq!(c.observe(0, Ok("a"), Kind::Float), 0);
        assert_eq!(c.observe(1, Ok("a"), Kind::Int), 0, "another leaf's place");
        assert_eq!(c.observe(0, Err("a"), Kind::Int), 2, "an invalid name is another column");
        assert_eq!(c.observe(0, Ok("a"), Kind::Int), 0);
        let r = c.resolve(10, "r");
        assert_eq!(r.new_columns, [("a".into(), ColumnType::Float64), ("b".into(), ColumnType::Int64)]);
        assert_eq!(r.targets[2], Target::Discard(DiscardReason::InvalidColumnName));
    }

    #[test]
    fn rollback_forgets_a_failed_object() {
        let mut c = Columns::new(&[]);
        c.observe(0, Ok("a"), Kind::Int);
        let cp = c.checkpoint();
        c.observe(0, Ok("a"), Kind::String);
        c.observe(0, Ok("b"), Kind::Int);
        c.rollback(cp);
        assert_eq!(c.observe(0, Ok("c"), Kind::Int), 1);
        let r = c.resolve(10, "r");
        assert_eq!(r.new_columns, [("a".into(), ColumnType::Int64), ("c".into(), ColumnType::Int64)]);
    }
}

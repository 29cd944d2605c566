//! Column naming (SPEC §5 "Column names"): a leaf's key path becomes a
//! Segment-compatible warehouse column name, or is refused as a column.

use std::collections::HashMap;

use super::json::FastHash;

/// Fixed columns of `identifies` and `users`: a trait with one of these names
/// gets a `_` prefix so it cannot shadow the fixed column.
pub const RESERVED: &[&str] = &[
    "id",
    "user_id",
    "anonymous_id",
    "anonymous_ids",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "received_date",
    "loaded_at",
    "channel",
    "traits",
    "first_seen_at",
    "last_seen_at",
    "identify_count",
];

/// Longest column name accepted, in bytes, after any prefix.
pub const MAX_NAME_BYTES: usize = 127;

/// Snake-cases `s` exactly as Segment's `go-snakecase` does: it works on
/// bytes, anything but ASCII letters and digits separates words, leading and
/// trailing separators vanish, and an upper-case run stays one word.
pub fn snake_case(s: &str) -> String {
    let b = s.as_bytes();
    let lower_or_digit = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    // The longest prefix that is already snake case is copied as is.
    let mut idx = 0;
    while idx < b.len()
        && (lower_or_digit(b[idx]) || (b[idx] == b'_' && idx + 1 < b.len() && lower_or_digit(b[idx + 1])))
    {
        idx += 1;
    }
    if idx == b.len() {
        return s.to_owned();
    }
    // A digit right before an upper-case letter starts that letter's word.
    if idx > 0 && b[idx - 1].is_ascii_digit() {
        idx -= 1;
    }
    let mut out = String::with_capacity(b.len() + 8);
    out.push_str(&s[..idx]);
    while idx < b.len() {
        if !b[idx].is_ascii_alphanumeric() {
            idx += 1;
            continue;
        }
        if !out.is_empty() {
            out.push('_');
        }
        while idx < b.len() && (b[idx].is_ascii_uppercase() || b[idx].is_ascii_digit()) {
            out.push(b[idx].to_ascii_lowercase() as char);
            idx += 1;
        }
        while idx < b.len() && lower_or_digit(b[idx]) {
            out.push(b[idx] as char);
            idx += 1;
        }
    }
    out
}

/// Where a leaf comes from: the names of context leaves and trait leaves
/// follow different rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafSource {
    Context,
    Trait,
}

/// The column name for a leaf whose key path, joined with `_`, is `joined`
/// (for a context leaf `joined` starts with `context_`). `Err` carries the
/// would-be name of a leaf that cannot be a column.
pub fn column_name(joined: &str, source: LeafSource) -> Result<String, String> {
    let mut name = snake_case(joined);
    match source {
        LeafSource::Context => {
            if name.len() <= "context_".len() {
                return Err(name);
            }
        }
        LeafSource::Trait => {
            if name.is_empty() {
                return Err(name);
            }
            if RESERVED.contains(&name.as_str()) || name.starts_with("context_") {
                name.insert(0, '_');
            }
        }
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(name);
    }
    Ok(name)
}

/// What [`Names::lookup`] knows of a key path.
#[derive(Debug, Clone, Copy)]
pub struct Named {
    /// The name's number: equal names, whatever their paths, have equal ids.
    pub id: u32,
    /// Can the name be a column? (If not, it is the would-be name.)
    pub valid: bool,
    /// The path is spelled exactly as the name.
    pub exact: bool,
}

/// The column names of the key paths one thread has seen. The same paths
/// come back on every event, and a name's number is cheaper to compare and
/// to keep than its text. Bounded so that a stream of unique keys stays
/// cheap.
#[derive(Debug, Default)]
pub struct Names {
    paths: [HashMap<String, Named, FastHash>; 2],
    ids: HashMap<Box<str>, u32, FastHash>,
    names: Vec<Box<str>>,
}

impl Names {
    const BOUND: usize = 4096;

    pub fn lookup(&mut self, joined: &str, source: LeafSource) -> Named {
        if let Some(named) = self.paths[source as usize].get(joined) {
            return *named;
        }
        let (name, valid) = match column_name(joined, source) {
            Ok(name) => (name, true),
            Err(name) => (name, false),
        };
        let named = Named { id: self.intern(&name), valid, exact: name == joined };
        self.paths[source as usize].insert(joined.to_owned(), named);
        named
    }

    /// The id of `name`, given it if it has none yet.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name.into(), id);
        self.names.push(name.into());
        id
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// How many names have ids: every id is below it.
    pub fn count(&self) -> usize {
        self.names.len()
    }

    /// The id of `name` if a path has had it (or it was interned).
    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// Forgets everything past the bound, of names or of paths (many paths
    /// can share one name). Ids given before are then void (it says whether
    /// they are): callers do this only between events.
    pub fn bound(&mut self) -> bool {
        let past = self.names.len() > Self::BOUND || self.paths.iter().any(|p| p.len() > Self::BOUND);
        if past {
            *self = Names::default();
        }
        past
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_snakecase_vectors_from_the_spec() {
        let vectors = [
            ("firstName", "first_name"),
            ("CStringRef", "cstring_ref"),
            ("Country of birth", "country_of_birth"),
            ("2FA Enabled", "2fa_enabled"),
            ("samPLE text", "sam_ple_text"),
            ("___$$Base64Encode", "base64_encode"),
            ("FOO:BAR$BAZ", "foo_bar_baz"),
            ("f_pX9", "f_p_x9"),
            ("something.com", "something_com"),
            ("HTTPServer", "httpserver"),
            ("address_postalCode", "address_postal_code"),
            ("5TEst", "5test"),
        ];
        for (key, column) in vectors {
            assert_eq!(snake_case(key), column, "snake_case({key:?})");
        }
    }

    #[test]
    fn go_snakecase_upstream_vectors() {
        let vectors = [
            ("sample text", "sample_text"),
            ("sample-text", "sample_text"),
            ("sample_text", "sample_text"),
            ("sample___text", "sample_text"),
            ("sampleText", "sample_text"),
            ("inviteYourCustomersAddInvites", "invite_your_customers_add_invites"),
            ("sample 2 Text", "sample_2_text"),
            ("   sample   2    Text   ", "sample_2_text"),
            ("   $#$sample   2    Text   ", "sample_2_text"),
            ("SAMPLE 2 TEXT", "sample_2_text"),
            ("FOO#BAR#BAZ", "foo_bar_baz"),
            ("$something%", "something"),
            ("•¶§ƒ˚foo˙∆˚¬", "foo"),
            ("sample_", "sample"),
            ("abc1Def", "abc_1def"),
            ("", ""),
            ("$$", ""),
            // One leading `_` before a lower-case letter or digit is kept,
            // as go-snakecase's fast path copies it.
            ("_x", "_x"),
            ("_id", "_id"),
            ("__x", "x"),
            ("_X", "x"),
            ("_", ""),
        ];
        for (key, column) in vectors {
            assert_eq!(snake_case(key), column, "snake_case({key:?})");
        }
    }

    #[test]
    fn reserved_trait_names_get_a_prefix() {
        assert_eq!(column_name("user_id", LeafSource::Trait).as_deref().unwrap(), "_user_id");
        assert_eq!(column_name("userId", LeafSource::Trait).as_deref().unwrap(), "_user_id");
        assert_eq!(column_name("_user_id", LeafSource::Trait).as_deref().unwrap(), "_user_id");
        assert_eq!(column_name("id", LeafSource::Trait).as_deref().unwrap(), "_id");
        assert_eq!(column_name("receivedDate", LeafSource::Trait).as_deref().unwrap(), "_received_date");
        assert_eq!(column_name("context_ip", LeafSource::Trait).as_deref().unwrap(), "_context_ip");
        assert_eq!(column_name("contextIp", LeafSource::Trait).as_deref().unwrap(), "_context_ip");
        assert_eq!(column_name("context", LeafSource::Trait).as_deref().unwrap(), "context");
        assert_eq!(column_name("email", LeafSource::Trait).as_deref().unwrap(), "email");
    }

    #[test]
    fn equal_names_share_an_id_whatever_their_paths() {
        let mut names = Names::default();
        let camel = names.lookup("firstName", LeafSource::Trait);
        let snake = names.lookup("first_name", LeafSource::Trait);
        assert_eq!(camel.id, snake.id);
        assert_eq!((camel.exact, snake.exact), (false, true));
        assert_eq!(names.name(camel.id), "first_name");
        // `context` is a trait's column name, but no context leaf's.
        let trait_leaf = names.lookup("context", LeafSource::Trait);
        let context_leaf = names.lookup("context_$", LeafSource::Context);
        assert_eq!(trait_leaf.id, context_leaf.id);
        assert!(trait_leaf.valid && !context_leaf.valid);
        assert_eq!(names.intern("first_name"), camel.id);
    }

    #[test]
    fn many_paths_of_one_name_are_bounded_too() {
        let mut names = Names::default();
        for i in 0..=Names::BOUND {
            names.lookup(&format!("{}x", "_".repeat(i + 2)), LeafSource::Trait);
        }
        assert_eq!(names.count(), 1, "every path is named `x`");
        names.bound();
        assert_eq!((names.count(), names.id("x")), (0, None));
    }

    #[test]
    fn context_names_keep_their_prefix() {
        assert_eq!(
            column_name("context_userAgent", LeafSource::Context).as_deref().unwrap(),
            "context_user_agent"
        );
        assert_eq!(column_name("context_ip", LeafSource::Context).as_deref().unwrap(), "context_ip");
    }

    #[test]
    fn names_that_cannot_be_columns() {
        assert_eq!(column_name("$$", LeafSource::Trait), Err(String::new()));
        assert_eq!(column_name("context_$", LeafSource::Context), Err("context".into()));
        assert_eq!(column_name("context_", LeafSource::Context), Err("context".into()));
        let long = "a".repeat(127);
        assert_eq!(column_name(&long, LeafSource::Trait).as_deref().unwrap(), long);
        let too_long = "a".repeat(128);
        assert!(column_name(&too_long, LeafSource::Trait).is_err());
        // The prefix counts towards the limit.
        let reserved_long = format!("context_{}", "a".repeat(119));
        assert_eq!(reserved_long.len(), 127);
        assert!(column_name(&reserved_long, LeafSource::Trait).is_err());
        assert!(column_name(&reserved_long, LeafSource::Context).is_ok());
    }
}

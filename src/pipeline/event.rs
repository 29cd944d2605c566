//! Parse and validate one line (SPEC §3, §4): a line's bytes become an
//! identify [`Event`], a skipped non-identify, or a [`RejectReason`].

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::flatten::{Leaves, flatten_event};
use super::json::{Line, Member, NotObject, Raw, RawObject, is_integer_token};
use super::timestamp::{Micros, event_timestamp, parse_rfc3339};

/// The reason codes of SPEC §3, in the order the rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RejectReason {
    LineTooLong,
    InvalidUtf8,
    InvalidJson,
    NotAnObject,
    InvalidType,
    InvalidIdentity,
    InvalidContext,
    InvalidTraits,
    InvalidTimestamp,
    MissingIdentity,
}

impl RejectReason {
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::LineTooLong => "line_too_long",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::InvalidType => "invalid_type",
            RejectReason::InvalidIdentity => "invalid_identity",
            RejectReason::InvalidContext => "invalid_context",
            RejectReason::InvalidTraits => "invalid_traits",
            RejectReason::InvalidTimestamp => "invalid_timestamp",
            RejectReason::MissingIdentity => "missing_identity",
        }
    }
}

/// An identify call, ready to be staged.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub timestamp: Micros,
    pub received_at: Micros,
    pub original_timestamp: Option<Micros>,
    pub sent_at: Option<Micros>,
    pub channel: Option<String>,
    /// The leaves, and the merged traits' JSON at the start of their text.
    pub leaves: Leaves,
}

impl Event {
    /// The merged traits as compact JSON: the `traits` column.
    pub fn traits(&self) -> &str {
        self.leaves.traits()
    }
}

// Most lines are identifies: boxing the event would be one more allocation
// per line for the few that are not.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Outcome {
    Identify(Event),
    NonIdentify,
    Reject(RejectReason, String),
}

/// What parsing needs besides the line.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// `received_at` when the event has no `receivedAt`: the object's
    /// last-modified time.
    pub fallback_received_at: Micros,
    pub email_from_user_id: bool,
}

/// Applies the rules of SPEC §3 in order; the first that matches decides.
/// `line` has no line terminator.
pub fn parse_line(line: &[u8], opts: &ParseOptions) -> Outcome {
    match parse(line, opts) {
        Ok(outcome) => outcome,
        Err((reason, message)) => Outcome::Reject(reason, message),
    }
}

type Rejected = (RejectReason, String);

fn reject<T>(reason: RejectReason, message: impl Into<String>) -> Result<T, Rejected> {
    Err((reason, message.into()))
}

fn parse(line: &[u8], opts: &ParseOptions) -> Result<Outcome, Rejected> {
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(e) => {
            return reject(RejectReason::InvalidUtf8, format!("invalid UTF-8 at byte {}", e.valid_up_to()));
        }
    };
    let mut parsed = match Line::parse_line(text) {
        Ok(parsed) => parsed,
        Err(NotObject::InvalidJson(e)) => return reject(RejectReason::InvalidJson, e),
        Err(NotObject::NotAnObject) => {
            return reject(RejectReason::NotAnObject, "the line is JSON but not an object");
        }
    };
    let event = &parsed.members;
    match event.get("type").map(Raw::of) {
        Some(Raw::String(t)) if t == "identify" => {}
        Some(Raw::String(_)) => return Ok(Outcome::NonIdentify),
        Some(_) => return reject(RejectReason::InvalidType, "`type` is not a string"),
        None => return reject(RejectReason::InvalidType, "`type` is missing"),
    }
    let user_id = identity(event, "userId")?;
    let anonymous_id = identity(event, "anonymousId")?;
    let message_id = identity(event, "messageId")?;
    let context = object(parsed.context, "context", RejectReason::InvalidContext)?;
    let context_traits = match &context {
        Some(c) => {
            let traits = Member::of_line(c.present("traits"), &mut parsed.nested, parsed.plain);
            object(traits, "traits", RejectReason::InvalidTraits)?
        }
        None => None,
    };
    let top_traits = object(parsed.traits, "traits", RejectReason::InvalidTraits)?;
    let timestamp = timestamp_member(event, "timestamp")?;
    let original_timestamp = timestamp_member(event, "originalTimestamp")?;
    let sent_at = timestamp_member(event, "sentAt")?;
    let received_at_field = timestamp_member(event, "receivedAt")?;

    // RudderStack puts traits in context.traits; top-level traits win.
    let mut traits = match (context_traits, top_traits) {
        (Some(mut merged), Some(top)) => {
            merged.0.extend(top.0);
            merged
        }
        (one, other) => one.or(other).unwrap_or_default(),
    };
    let user_id = match user_id {
        Some(id) => Some(id),
        None => traits.get("id").and_then(id_value),
    };
    if user_id.is_none() && anonymous_id.is_none() {
        return reject(RejectReason::MissingIdentity, "no userId, traits.id or anonymousId");
    }
    let email_json = match &user_id {
        Some(uid) if opts.email_from_user_id && is_email(uid) && traits.present("email").is_none() => {
            Some(serde_json::to_string(uid).unwrap_or_default())
        }
        _ => None,
    };
    if let Some(json) = &email_json {
        traits.0.insert(Cow::Borrowed("email"), json);
    }

    let received_at = received_at_field.unwrap_or(opts.fallback_received_at);
    Ok(Outcome::Identify(Event {
        id: message_id.unwrap_or_else(|| hex::encode(Sha256::digest(line))),
        user_id,
        anonymous_id,
        timestamp: event_timestamp(timestamp, original_timestamp, sent_at, received_at_field, received_at),
        received_at,
        original_timestamp,
        sent_at,
        channel: event.present("channel").map(|c| match Raw::of(c) {
            Raw::String(s) => s.into_owned(),
            _ => super::json::minify(c),
        }),
        // An e-mail filled from the user id is a string of this line, which
        // holds nothing serde_json escapes when the line is plain.
        leaves: flatten_event(context.as_ref(), &traits, parsed.plain, &parsed.nested),
    }))
}

/// `userId`, `anonymousId`, `messageId`: a string or an integer (as its
/// decimal text); null, empty and all-white-space strings are absent.
fn identity(event: &RawObject, key: &str) -> Result<Option<String>, Rejected> {
    match event.present(key) {
        None => Ok(None),
        Some(v) => match id_value(v) {
            Some(id) => Ok(Some(id)),
            None if matches!(Raw::of(v), Raw::String(_)) => Ok(None),
            None => {
                reject(RejectReason::InvalidIdentity, format!("`{key}` is neither a string nor an integer"))
            }
        },
    }
}

/// An id from a string or integer value; `None` for blank strings and for
/// values of other types.
fn id_value(v: &str) -> Option<String> {
    match Raw::of(v) {
        Raw::String(s) if !s.chars().all(char::is_whitespace) => Some(s.into_owned()),
        Raw::Number(n) if is_integer_token(n) => Some(canonical_integer(n)),
        _ => None,
    }
}

/// The decimal string of an integer token: `-0` is `0`.
fn canonical_integer(token: &str) -> String {
    if token.bytes().all(|c| matches!(c, b'-' | b'0')) { "0".to_owned() } else { token.to_owned() }
}

fn object<'a>(
    member: Member<'a>,
    key: &str,
    reason: RejectReason,
) -> Result<Option<RawObject<'a>>, Rejected> {
    match member {
        Member::Absent => Ok(None),
        Member::Object(o) => Ok(Some(o)),
        Member::Other => reject(reason, format!("`{key}` is not an object")),
    }
}

fn timestamp_member(event: &RawObject, key: &str) -> Result<Option<Micros>, Rejected> {
    let Some(v) = event.present(key) else {
        return Ok(None);
    };
    if let Raw::String(s) = Raw::of(v)
        && let Some(t) = parse_rfc3339(&s)
    {
        return Ok(Some(t));
    }
    reject(
        RejectReason::InvalidTimestamp,
        format!("`{key}` is not an RFC 3339 date-time: {}", truncate(v, 64)),
    )
}

/// Customer.io's rule: `local@domain.tld`, no spaces.
fn is_email(s: &str) -> bool {
    if s.chars().any(char::is_whitespace) {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.rsplit_once('.').is_some_and(|(host, tld)| !host.is_empty() && !tld.is_empty())
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;

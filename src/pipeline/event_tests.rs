use super::*;
use crate::pipeline::typing::Kind;

const RECEIVED: Micros = 1_700_000_000_000_000;

fn opts() -> ParseOptions {
    ParseOptions { fallback_received_at: RECEIVED, email_from_user_id: false }
}

fn outcome(line: &str) -> Outcome {
    parse_line(line.as_bytes(), &opts())
}

fn event(line: &str) -> Event {
    match outcome(line) {
        Outcome::Identify(e) => e,
        other => panic!("{line}: {other:?}"),
    }
}

fn reason(line: &[u8]) -> RejectReason {
    match parse_line(line, &opts()) {
        Outcome::Reject(r, _) => r,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(line)),
    }
}

#[test]
fn rules_apply_in_order() {
    use RejectReason::*;
    assert_eq!(reason(b"{\"type\":\"identify\",\"userId\":\"\xff\"}"), InvalidUtf8);
    assert_eq!(reason(b"{\"type\":"), InvalidJson);
    assert_eq!(reason(b"[1,2]"), NotAnObject);
    assert_eq!(reason(b"42"), NotAnObject);
    assert_eq!(reason(br#"{"userId":"u"}"#), InvalidType);
    assert_eq!(reason(br#"{"type":7,"userId":"u"}"#), InvalidType);
    assert_eq!(reason(br#"{"type":null,"userId":"u"}"#), InvalidType);
    assert!(matches!(outcome(r#"{"type":"track","userId":{}}"#), Outcome::NonIdentify));
    assert!(matches!(outcome(r#"{"type":"Identify","userId":"u"}"#), Outcome::NonIdentify));
    assert_eq!(reason(br#"{"type":"identify","userId":{"a":1}}"#), InvalidIdentity);
    assert_eq!(reason(br#"{"type":"identify","userId":1.5}"#), InvalidIdentity);
    assert_eq!(reason(br#"{"type":"identify","userId":"u","messageId":true}"#), InvalidIdentity);
    assert_eq!(reason(br#"{"type":"identify","anonymousId":[1],"context":3}"#), InvalidIdentity);
    assert_eq!(reason(br#"{"type":"identify","userId":"u","context":3,"traits":1}"#), InvalidContext);
    // Valid JSON whose number does not fit an f64 is still a non-object.
    assert_eq!(reason(br#"{"type":"identify","userId":"u","context":1e400}"#), InvalidContext);
    assert_eq!(reason(br#"{"type":"identify","userId":"u","traits":"x"}"#), InvalidTraits);
    assert_eq!(reason(br#"{"type":"identify","userId":"u","context":{"traits":[]}}"#), InvalidTraits);
    assert_eq!(reason(br#"{"type":"identify","userId":"u","timestamp":"yesterday"}"#), InvalidTimestamp);
    assert_eq!(reason(br#"{"type":"identify","userId":"u","sentAt":1700000000}"#), InvalidTimestamp);
    assert_eq!(reason(br#"{"type":"identify","traits":{"a":1},"sentAt":"x"}"#), InvalidTimestamp);
    assert_eq!(reason(br#"{"type":"identify","traits":{"a":1}}"#), MissingIdentity);
    assert_eq!(reason(br#"{"type":"identify","userId":" ","anonymousId":""}"#), MissingIdentity);
}

#[test]
fn nulls_count_as_absent() {
    let e = event(
        r#"{"type":"identify","userId":"u","anonymousId":null,"messageId":null,"context":null,"traits":null,"timestamp":null}"#,
    );
    assert_eq!(e.anonymous_id, None);
    assert_eq!(e.traits(), "{}");
    assert_eq!(e.timestamp, RECEIVED);
}

#[test]
fn ids() {
    let e = event(r#"{"type":"identify","userId":42,"anonymousId":"\u2003","messageId":-7}"#);
    assert_eq!(e.user_id.as_deref(), Some("42"));
    assert_eq!(e.anonymous_id, None, "U+2003 is white space");
    assert_eq!(e.id, "-7");
    let e = event(r#"{"type":"identify","userId":-0,"messageId":"m"}"#);
    assert_eq!(e.user_id.as_deref(), Some("0"));
    let e = event(r#"{"type":"identify","userId":" ","traits":{"id":"t-1"},"anonymousId":"a"}"#);
    assert_eq!(e.user_id.as_deref(), Some("t-1"));
    let e = event(r#"{"type":"identify","context":{"traits":{"id":12}}}"#);
    assert_eq!(e.user_id.as_deref(), Some("12"));
    let e = event(r#"{"type":"identify","traits":{"id":1.5},"anonymousId":"a"}"#);
    assert_eq!(e.user_id, None);
}

#[test]
fn message_id_defaults_to_a_hash_of_the_line() {
    let line = r#"{"type":"identify","userId":"u"}"#;
    let e = event(line);
    assert_eq!(e.id.len(), 64);
    assert_eq!(e.id, event(line).id);
    assert_ne!(e.id, event(r#"{"type":"identify","userId":"v"}"#).id);
    assert_eq!(event(r#"{"type":"identify","userId":"u","messageId":"  "}"#).id.len(), 64);
}

#[test]
fn traits_merge_with_top_level_winning() {
    let e = event(
        r#"{"type":"identify","userId":"u","context":{"traits":{"a":1,"b":2},"ip":"1.2.3.4"},"traits":{"c":3,"a":"top"}}"#,
    );
    assert_eq!(e.traits(), r#"{"a":"top","b":2,"c":3}"#);
    let columns: Vec<_> = (0..e.leaves.list.len()).map(|i| e.leaves.column(i).unwrap()).collect();
    assert_eq!(columns, ["context_ip", "a", "b", "c"]);
    assert_eq!(e.leaves.list[1].kind, Kind::String);
}

#[test]
fn timestamps_and_skew_correction() {
    let e = event(
        r#"{"type":"identify","userId":"u","originalTimestamp":"2024-01-01T00:00:00Z","sentAt":"2024-01-01T00:00:10Z","receivedAt":"2024-01-01T00:00:05Z"}"#,
    );
    let t0 = 1_704_067_200_000_000;
    assert_eq!(e.received_at, t0 + 5_000_000);
    assert_eq!(e.timestamp, t0 - 5_000_000);
    assert_eq!(e.original_timestamp, Some(t0));
    assert_eq!(e.sent_at, Some(t0 + 10_000_000));
    let e = event(r#"{"type":"identify","userId":"u","timestamp":"2024-01-01T00:00:00.1234567+01:00"}"#);
    assert_eq!(e.timestamp, t0 - 3_600_000_000 + 123_456);
    assert_eq!(e.received_at, RECEIVED);
}

#[test]
fn email_from_user_id() {
    let opts = ParseOptions { email_from_user_id: true, ..opts() };
    let parse = |line: &str| match parse_line(line.as_bytes(), &opts) {
        Outcome::Identify(e) => e,
        other => panic!("{other:?}"),
    };
    let e = parse(r#"{"type":"identify","userId":"ann@example.com","traits":{"plan":"pro"}}"#);
    assert_eq!(e.traits(), r#"{"plan":"pro","email":"ann@example.com"}"#);
    assert_eq!(e.leaves.column(1), Ok("email"));
    // An escaped user id fills the e-mail with its value, escaped again in traits.
    let e = parse(r#"{"type":"identify","userId":"a\"nn@example.com"}"#);
    assert_eq!(e.traits(), r#"{"email":"a\"nn@example.com"}"#);
    assert_eq!(e.leaves.value(&e.leaves.list[0]), r#"a"nn@example.com"#);
    let e = parse(r#"{"type":"identify","userId":"ann@example.com","traits":{"email":"b@x.io"}}"#);
    assert_eq!(e.traits(), r#"{"email":"b@x.io"}"#);
    for not_email in ["ann", "ann@example", "a nn@example.com", "@example.com", "a@b@c.com"] {
        let line = format!(r#"{{"type":"identify","userId":"{not_email}"}}"#);
        assert_eq!(parse(&line).traits(), "{}", "{not_email}");
    }
    let e = event(r#"{"type":"identify","userId":"ann@example.com"}"#);
    assert_eq!(e.traits(), "{}", "off by default");
}

#[test]
fn channel_is_kept() {
    assert_eq!(event(r#"{"type":"identify","userId":"u","channel":"web"}"#).channel.as_deref(), Some("web"));
    assert_eq!(event(r#"{"type":"identify","userId":"u"}"#).channel, None);
}

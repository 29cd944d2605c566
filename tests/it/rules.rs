//! SPEC rules on small inputs written by the tests.

use crate::harness::*;

fn identify(id: &str, user: &str, traits: &str) -> String {
    format!(
        r#"{{"type":"identify","messageId":"{id}","userId":"{user}","traits":{traits},"receivedAt":"2024-02-01T10:00:00Z"}}"#
    ) + "\n"
}

#[test]
fn dedup_keeps_the_first_in_object_then_line_order() {
    let a = identify("m1", "u", r#"{"v":"a1"}"#) + &identify("m1", "u", r#"{"v":"a2"}"#);
    let b = identify("m1", "u", r#"{"v":"b","only_in_duplicate":1}"#) + &identify("m2", "u", r#"{"v":"b2"}"#);
    // Given in reverse: objects are still taken in lexicographic order.
    let dir = inputs(&[("z/b.ndjson", b.as_bytes()), ("a.ndjson", a.as_bytes())]);
    let wh = tempfile::tempdir().unwrap();
    let s = load(&[&dir.path().join("z"), &dir.path().join("a.ndjson")], wh.path(), &[], 0);
    assert_eq!((s.identifies_loaded, s.duplicates), (2, 2));
    assert!(!s.new_columns.contains_key("only_in_duplicate"), "a duplicate adds no column");
    let t = read_table(wh.path(), "identifies").unwrap();
    assert_eq!(cell(&t, "m1", "v").as_deref(), Some("a1"));
    assert!(t.schema().column_with_name("only_in_duplicate").is_none());
}

/// One object of several line batches, parsed on several threads: events
/// are still taken in line order, for dedup, for the order of new columns
/// and for the line numbers of rejects.
#[test]
fn line_order_holds_across_the_batches_of_one_object() {
    let n = 30_000;
    let mut text = String::new();
    for i in 0..n {
        match i {
            5 => text.push_str(&identify("dup", "u", r#"{"v":"first","c_early":1}"#)),
            12_000 => text.push_str(&identify("x1", "u", r#"{"c_middle":1}"#)),
            20_000 => text.push_str("not json\n"),
            25_000 => text.push_str(&identify("dup", "u", r#"{"v":"last","c_late":1}"#)),
            28_000 => text.push_str(&identify("x2", "u", r#"{"c_late":2}"#)),
            _ => text.push_str(&identify(&format!("m{i}"), "u", "{}")),
        }
    }
    let dir = inputs(&[("x.ndjson", text.as_bytes())]);
    let wh = tempfile::tempdir().unwrap();
    let s = load(&[dir.path()], wh.path(), &["--threads", "2"], 0);
    assert_eq!((s.identifies_loaded, s.duplicates, s.rejected), (n as u64 - 2, 1, 1));
    let t = read_table(wh.path(), "identifies").unwrap();
    assert_eq!(cell(&t, "dup", "v").as_deref(), Some("first"));
    let names: Vec<String> = t.schema().fields().iter().map(|f| f.name().clone()).collect();
    let at = |c: &str| names.iter().position(|n| n == c).unwrap();
    assert!(at("c_early") < at("c_middle") && at("c_middle") < at("c_late"), "{names:?}");
    let r = read_table(wh.path(), "rejects").unwrap();
    assert_eq!(int64s(&r, "line"), [20_001]);
}

#[test]
fn max_columns_discards_values_of_further_columns() {
    let line = identify("m1", "u", r#"{"a":1,"b":2,"c":3}"#) + &identify("m2", "u", r#"{"c":4,"a":5}"#);
    let dir = inputs(&[("x.ndjson", line.as_bytes())]);
    let wh = tempfile::tempdir().unwrap();
    let s = load(&[dir.path()], wh.path(), &["--max-columns", "2"], 0);
    assert_eq!(s.new_columns.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(s.discarded_values, 2);
    let d = read_table(wh.path(), "discards").unwrap();
    assert_eq!(strings(&d, "reason"), [Some("too_many_columns".into()), Some("too_many_columns".into())]);
    assert_eq!(strings(&d, "value"), [Some("3".into()), Some("4".into())]);
    let t = read_table(wh.path(), "identifies").unwrap();
    assert_eq!(cell(&t, "m2", "a").as_deref(), Some("5"));
    assert!(cell(&t, "m2", "traits").unwrap().contains("\"c\":4"), "traits keep everything");
}

#[test]
fn email_from_user_id_is_opt_in() {
    let line = identify("m1", "ann@example.com", r#"{"plan":"x"}"#);
    let dir = inputs(&[("x.ndjson", line.as_bytes())]);
    let wh = tempfile::tempdir().unwrap();
    load(&[dir.path()], wh.path(), &["--email-from-user-id"], 0);
    let t = read_table(wh.path(), "identifies").unwrap();
    assert_eq!(cell(&t, "m1", "email").as_deref(), Some("ann@example.com"));
    assert_eq!(cell(&t, "m1", "traits").as_deref(), Some(r#"{"plan":"x","email":"ann@example.com"}"#));
}

#[test]
fn a_columns_type_never_changes_across_runs() {
    let first = identify(
        "r1",
        "u",
        r#"{"age":30,"score":1.5,"label":"x","flag":true,"seen":"2024-01-01T00:00:00Z","big":1}"#,
    );
    let second = identify(
        "r2",
        "u",
        r#"{"age":1.5,"score":3,"label":12,"flag":"yes","seen":"soon","big":2,"fresh":true}"#,
    ) + &identify("r3", "u", r#"{"age":"7","label":true,"seen":"2024-02-02T02:00:00+02:00"}"#);
    let wh = tempfile::tempdir().unwrap();
    let dir1 = inputs(&[("one.ndjson", first.as_bytes())]);
    load(&[dir1.path()], wh.path(), &[], 0);
    let dir2 = inputs(&[("two.ndjson", second.as_bytes())]);
    let s = load(&[dir2.path()], wh.path(), &[], 0);
    assert_eq!(s.new_columns.keys().collect::<Vec<_>>(), ["fresh"]);
    assert_eq!(s.discarded_values, 4);
    let t = read_table(wh.path(), "identifies").unwrap();
    assert_eq!(t.num_rows(), 3);
    assert_eq!(cell(&t, "r2", "age"), None);
    assert_eq!(cell(&t, "r2", "score").as_deref(), Some("3.0"), "Int64 converts to Float64");
    assert_eq!(cell(&t, "r2", "label").as_deref(), Some("12"), "numbers keep their JSON text");
    assert_eq!(cell(&t, "r3", "label").as_deref(), Some("true"));
    assert_eq!(cell(&t, "r2", "flag"), None);
    assert_eq!(cell(&t, "r3", "seen").as_deref(), Some("2024-02-02T00:00:00Z"));
    assert_eq!(cell(&t, "r2", "fresh").as_deref(), Some("true"));
    let d = read_table(wh.path(), "discards").unwrap();
    let mut rows: Vec<_> = (0..d.num_rows())
        .map(|r| ["id", "column_name", "value", "reason"].map(|c| strings(&d, c)[r].clone().unwrap()))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ["r2", "age", "1.5", "type_mismatch"],
            ["r2", "flag", "\"yes\"", "type_mismatch"],
            ["r2", "seen", "\"soon\"", "type_mismatch"],
            ["r3", "age", "\"7\"", "type_mismatch"],
        ]
    );
}

#[test]
fn received_at_falls_back_to_the_objects_last_modified_time() {
    let line = r#"{"type":"identify","messageId":"m","userId":"u","sentAt":"2020-01-01T00:00:00Z","originalTimestamp":"2020-01-01T00:00:00Z"}"#;
    let dir = inputs(&[("x.ndjson", line.as_bytes())]);
    let modified = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_718_000_000);
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("x.ndjson"))
        .unwrap()
        .set_modified(modified)
        .unwrap();
    let wh = tempfile::tempdir().unwrap();
    let s = load(&[dir.path()], wh.path(), &[], 0);
    assert_eq!(s.partitions, ["received_date=2024-06-10"]);
    let t = read_table(wh.path(), "identifies").unwrap();
    assert_eq!(micros(&t, "m", "received_at"), Some(1_718_000_000_000_000));
    // No receivedAt field, so no skew correction: originalTimestamp.
    assert_eq!(micros(&t, "m", "timestamp"), Some(micros_of("2020-01-01T00:00:00Z")));
}

#[test]
fn globs_and_single_objects() {
    let line = |id: &str| identify(id, "u", "{}");
    let dir = inputs(&[
        ("logs/2024-01-01/a.ndjson", line("a").as_bytes()),
        ("logs/2024-01-02/b.ndjson.gz", line("b").as_bytes()),
        ("logs/2024-02-01/c.ndjson", line("c").as_bytes()),
        ("logs/2024-01-01/sub/d.ndjson", line("d").as_bytes()),
    ]);
    let wh = tempfile::tempdir().unwrap();
    let glob = dir.path().join("logs/2024-01-*/*.ndjson");
    let s = load(&[&glob], wh.path(), &[], 0);
    assert_eq!(s.files_seen, 1, "`*` stays within one folder");
    let glob = dir.path().join("logs/2024-01-*/**/*.ndjson*");
    let wh = tempfile::tempdir().unwrap();
    let s = load(&[&glob], wh.path(), &[], 0);
    assert_eq!(s.files_seen, 3);
    let wh = tempfile::tempdir().unwrap();
    let s = load(&[&dir.path().join("logs/2024-02-01/c.ndjson")], wh.path(), &[], 0);
    assert_eq!((s.files_seen, s.identifies_loaded), (1, 1));
    let wh = tempfile::tempdir().unwrap();
    let s = load(&[&dir.path().join("nothing-here")], wh.path(), &[], 0);
    assert_eq!(s.files_seen, 0);
    assert!(wh.path().read_dir().unwrap().all(|e| e.unwrap().file_name() != "identifies"));
}

#[test]
fn max_line_bytes_is_a_flag() {
    let text =
        identify("short", "u", "{}") + &identify("long-enough-to-be-rejected", "u", r#"{"k":"vvvvvvvvvv"}"#);
    let limit = text.lines().next().unwrap().len().to_string();
    let dir = inputs(&[("x.ndjson", text.as_bytes())]);
    let wh = tempfile::tempdir().unwrap();
    let s = load(&[dir.path()], wh.path(), &["--max-line-bytes", &limit], 0);
    assert_eq!((s.identifies_loaded, s.rejected), (1, 1));
    assert_eq!(s.rejected_by_reason["line_too_long"], 1);
}

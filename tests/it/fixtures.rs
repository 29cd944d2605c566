//! `load` over the bundled `fixtures/logs`, read back row by row.

use sha2::{Digest, Sha256};

use crate::harness::*;

#[test]
fn fixture_summary_counts_every_line_once() {
    let wh = tempfile::tempdir().unwrap();
    let s = load(&[&fixtures().join("logs")], wh.path(), &[], 0);
    assert_eq!(s.files_seen, 9);
    assert_eq!(s.files_loaded, 9);
    assert!(s.files_failed.is_empty());
    assert_eq!(
        (s.lines, s.blank_lines, s.identifies_loaded, s.non_identify, s.duplicates, s.rejected),
        (37, 2, 18, 3, 2, 12)
    );
    let by_reason: Vec<(&str, u64)> = s.rejected_by_reason.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        by_reason,
        [
            ("invalid_context", 1),
            ("invalid_identity", 1),
            ("invalid_json", 1),
            ("invalid_timestamp", 1),
            ("invalid_traits", 2),
            ("invalid_type", 2),
            ("invalid_utf8", 1),
            ("line_too_long", 1),
            ("missing_identity", 1),
            ("not_an_object", 1),
        ]
    );
    assert_eq!(s.discarded_values, 2);
    let bytes: u64 = walk(&fixtures().join("logs")).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert_eq!(s.bytes_read, bytes);
    assert_eq!(s.new_columns["score"], "Float64");
    assert_eq!(s.new_columns["logins"], "Utf8", "3, 1 and \"many\" join to Utf8");
    assert_eq!(s.new_columns["created_at"], "Utf8", "a timestamp and numbers join to Utf8");
    assert_eq!(s.new_columns["verified"], "Boolean");
    assert_eq!(s.new_columns["company_size"], "Int64");
    assert_eq!(s.new_columns["2fa_enabled"], "Boolean");
    assert_eq!(s.new_columns.keys().next().map(String::as_str), Some("plan"), "first seen first");
    let mtime = mtime_date(&fixtures().join("logs/edge/no-received-at.ndjson"));
    let mut partitions = vec!["received_date=2024-01-15".to_owned(), "received_date=2024-01-16".to_owned()];
    partitions.push(format!("received_date={mtime}"));
    partitions.sort();
    partitions.dedup();
    assert_eq!(s.partitions, partitions);
    assert_eq!(s.users, None);
}

#[test]
fn fixture_identifies_rows() {
    let wh = tempfile::tempdir().unwrap();
    load(&[&fixtures().join("logs")], wh.path(), &[], 0);
    let t = read_table(wh.path(), "identifies").unwrap();
    assert_eq!(t.num_rows(), 18);
    let c = |id: &str, col: &str| cell(&t, id, col);
    let s = |v: &str| Some(v.to_owned());

    // Segment: every fixed column, flattened context and traits.
    assert_eq!(c("seg-001", "user_id"), s("user-1"));
    assert_eq!(c("seg-001", "anonymous_id"), s("anon-1"));
    assert_eq!(micros(&t, "seg-001", "timestamp"), Some(micros_of("2024-01-15T09:00:00.123Z")));
    assert_eq!(micros(&t, "seg-001", "received_at"), Some(micros_of("2024-01-15T09:00:02.5Z")));
    assert_eq!(micros(&t, "seg-001", "original_timestamp"), Some(micros_of("2024-01-15T09:00:00Z")));
    assert_eq!(micros(&t, "seg-001", "sent_at"), Some(micros_of("2024-01-15T09:00:01Z")));
    assert_eq!(micros(&t, "seg-001", "loaded_at"), Some(micros_of(NOW)));
    assert_eq!(c("seg-001", "channel"), s("client"));
    assert_eq!(
        c("seg-001", "traits"),
        s(
            r#"{"email":"ada@example.com","firstName":"Ada","lastName":"Lovelace","plan":"pro","logins":3,"score":4.5,"verified":true,"createdAt":"2023-06-01T10:00:00Z","address":{"city":"London","postalCode":"NW1"},"tags":["math","poetry"]}"#
        )
    );
    assert_eq!(c("seg-001", "first_name"), s("Ada"));
    assert_eq!(c("seg-001", "name"), s("Ada Lovelace"), "name filled from first and last name");
    assert_eq!(c("seg-001", "logins"), s("3"));
    assert_eq!(c("seg-001", "score"), s("4.5"));
    assert_eq!(c("seg-001", "verified"), s("true"));
    assert_eq!(c("seg-001", "created_at"), s("2023-06-01T10:00:00Z"), "timestamps keep their input string");
    assert_eq!(c("seg-001", "address_city"), s("London"));
    assert_eq!(c("seg-001", "address_postal_code"), s("NW1"));
    assert_eq!(c("seg-001", "tags"), s(r#"["math","poetry"]"#));
    assert_eq!(c("seg-001", "context_ip"), s("203.0.113.7"));
    assert_eq!(c("seg-001", "context_library_name"), s("analytics.js"));
    assert_eq!(c("seg-001", "context_user_agent"), s("Mozilla/5.0"));
    assert_eq!(c("seg-001", "context_page_path"), s("/signup"));

    // Anonymous only, with client clock-skew correction.
    assert_eq!(c("seg-004", "user_id"), None);
    assert_eq!(micros(&t, "seg-004", "timestamp"), Some(micros_of("2024-01-15T07:59:58Z")));
    assert_eq!(c("seg-004", "score"), s("2.0"), "Int64 joins Float64");
    assert_eq!(micros(&t, "seg-005", "timestamp"), Some(micros_of("2024-01-15T16:30:00Z")));
    assert_eq!(c("seg-005", "name"), s("Grace Hopper"));
    assert_eq!(c("seg-005", "logins"), s("many"));

    // Integer user id, reserved names.
    assert_eq!(c("seg-006", "user_id"), s("42"));
    assert_eq!(c("seg-006", "_user_id"), s("shadow"));
    assert_eq!(c("seg-006", "_context_ip"), s("x"));
    assert_eq!(c("seg-006", "country_of_birth"), s("NZ"));
    assert_eq!(c("seg-006", "2fa_enabled"), s("true"));

    // RudderStack: traits in context.traits, user id from the `id` trait.
    assert_eq!(c("rs-001", "user_id"), s("rs-user-1"));
    assert_eq!(c("rs-001", "_id"), s("rs-user-1"));
    assert_eq!(c("rs-001", "name"), s("Linus Torvalds"));
    assert_eq!(c("rs-001", "context_os_name"), s("Linux"));
    assert_eq!(c("rs-001", "context_library_name"), s("rudder-sdk-js"));
    assert_eq!(micros(&t, "rs-001", "timestamp"), Some(micros_of("2024-01-15T13:00:00.2Z")));
    assert_eq!(c("rs-002", "plan"), s("top-plan"), "top-level traits win");
    assert_eq!(c("rs-002", "traits"), s(r#"{"plan":"top-plan","company":{"name":"Acme","size":50}}"#));
    assert_eq!(c("rs-002", "company_size"), s("50"));
    assert_eq!(micros(&t, "rs-002", "timestamp"), Some(micros_of("2024-01-15T14:00:00.123456Z")));

    // Customer.io: snake_case traits, numbers in a Utf8 column keep their text.
    assert_eq!(c("cio-001", "name"), s("Margaret Hamilton"));
    assert_eq!(c("cio-001", "created_at"), s("1700000000"));
    assert_eq!(c("cio-002", "created_at"), s("1700000100.5"));
    assert_eq!(c("cio-001", "email"), None, "--email-from-user-id is off by default");

    // Compressed and edge-case files.
    for id in ["gz-001", "gz-002", "zst-001", "zst-002", "edge-001", "edge-002", "after-long"] {
        assert!(c(id, "id").is_some(), "{id}");
    }
    assert_eq!(c("edge-001", "note"), s("BOM and CRLF"));
    let line = br#"{"type":"identify","userId":"no-message-id","traits":{"note":"id is a hash of the line"},"receivedAt":"2024-01-15T20:01:00Z"}"#;
    let hashed = hex::encode(Sha256::digest(line));
    assert_eq!(c(&hashed, "user_id"), s("no-message-id"));

    // No receivedAt: the object's last-modified time.
    let path = fixtures().join("logs/edge/no-received-at.ndjson");
    let mtime = chrono::DateTime::<chrono::Utc>::from(std::fs::metadata(&path).unwrap().modified().unwrap());
    assert_eq!(micros(&t, "mtime-001", "received_at"), Some(mtime.timestamp_micros()));
    assert_eq!(micros(&t, "mtime-001", "timestamp"), Some(mtime.timestamp_micros()));

    // The first of two equal message ids wins.
    assert_eq!(c("seg-001", "plan"), s("pro"));
}

#[test]
fn fixture_rejects_keep_their_bytes() {
    let wh = tempfile::tempdir().unwrap();
    load(&[&fixtures().join("logs")], wh.path(), &[], 0);
    let t = read_table(wh.path(), "rejects").unwrap();
    assert_eq!(t.num_rows(), 12);
    let path = fixtures().join("logs/bad/rejects.ndjson");
    let source = format!("file://{}", path.display());
    let bytes = std::fs::read(&path).unwrap();
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let reasons = [
        "invalid_utf8",
        "invalid_json",
        "not_an_object",
        "invalid_type",
        "invalid_type",
        "invalid_identity",
        "invalid_context",
        "invalid_traits",
        "invalid_traits",
        "invalid_timestamp",
        "missing_identity",
    ];
    let sources = strings(&t, "source");
    let line_numbers = int64s(&t, "line");
    let reason_col = strings(&t, "reason");
    let raw = arrow::array::AsArray::as_binary::<i32>(t.column_by_name("raw").unwrap());
    let mut seen = 0;
    for row in 0..t.num_rows() {
        if sources[row].as_deref() != Some(source.as_str()) {
            continue;
        }
        let n = line_numbers[row] as usize;
        assert_eq!(reason_col[row].as_deref(), Some(reasons[n - 1]), "line {n}");
        assert_eq!(raw.value(row), lines[n - 1], "line {n} bytes");
        seen += 1;
    }
    assert_eq!(seen, 11);
    let long = (0..t.num_rows()).find(|&r| reason_col[r].as_deref() == Some("line_too_long")).unwrap();
    assert_eq!(raw.value(long).len(), 1 << 20, "the first --max-line-bytes bytes are kept");
    assert!(raw.value(long).starts_with(br#"{"type":"identify","userId":"long""#));
    let message = strings(&t, "message")[long].clone().unwrap();
    let full = br#"{"type":"identify","userId":"long","traits":{"blob":""#.len() + (1 << 20) + 10 + 3;
    assert!(message.contains(&full.to_string()), "{message} names the full length {full}");
    assert!(strings(&t, "loaded_at").iter().all(|v| v.as_deref() == Some("2025-03-01T12:00:00Z")));
    let files = table_files(wh.path(), "rejects");
    assert!(files[0].to_string_lossy().contains("received_date=2025-03-01"), "by the run's date");
}

#[test]
fn fixture_discards() {
    let wh = tempfile::tempdir().unwrap();
    load(&[&fixtures().join("logs")], wh.path(), &[], 0);
    let t = read_table(wh.path(), "discards").unwrap();
    let rows: Vec<_> = (0..t.num_rows())
        .map(|r| {
            ["id", "column_name", "value", "reason"].map(|c| strings(&t, c)[r].clone().unwrap_or_default())
        })
        .collect();
    assert_eq!(
        rows,
        [
            ["bad-ok-001", "context", "1", "invalid_column_name"],
            ["bad-ok-001", "", r#""no name""#, "invalid_column_name"],
        ]
    );
}

pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn mtime_date(path: &std::path::Path) -> String {
    let mtime = chrono::DateTime::<chrono::Utc>::from(std::fs::metadata(path).unwrap().modified().unwrap());
    mtime.format("%Y-%m-%d").to_string()
}

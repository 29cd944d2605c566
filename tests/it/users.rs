//! `run`, `build-users` and `query` on fixtures and generated events, the
//! users table read back, and builds killed midway.

use std::process::Command;
use std::time::Instant;

use arrow::datatypes::DataType;

use crate::harness::*;

fn run_fixtures(wh: &std::path::Path) -> identify_loader::summary::Summary {
    let r = run(&[
        "run",
        "--input",
        fixtures().join("logs").to_str().unwrap(),
        "--warehouse",
        wh.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.summary()
}

pub fn read_file(path: &std::path::Path) -> arrow::array::RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    crate::harness::in_key_order(&batches)
}

#[test]
fn run_builds_users_from_the_fixtures() {
    let wh = tempfile::tempdir().unwrap();
    let s = run_fixtures(wh.path());
    assert_eq!(s.users, Some(15));
    assert_eq!(s.identifies_loaded, 18);
    let users = read_file(&wh.path().join("users/users.parquet"));
    assert_eq!(users.num_rows(), 15);
    let schema = users.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names[..5], ["id", "anonymous_ids", "first_seen_at", "last_seen_at", "identify_count"]);
    assert!(names.iter().all(|n| !n.starts_with("context_")), "context columns are not user traits");
    assert!(names.contains(&"plan") && names.contains(&"_user_id"));
    assert!(
        matches!(schema.field_with_name("anonymous_ids").unwrap().data_type(), DataType::List(f) if f.data_type() == &DataType::Utf8)
    );
    assert_eq!(schema.field_with_name("identify_count").unwrap().data_type(), &DataType::Int64);
    assert_eq!(schema.field_with_name("score").unwrap().data_type(), &DataType::Float64);
    assert_eq!(schema.field_with_name("verified").unwrap().data_type(), &DataType::Boolean);
    assert_eq!(
        schema.field_with_name("first_seen_at").unwrap().data_type(),
        &identify_loader::pipeline::typing::timestamp_type()
    );
    let c = |id: &str, col: &str| cell(&users, id, col);
    assert_eq!(c("user-1", "anonymous_ids").as_deref(), Some("[anon-1]"));
    assert_eq!(c("user-1", "plan").as_deref(), Some("pro"), "the replayed duplicate is not loaded");
    assert_eq!(
        c("user-2", "identify_count").as_deref(),
        Some("2"),
        "the anonymous identify of anon-2 counts"
    );
    assert_eq!(c("user-2", "first_seen_at").as_deref(), Some("2024-01-15T07:59:58Z"));
    assert_eq!(c("user-2", "score").as_deref(), Some("7.0"));
    assert_eq!(c("user-2", "logins").as_deref(), Some("many"));
    assert_eq!(c("rs-user-1", "name").as_deref(), Some("Linus Torvalds"));
    assert_eq!(c("42", "anonymous_ids").as_deref(), Some("[]"));
    let map = read_file(&wh.path().join("identity_map/identity_map.parquet"));
    assert_eq!(strings(&map, "anonymous_id").len(), 4);
}

#[test]
fn build_users_alone_and_query() {
    let wh = tempfile::tempdir().unwrap();
    let w = wh.path().to_str().unwrap();
    load(&[&fixtures().join("logs")], wh.path(), &[], 0);
    let r = run(&["build-users", "--warehouse", w]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = r.summary();
    assert_eq!((s.users, s.lines, s.files_seen, s.identifies_loaded), (Some(15), 0, 0, 0));

    let r = run(&[
        "query",
        "--warehouse",
        w,
        "--format",
        "csv",
        "SELECT id, identify_count FROM users WHERE id LIKE 'user-%' ORDER BY id",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "id,identify_count\nuser-1,1\nuser-2,2\n");
    let r = run(&[
        "query",
        "--warehouse",
        w,
        "--format",
        "json",
        "SELECT count(*) AS n FROM identifies WHERE received_date = '2024-01-16'",
    ]);
    assert_eq!(r.stdout.trim(), r#"{"n":3}"#);
    let sql = "SELECT (SELECT count(*) FROM rejects) AS r, (SELECT count(*) FROM discards) AS d, (SELECT count(*) FROM identity_map) AS m";
    let r = run(&["query", "--warehouse", w, sql]);
    assert!(r.stdout.contains("| 12 | 2 | 4 |"), "{}", r.stdout);
    let r = run(&["query", "--warehouse", w, "SELEC nonsense"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.trim().lines().count(), 1, "one clear line: {}", r.stderr);
}

#[test]
fn build_users_on_an_empty_warehouse_writes_empty_tables() {
    let wh = tempfile::tempdir().unwrap();
    let r = run(&["build-users", "--warehouse", wh.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.summary().users, Some(0));
}

/// Events for `users` users, `per_user` identifies each, half anonymous first.
fn events(users: usize, per_user: usize, day: u32) -> String {
    let mut out = String::new();
    for u in 0..users {
        for e in 0..per_user {
            let (user, anon) = if e == 0 {
                (String::from("null"), format!("\"a{u}\""))
            } else {
                (format!("\"u{u}\""), format!("\"a{u}\""))
            };
            out.push_str(&format!(
                r#"{{"type":"identify","messageId":"d{day}-u{u}-e{e}","userId":{user},"anonymousId":{anon},"traits":{{"plan":"p{e}","seats":{e},"email":"u{u}@x.io"}},"timestamp":"2024-01-{day:02}T00:{:02}:00Z","receivedAt":"2024-01-{day:02}T01:00:00Z"}}"#,
                e % 60
            ));
            out.push('\n');
        }
    }
    out
}

#[test]
fn a_killed_build_leaves_the_previous_or_the_new_users() {
    let wh = tempfile::tempdir().unwrap();
    let w = wh.path().to_str().unwrap();
    let first = inputs(&[("day1.ndjson", events(3000, 3, 1).as_bytes())]);
    assert_eq!(run(&["run", "--input", first.path().to_str().unwrap(), "--warehouse", w]).code, 0);
    let users_file = wh.path().join("users/users.parquet");
    let old = read_file(&users_file);
    let second = inputs(&[("day2.ndjson", events(6000, 2, 2).as_bytes())]);
    load(&[second.path()], wh.path(), &[], 0);

    let started = Instant::now();
    assert_eq!(run(&["build-users", "--warehouse", w]).code, 0);
    let build = started.elapsed();
    let new = read_file(&users_file);
    assert_ne!(old.num_rows(), new.num_rows());
    // Go back to the old users, then kill rebuilds at instants spread over a build.
    std::fs::write(&users_file, parquet_bytes(&old)).unwrap();
    for i in 0..8u32 {
        let delay = build.mul_f64(f64::from(i) / 6.0);
        let mut child = Command::new(BIN).args(["build-users", "--warehouse", w, "-q"]).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let now = read_file(&users_file);
        assert!(
            now == old || now == new,
            "after a kill at {delay:?} users is neither the old nor the new table"
        );
        let leftovers: Vec<_> =
            std::fs::read_dir(wh.path().join("users")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(
            leftovers.iter().filter(|n| n.to_string_lossy().ends_with(".parquet")).count() == 1,
            "{leftovers:?}"
        );
    }
    assert_eq!(run(&["build-users", "--warehouse", w]).code, 0);
    assert_eq!(read_file(&users_file), new);
    let leftovers = std::fs::read_dir(wh.path().join("users")).unwrap().count();
    assert_eq!(leftovers, 1, "partial uploads are cleaned up");
}

fn parquet_bytes(batch: &arrow::array::RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
    out
}

//! SPEC §7: re-runs, changed objects, the dedup window, retries of failed
//! objects, concurrent runs, runs killed at random instants, backfills.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use arrow::array::RecordBatch;
use sha2::{Digest, Sha256};

use crate::harness::*;

/// Every file of the warehouse and a hash of its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    crate::fixtures::walk(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().display().to_string(),
                hex::encode(Sha256::digest(std::fs::read(&p).unwrap())),
            )
        })
        .collect()
}

fn run_cmd(inputs: &[&Path], wh: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["run".to_owned(), "--warehouse".into(), wh.display().to_string(), "--input".into()];
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn rerunning_loads_nothing_and_changes_no_byte() {
    let wh = tempfile::tempdir().unwrap();
    let logs = fixtures().join("logs");
    let first = run_cmd(&[&logs], wh.path(), &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before = snapshot(wh.path());
    let again = run_cmd(&[&logs], wh.path(), &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let s = again.summary();
    assert_eq!((s.files_seen, s.files_skipped, s.files_loaded, s.lines, s.bytes_read), (9, 9, 0, 0, 0));
    assert_eq!(s.users, Some(15));
    assert_eq!(snapshot(wh.path()), before, "every table byte for byte");
}

#[test]
fn a_changed_object_is_read_again_and_its_loaded_events_are_duplicates() {
    let line = |id: &str| {
        format!(
            r#"{{"type":"identify","messageId":"{id}","userId":"u","receivedAt":"2024-05-01T00:00:00Z"}}"#
        ) + "\n"
    };
    let dir = inputs(&[("a.ndjson", (line("m1") + &line("m2")).as_bytes())]);
    let wh = tempfile::tempdir().unwrap();
    load(&[dir.path()], wh.path(), &[], 0);
    std::fs::write(dir.path().join("a.ndjson"), line("m1") + &line("m2") + &line("m3")).unwrap();
    let s = load(&[dir.path()], wh.path(), &[], 0);
    assert_eq!((s.files_loaded, s.files_skipped, s.duplicates, s.identifies_loaded), (1, 0, 2, 1));
    let t = read_table(wh.path(), "identifies").unwrap();
    let mut ids: Vec<_> = strings(&t, "id").into_iter().flatten().collect();
    ids.sort();
    assert_eq!(ids, ["m1", "m2", "m3"]);
}

#[test]
fn duplicates_across_runs_only_within_the_window() {
    let at = |day: &str| {
        format!(
            r#"{{"type":"identify","messageId":"m1","userId":"u","receivedAt":"2024-01-{day}T12:00:00Z"}}"#
        )
    };
    let wh = tempfile::tempdir().unwrap();
    load(&[inputs(&[("a.ndjson", at("10").as_bytes())]).path()], wh.path(), &[], 0);
    // 7 days later, to the microsecond: inside the default window.
    let s = load(&[inputs(&[("b.ndjson", at("17").as_bytes())]).path()], wh.path(), &[], 0);
    assert_eq!((s.duplicates, s.identifies_loaded), (1, 0));
    let s = load(&[inputs(&[("c.ndjson", at("03").as_bytes())]).path()], wh.path(), &[], 0);
    assert_eq!(s.duplicates, 1, "the window looks both ways");
    let s = load(
        &[inputs(&[("d.ndjson", at("20").as_bytes())]).path()],
        wh.path(),
        &["--dedup-window", "10days"],
        0,
    );
    assert_eq!(s.duplicates, 1, "exactly the window apart");
    let s = load(&[inputs(&[("e.ndjson", at("25").as_bytes())]).path()], wh.path(), &[], 0);
    assert_eq!((s.duplicates, s.identifies_loaded), (0, 1), "15 days later is a new event");
}

#[test]
fn failed_objects_are_retried_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["corrupt.ndjson.gz", "good.ndjson"] {
        std::fs::copy(fixtures().join("failing").join(name), dir.path().join(name)).unwrap();
    }
    let wh = tempfile::tempdir().unwrap();
    let s = load(&[dir.path()], wh.path(), &[], 3);
    assert_eq!((s.files_loaded, s.files_failed.len()), (1, 1));
    let s = load(&[dir.path()], wh.path(), &[], 3);
    assert_eq!((s.files_skipped, s.files_failed.len()), (1, 1), "the failed object is read again");
    let fixed: String = (0..2000)
        .map(|i| format!(r#"{{"type":"identify","messageId":"fail-{i}","userId":"fail-user","receivedAt":"2024-01-15T10:00:00Z"}}"#) + "\n")
        .collect();
    std::fs::write(dir.path().join("corrupt.ndjson.gz"), fixed).unwrap();
    let s = load(&[dir.path()], wh.path(), &[], 0);
    assert_eq!((s.files_loaded, s.identifies_loaded, s.duplicates), (1, 1999, 1));
}

/// `count` files of `per_file` identifies over three days.
fn generated(count: usize, per_file: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in 0..count {
        let mut text = String::new();
        for e in 0..per_file {
            let (u, day) = ((f * 7 + e) % 500, 10 + f % 3);
            let anon = if e % 3 == 0 { format!(r#","anonymousId":"a{u}""#) } else { String::new() };
            let user = if e % 5 == 0 { String::new() } else { format!(r#","userId":"u{u}""#) };
            let anon =
                if user.is_empty() && anon.is_empty() { format!(r#","anonymousId":"x{e}""#) } else { anon };
            text.push_str(&format!(
                r#"{{"type":"identify","messageId":"f{f}-e{e}"{user}{anon},"traits":{{"plan":"p{}","seats":{e},"f{}":true}},"timestamp":"2024-02-{day}T{:02}:00:00Z","receivedAt":"2024-02-{day}T23:00:00Z"}}"#,
                e % 4,
                f % 4,
                e % 24
            ));
            text.push('\n');
            if e % 500 == 7 {
                text.push_str("not json\n");
            }
        }
        std::fs::write(dir.path().join(format!("part-{f:03}.ndjson")), text).unwrap();
    }
    dir
}

/// A table's rows sorted, without `loaded_at` (the run's start differs).
fn rows(wh: &Path, table: &str) -> Option<String> {
    let batch = read_table(wh, table)?;
    Some(sorted_text(&batch))
}

fn sorted_text(batch: &RecordBatch) -> String {
    let keep: Vec<usize> =
        (0..batch.num_columns()).filter(|&i| batch.schema().field(i).name() != "loaded_at").collect();
    let batch = batch.project(&keep).unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&[batch]).unwrap().to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    lines.join("\n")
}

fn derived(wh: &Path, table: &str) -> String {
    let file = wh.join(table).join(format!("{table}.parquet"));
    let bytes = bytes::Bytes::from(std::fs::read(file).unwrap());
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    if batches.is_empty() {
        return String::new();
    }
    arrow::util::pretty::pretty_format_batches(&[crate::harness::in_key_order(&batches)]).unwrap().to_string()
}

fn all_tables(wh: &Path) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> =
        ["identifies", "rejects", "discards"].iter().map(|t| rows(wh, t)).collect();
    out.extend(["users", "identity_map"].iter().map(|t| Some(derived(wh, t))));
    out
}

fn spawn_run(input: &Path, wh: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args(["run", "-q", "--input", input.to_str().unwrap(), "--warehouse", wh.to_str().unwrap()])
        .args(extra)
        .env("IDENTIFY_LOADER_NOW", NOW)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn runs_killed_at_random_instants_end_as_an_uninterrupted_run() {
    let input = generated(12, 1500);
    let reference = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let r = run_cmd(&[input.path()], reference.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let whole = started.elapsed();
    let want = all_tables(reference.path());

    // Instants spread over a whole run, in a fixed pseudo-random order.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for trial in 0..8 {
        let wh = tempfile::tempdir().unwrap();
        let spill = tempfile::tempdir().unwrap();
        let spill_args = ["--spill-dir", spill.path().to_str().unwrap()];
        let kills = 1 + trial % 3;
        for _ in 0..kills {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let delay = whole.mul_f64((seed % 1000) as f64 / 1000.0 * 1.1);
            let mut child = spawn_run(input.path(), wh.path(), &spill_args);
            std::thread::sleep(delay);
            let _ = child.kill();
            let _ = child.wait();
        }
        let r = run_cmd(&[input.path()], wh.path(), &spill_args);
        assert_eq!(r.code, 0, "trial {trial}: {}", r.stderr);
        assert_eq!(all_tables(wh.path()), want, "trial {trial} with {kills} kills");
        // A run killed in the instant it makes its folder leaves it empty
        // (but for an unlocked `.lock`), as no run can tell it from one
        // being made; anything spilled must be gone.
        let spilled: Vec<_> = std::fs::read_dir(spill.path())
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_dir(e.path()).map_or(true, |d| d.flatten().any(|f| f.file_name() != ".lock"))
            })
            .map(|e| e.file_name())
            .collect();
        assert!(spilled.is_empty(), "trial {trial}: the killed runs' spill folders are removed: {spilled:?}");
        let staging = wh.path().join("_identify_loader/staging");
        let left = std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "trial {trial}: staged files of dead runs are cleaned up");
        assert!(!wh.path().join("_identify_loader/lock.json").exists());
    }
}

#[test]
fn two_runs_at_once_never_both_commit() {
    let input = generated(6, 1500);
    for _ in 0..3 {
        let wh = tempfile::tempdir().unwrap();
        let a = spawn_run(input.path(), wh.path(), &[]);
        let b = spawn_run(input.path(), wh.path(), &[]);
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let codes = [a.status.code().unwrap(), b.status.code().unwrap()];
        assert!(codes.contains(&0), "{codes:?}");
        for out in [&a, &b] {
            if out.status.code() == Some(1) {
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(
                    stderr.contains("in use by run") || stderr.contains("another run committed"),
                    "{stderr}"
                );
            }
        }
        let t = read_table(wh.path(), "identifies").unwrap();
        let mut ids: Vec<_> = strings(&t, "id").into_iter().flatten().collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "no event twice");
        assert_eq!(n, 6 * 1500);
    }
}

#[test]
fn a_backfill_gives_the_users_of_loading_in_time_order() {
    let newer = r#"{"type":"identify","messageId":"n1","userId":"u1","anonymousId":"a1","traits":{"plan":"new"},"timestamp":"2024-03-02T00:00:00Z","receivedAt":"2024-03-02T00:00:00Z"}"#;
    let older = r#"{"type":"identify","messageId":"o1","userId":"u2","anonymousId":"a1","traits":{"plan":"old","seats":3},"timestamp":"2024-01-02T00:00:00Z","receivedAt":"2024-01-02T00:00:00Z"}
{"type":"identify","messageId":"o2","userId":"u1","traits":{"plan":"older"},"timestamp":"2024-01-01T00:00:00Z","receivedAt":"2024-01-01T00:00:00Z"}"#;
    let new_dir = inputs(&[("new.ndjson", newer.as_bytes())]);
    let old_dir = inputs(&[("old.ndjson", older.as_bytes())]);
    let in_order = tempfile::tempdir().unwrap();
    assert_eq!(run_cmd(&[old_dir.path()], in_order.path(), &[]).code, 0);
    assert_eq!(run_cmd(&[new_dir.path()], in_order.path(), &[]).code, 0);
    let backfilled = tempfile::tempdir().unwrap();
    assert_eq!(run_cmd(&[new_dir.path()], backfilled.path(), &[]).code, 0);
    assert_eq!(run_cmd(&[old_dir.path()], backfilled.path(), &[]).code, 0);
    // Column order may differ (first seen first), values may not.
    let users = |wh: &Path| {
        let batch = crate::users::read_file(&wh.join("users/users.parquet"));
        let mut names: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        names.sort();
        names.iter().map(|n| (n.clone(), strings(&batch, n))).collect::<Vec<_>>()
    };
    assert_eq!(users(in_order.path()), users(backfilled.path()));
    let u = users(backfilled.path());
    let plan = &u.iter().find(|(n, _)| n == "plan").unwrap().1;
    assert_eq!(plan, &[Some("new".to_owned()), Some("old".to_owned())]);
    assert!(
        derived(backfilled.path(), "identity_map").contains("| a1           | u2      |"),
        "the earliest link wins"
    );
}

#[test]
fn the_dedup_index_reads_only_the_window() {
    // A warehouse with a partition far outside the window: corrupting it
    // must not matter to a run whose events are elsewhere in time.
    let wh = tempfile::tempdir().unwrap();
    let old = r#"{"type":"identify","messageId":"m","userId":"u","receivedAt":"2020-01-01T00:00:00Z"}"#;
    load(&[inputs(&[("a.ndjson", old.as_bytes())]).path()], wh.path(), &[], 0);
    let partition = wh.path().join("identifies/received_date=2020-01-01");
    for file in std::fs::read_dir(&partition).unwrap() {
        std::fs::write(file.unwrap().path(), b"not parquet").unwrap();
    }
    let new = r#"{"type":"identify","messageId":"m","userId":"u","receivedAt":"2024-01-01T00:00:00Z"}"#;
    let s = load(&[inputs(&[("b.ndjson", new.as_bytes())]).path()], wh.path(), &[], 0);
    assert_eq!(s.identifies_loaded, 1);
}

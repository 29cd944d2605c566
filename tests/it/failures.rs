//! Source objects that cannot be read to their end, and exit codes.

use crate::harness::*;

#[test]
fn failed_objects_contribute_nothing_and_exit_3() {
    let wh = tempfile::tempdir().unwrap();
    let s = load(&[&fixtures().join("failing")], wh.path(), &[], 3);
    let failed: Vec<_> =
        s.files_failed.iter().map(|f| f.source.rsplit('/').next().unwrap().to_owned()).collect();
    assert_eq!(failed, ["corrupt.ndjson.gz", "truncated.ndjson.gz", "truncated.ndjson.zst"]);
    assert!(s.files_failed.iter().all(|f| !f.error.is_empty()));
    assert_eq!((s.files_seen, s.files_loaded), (4, 1));
    // good.ndjson repeats a message id of corrupt.ndjson.gz, read before it:
    // the failed object's ids do not count, so it loads.
    assert_eq!((s.lines, s.identifies_loaded, s.duplicates), (1, 1, 0));
    let t = read_table(wh.path(), "identifies").unwrap();
    assert_eq!(strings(&t, "id"), [Some("fail-0".to_owned())]);
    assert_eq!(s.bytes_read, std::fs::metadata(fixtures().join("failing/good.ndjson")).unwrap().len());
}

#[test]
fn usage_errors_exit_2() {
    let wh = tempfile::tempdir().unwrap();
    let w = wh.path().to_str().unwrap();
    assert_eq!(run(&["load", "--warehouse", w]).code, 2, "--input is required");
    assert_eq!(run(&["frobnicate"]).code, 2);
    let r = run(&["load", "--warehouse", w, "--input", "x", "--max-line-bytes", "lots"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--max-line-bytes"), "{}", r.stderr);
}

#[test]
fn fatal_errors_exit_1_and_commit_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_folder = dir.path().join("file");
    std::fs::write(&not_a_folder, b"x").unwrap();
    let r = run(&["load", "--warehouse", not_a_folder.to_str().unwrap(), "--input", "fixtures/logs"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("error"), "{}", r.stderr);
}

#[test]
fn reject_ratio_above_the_limit_exits_3_after_committing() {
    let wh = tempfile::tempdir().unwrap();
    let s = load(&[&fixtures().join("logs/bad")], wh.path(), &["--max-reject-ratio", "0.5"], 3);
    assert_eq!(s.identifies_loaded, 2);
    assert_eq!(read_table(wh.path(), "identifies").unwrap().num_rows(), 2);
    load(&[&fixtures().join("logs/bad")], tempfile::tempdir().unwrap().path(), &[], 0);
}

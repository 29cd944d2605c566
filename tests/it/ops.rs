//! What on-call engineers and analysts see: `--dry-run`, `runs`, `schema`,
//! JSON logs, no progress bar when stderr is not a terminal.

use crate::harness::*;

/// Replaces the values that change from run to run.
fn filtered(text: &str) -> String {
    let run_id = regex_lite(text, "2025");
    let mut out = text.to_owned();
    for id in run_id {
        out = out.replace(&id, "<run_id>");
    }
    out.lines()
        .map(|l| {
            let mut line = l.to_owned();
            for key in ["\"started_at\":\"", "\"ended_at\":\"", "\"first_seen_at\":\""] {
                if let Some(i) = line.find(key) {
                    let start = i + key.len();
                    let end = start + line[start..].find('"').unwrap_or(0);
                    line.replace_range(start..end, "<time>");
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Run ids (`YYYYMMDDTHHMMSSZ-xxxxxxxx`) starting with `year`.
fn regex_lite(text: &str, year: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(year) {
        let candidate: String = rest[i..].chars().take(25).collect();
        if candidate.len() == 25 && candidate.as_bytes()[8] == b'T' && candidate.as_bytes()[16] == b'-' {
            ids.push(candidate);
        }
        rest = &rest[i + 4..];
    }
    ids
}

fn two_runs() -> tempfile::TempDir {
    let wh = tempfile::tempdir().unwrap();
    load(&[&fixtures().join("logs/segment")], wh.path(), &[], 0);
    load(&[&fixtures().join("logs")], wh.path(), &[], 0);
    wh
}

#[test]
fn dry_run_lists_objects_and_writes_nothing() {
    let absent = tempfile::tempdir().unwrap().path().join("not-yet");
    let logs = fixtures().join("logs");
    let r = run(&[
        "load",
        "--dry-run",
        "--input",
        logs.to_str().unwrap(),
        "--warehouse",
        absent.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!absent.exists(), "the warehouse folder is not even created");
    let listed: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("load ")).collect();
    assert_eq!(listed.len(), 9);
    assert!(listed[0].ends_with("fixtures/logs/bad/rejects.ndjson"), "{}", listed[0]);

    let wh = tempfile::tempdir().unwrap();
    load(&[&fixtures().join("logs/segment")], wh.path(), &[], 0);
    let before = crate::fixtures::walk(wh.path()).len();
    let r = run(&[
        "run",
        "--dry-run",
        "--input",
        logs.to_str().unwrap(),
        "--warehouse",
        wh.path().to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.lines().filter(|l| l.starts_with("skip ") && l.ends_with("(already loaded)")).count(),
        1
    );
    assert_eq!(r.stdout.lines().filter(|l| l.starts_with("load ")).count(), 8);
    let s = r.summary();
    assert_eq!((s.files_seen, s.files_skipped, s.files_loaded), (9, 1, 0));
    assert_eq!(crate::fixtures::walk(wh.path()).len(), before, "no file written");
}

#[test]
fn runs_lists_committed_runs_newest_first() {
    let wh = two_runs();
    let r = run(&["runs", "--warehouse", wh.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        filtered(&r.stdout),
        [
            r#"{"run_id":"<run_id>","started_at":"<time>","ended_at":"<time>","status":"ok","files_loaded":8,"files_failed":0,"rows_loaded":14,"duplicates":1,"rejected":12,"discarded_values":4,"new_columns":7}"#,
            r#"{"run_id":"<run_id>","started_at":"<time>","ended_at":"<time>","status":"ok","files_loaded":1,"files_failed":0,"rows_loaded":4,"duplicates":1,"rejected":0,"discarded_values":0,"new_columns":21}"#,
        ]
        .join("\n")
    );
    let r = run(&["runs", "--warehouse", wh.path().to_str().unwrap(), "--limit", "1"]);
    assert_eq!(r.stdout.lines().filter(|l| l.starts_with("| 20")).count(), 1, "{}", r.stdout);
}

#[test]
fn schema_shows_every_table_and_when_columns_appeared() {
    let wh = two_runs();
    let w = wh.path().to_str().unwrap();
    assert_eq!(run(&["build-users", "--warehouse", w]).code, 0);
    let r = run(&["schema", "--warehouse", w, "--format", "csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<String> = filtered(&r.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "table,column,type,first_seen_run,first_seen_at");
    assert!(lines.contains(&"identifies,id,Utf8,,".to_owned()));
    assert!(lines.contains(&"identifies,timestamp,Timestamp,,".to_owned()));
    let runs = run(&["runs", "--warehouse", w, "--format", "csv"]);
    let first_run = runs.stdout.lines().last().unwrap().split(',').next().unwrap().to_owned();
    let plan = r.stdout.lines().find(|l| l.starts_with("identifies,plan,")).unwrap();
    assert!(plan.starts_with(&format!("identifies,plan,Utf8,{first_run},")), "{plan}");
    let rudder = r.stdout.lines().find(|l| l.starts_with("identifies,context_os_name,")).unwrap();
    assert!(!rudder.contains(&first_run), "appeared in the second run: {rudder}");
    assert!(lines.contains(&"users,anonymous_ids,List<Utf8>,,".to_owned()), "{lines:?}");
    assert!(lines.contains(&"rejects,raw,Binary,,".to_owned()));
    assert!(lines.iter().any(|l| l.starts_with("identity_map,linked_at,Timestamp")));
}

#[test]
fn json_logs_and_no_progress_bar_without_a_terminal() {
    let wh = tempfile::tempdir().unwrap();
    let r = run(&[
        "load",
        "--log-format",
        "json",
        "--input",
        fixtures().join("failing").to_str().unwrap(),
        "--warehouse",
        wh.path().to_str().unwrap(),
    ]);
    assert_eq!(r.code, 3);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["level"].is_string() && v["fields"]["message"].is_string(), "{line}");
    }
    assert!(!r.stderr.contains("ETA") && !r.stderr.contains('\r'), "no progress bar when piped");
}

#[test]
fn every_flag_has_an_environment_form() {
    let help = run(&["load", "--help"]).stdout;
    for flag in [
        "--warehouse",
        "--max-line-bytes",
        "--dedup-window",
        "--memory-limit",
        "--dry-run",
        "--input",
        "--threads",
    ] {
        let starts = |l: &str| l.trim_start().starts_with(flag) || l.contains(&format!(", {flag}"));
        let line = help.lines().skip_while(|l| !starts(l)).take(4).collect::<Vec<_>>().join(" ");
        assert!(line.contains("[env: IDENTIFY_LOADER_"), "{flag}: {line}");
    }
    let wh = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .arg("load")
        .env("IDENTIFY_LOADER_INPUT", fixtures().join("logs/segment"))
        .env("IDENTIFY_LOADER_WAREHOUSE", wh.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

//! A load writes `identifies` as it reads, and through the local spill when
//! that cannot hold (a new column becomes Utf8 after values of another type
//! were written, an object fails after some of its events were written).
//! Either way the tables are those of a load through the spill.

use std::path::Path;

use arrow::record_batch::RecordBatch;

use crate::harness::*;

/// `n` identifies in runs of 40 per day over five days, so that more
/// partitions take events in turn than a load keeps open. `late` first
/// appears at line `late_from`, after files were made; `value(i)` is its
/// value. Every 50th line has a key that cannot be a column.
fn identifies(n: usize, late_from: usize, value: impl Fn(usize) -> String) -> String {
    (0..n)
        .map(|i| {
            let day = 1 + (i / 40) % 5;
            let late = if i >= late_from { format!(r#","late":{}"#, value(i)) } else { String::new() };
            let odd = if i % 50 == 0 { r#","":"no name""# } else { "" };
            format!(
                r#"{{"type":"identify","messageId":"m{i}","userId":"u{}","receivedAt":"2024-03-0{day}T10:00:00Z","timestamp":"2024-03-0{day}T09:00:00Z","context":{{"ip":"10.0.0.{}"}},"traits":{{"plan":"p{}","n":{i}{late}{odd}}}}}"#,
                i % 17,
                i % 250,
                i % 3
            ) + "\n"
        })
        .collect()
}

/// What a load wrote and counted.
struct Loaded {
    tables: Vec<Option<RecordBatch>>,
    counts: String,
    /// The most `identifies` files any partition got.
    files: usize,
    /// It read its input again, through the spill.
    again: bool,
}

fn loaded(inputs: &[&Path], extra: &[&str], code: i32) -> Loaded {
    let wh = tempfile::tempdir().unwrap();
    let mut args = vec!["load".to_owned(), "--warehouse".to_owned(), wh.path().display().to_string()];
    args.push("--input".into());
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, code, "{}", run.stderr);
    let s = run.summary();
    let tables = ["identifies", "discards", "rejects"].map(|t| read_table(wh.path(), t)).to_vec();
    let counts = format!(
        "{} {} {} {} {} {:?} {:?} {:?}",
        s.lines,
        s.identifies_loaded,
        s.rejected,
        s.duplicates,
        s.discarded_values,
        s.new_columns,
        s.partitions,
        s.files_failed.iter().map(|f| &f.source).collect::<Vec<_>>()
    );
    let mut per_partition = std::collections::HashMap::<_, usize>::new();
    for file in table_files(wh.path(), "identifies") {
        *per_partition.entry(file.parent().unwrap().to_owned()).or_default() += 1;
    }
    let staging = wh.path().join("_identify_loader/staging");
    let left = std::fs::read_dir(&staging).map_or(0, |d| d.count());
    assert_eq!(left, 0, "nothing is left in staging after the commit");
    let again = run.stderr.contains("reading the input again");
    Loaded { tables, counts, files: per_partition.into_values().max().unwrap_or(0), again }
}

#[test]
fn writing_as_it_reads_gives_the_tables_of_the_spill() {
    let text = identifies(600, 300, |i| format!(r#""v{i}""#));
    let half = text.len() / 2 + text[text.len() / 2..].find('\n').unwrap() + 1;
    let second = format!("{}not json\n", &text[half..]);
    let dir = inputs(&[("a.ndjson", &text.as_bytes()[..half]), ("b.ndjson", second.as_bytes())]);
    let direct = loaded(&[dir.path()], &["--batch-rows", "16"], 0);
    let spill = loaded(&[dir.path()], &["--batch-rows", "16", "--through-spill"], 0);
    assert!(!direct.again);
    assert_eq!(direct.counts, spill.counts);
    assert!(direct.counts.contains("\"late\""), "{}", direct.counts);
    assert!(direct.files > 1, "partitions that get events in turn, and a late column, take several files");
    assert_eq!(spill.files, 1);
    assert!(direct.tables.iter().all(Option::is_some));
    assert_eq!(direct.tables, spill.tables);
}

/// A backfill exported by user, say: each event of another received date
/// than the one before, over more dates than a load keeps open. Writing as
/// it reads would finish a file at nearly every event (a 95k-line object
/// over 30 dates ran out of threads); the load goes through the spill.
#[test]
fn events_of_many_dates_in_turn_go_through_the_spill() {
    let text: String = (0..700)
        .map(|i| {
            format!(
                r#"{{"type":"identify","messageId":"m{i}","userId":"u{}","receivedAt":"2024-03-0{}T10:00:00Z","traits":{{"n":{i}}}}}"#,
                i % 17,
                1 + i % 6
            ) + "\n"
        })
        .collect();
    let dir = inputs(&[("a.ndjson", text.as_bytes())]);
    let direct = loaded(&[dir.path()], &[], 0);
    let spill = loaded(&[dir.path()], &["--through-spill"], 0);
    assert!(direct.again && !spill.again);
    assert_eq!(direct.files, 1, "one file per partition");
    assert_eq!(direct.counts, spill.counts);
    assert!(direct.counts.starts_with("700 700 0 0 0"), "{}", direct.counts);
    assert_eq!(direct.tables, spill.tables);
}

#[test]
fn a_column_from_int64_to_float64_is_cast_in_the_files_written_before() {
    let text = identifies(400, 50, |i| if i < 300 { i.to_string() } else { format!("{i}.5") });
    let dir = inputs(&[("a.ndjson", text.as_bytes())]);
    let direct = loaded(&[dir.path()], &["--batch-rows", "8"], 0);
    let spill = loaded(&[dir.path()], &["--batch-rows", "8", "--through-spill"], 0);
    assert!(!direct.again);
    assert_eq!(direct.counts, spill.counts);
    assert!(direct.counts.contains(r#""late": "Float64""#), "{}", direct.counts);
    // The files' rows are in another order: a rewritten file comes last.
    let keyed = |l: &Loaded| {
        l.tables.iter().map(|t| t.as_ref().map(|t| in_key_order(std::slice::from_ref(t)))).collect::<Vec<_>>()
    };
    assert_eq!(keyed(&direct), keyed(&spill));
    let identifies_table = direct.tables[0].as_ref().unwrap();
    // Read back as one table, so every file has the one type.
    assert_eq!(cell(identifies_table, "m100", "late").as_deref(), Some("100.0"));
    assert_eq!(cell(identifies_table, "m301", "late").as_deref(), Some("301.5"));
}

#[test]
fn a_type_change_or_a_failed_object_reads_the_input_again_through_the_spill() {
    // `late` is an integer, then a string: its type is Utf8 and its
    // integers keep their text.
    let text = identifies(400, 100, |i| if i < 300 { i.to_string() } else { format!(r#""s{i}""#) });
    let dir = inputs(&[("a.ndjson", text.as_bytes())]);
    let direct = loaded(&[dir.path()], &["--batch-rows", "8"], 0);
    let spill = loaded(&[dir.path()], &["--batch-rows", "8", "--through-spill"], 0);
    assert!(direct.again && !spill.again);
    assert_eq!(direct.counts, spill.counts);
    assert!(direct.counts.contains(r#""late": "Utf8""#), "{}", direct.counts);
    assert_eq!(direct.files, 1, "the files written before the type changed are gone");
    assert_eq!(direct.tables, spill.tables);
    let identifies_table = direct.tables[0].as_ref().unwrap();
    assert_eq!(cell(identifies_table, "m100", "late").as_deref(), Some("100"));

    // An object cut short after more than a batch of lines, whose first
    // events were written before it failed.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, identifies(10_000, 0, |i| i.to_string()).as_bytes()).unwrap();
    let mut cut = gzip.finish().unwrap();
    cut.truncate(cut.len() - 64);
    let good = identifies(200, 0, |i| i.to_string()).replace("\"m", "\"g");
    let dir = inputs(&[("a-cut.ndjson.gz", &cut), ("b-good.ndjson", good.as_bytes())]);
    let direct = loaded(&[dir.path()], &[], 3);
    let spill = loaded(&[dir.path()], &["--through-spill"], 3);
    assert!(direct.again);
    assert_eq!(direct.counts, spill.counts);
    assert!(direct.counts.contains("a-cut.ndjson.gz"), "{}", direct.counts);
    assert_eq!(direct.tables, spill.tables);
    assert_eq!(direct.tables[0].as_ref().unwrap().num_rows(), 200);
}

//! Cutting the input differently never changes a table. With chunks of 0
//! bytes (as the store sends them) a local file is read by the reader
//! itself; any other size goes through the store's stream, re-cut.

use crate::harness::*;

#[test]
fn chunk_buffer_and_batch_sizes_give_identical_tables() {
    let input = fixtures().join("logs");
    let reference = tempfile::tempdir().unwrap();
    let expected = load(&[&input], reference.path(), &[], 0);
    let tables = ["identifies", "rejects", "discards"];
    let want: Vec<_> = tables.iter().map(|t| read_table(reference.path(), t)).collect();
    for (chunk, buffer, batch) in
        [("1", "1", "1"), ("7", "3", "2"), ("4096", "13", "5"), ("0", "65536", "100000")]
    {
        let wh = tempfile::tempdir().unwrap();
        let args = ["--chunk-bytes", chunk, "--buffer-bytes", buffer, "--batch-rows", batch];
        let got = load(&[&input], wh.path(), &args, 0);
        assert_eq!(
            (got.lines, got.identifies_loaded, got.rejected, got.duplicates, &got.new_columns),
            (
                expected.lines,
                expected.identifies_loaded,
                expected.rejected,
                expected.duplicates,
                &expected.new_columns
            ),
            "{args:?}"
        );
        for (table, want) in tables.iter().zip(&want) {
            assert_eq!(&read_table(wh.path(), table), want, "{table} with {args:?}");
        }
    }
}

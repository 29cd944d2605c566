//! The parse-and-normalize stage in bytes/s: one line of Segment-style JSON
//! to a validated, flattened, typed identify event (SPEC §3–§5); and, for
//! the decompression floor beside it, gzip inflate with the loader's own
//! decoder. Run with `cargo bench --bench parse`; compare against the last
//! figures in the README.

use std::io::{Read, Write};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use identify_loader::pipeline::event::{Outcome, ParseOptions, parse_line};

/// Deterministic analytics.js-like identify lines (~900 bytes each).
fn lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let u = (i * 7919) % 50_000;
            format!(
                concat!(
                    r#"{{"anonymousId":"anon-{u}","context":{{"ip":"10.0.{a}.{b}","library":{{"name":"analytics.js","version":"next-1.53.0"}},"#,
                    r#""locale":"en-US","page":{{"path":"/app/home","referrer":"https://www.google.com/","title":"Acme","url":"https://app.acme.io/u/{u}"}},"#,
                    r#""userAgent":"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0","campaign":{{"source":"google","medium":"cpc"}}}},"#,
                    r#""integrations":{{}},"messageId":"ajs-next-{i:012}","originalTimestamp":"2024-03-01T10:00:{s:02}.123Z","receivedAt":"2024-03-01T10:00:{s:02}.456Z","#,
                    r#""sentAt":"2024-03-01T10:00:{s:02}.200Z","timestamp":"2024-03-01T10:00:{s:02}.123Z","channel":"client","type":"identify","userId":"user-{u}","#,
                    r#""traits":{{"email":"user{u}@example.com","firstName":"First{u}","lastName":"Last{u}","plan":"pro","createdAt":"2023-05-01T10:00:00Z","#,
                    r#""logins":{i},"score":{a}.5,"vip":false,"title":"Engineer","phone":"+1-555-0100","avatar":"https://cdn.acme.io/a/{u}.png","age":{b},"#,
                    r#""address":{{"street":"1 Main St","city":"Lisbon","postalCode":"{u:05}","country":"PT"}},"company":{{"name":"Company {a}","industry":"Software","employee_count":{b}}}}},"version":2}}"#
                ),
                u = u,
                i = i,
                a = i % 250,
                b = i % 97,
                s = i % 60,
            )
        })
        .collect()
}

fn parse(c: &mut Criterion) {
    let lines = lines(2000);
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let opts = ParseOptions { fallback_received_at: 0, email_from_user_id: false };
    let mut group = c.benchmark_group("parse_and_normalize");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("segment_identify", |b| {
        b.iter(|| {
            let mut identifies = 0;
            for line in &lines {
                if let Outcome::Identify(e) = parse_line(line.as_bytes(), &opts) {
                    identifies += e.leaves.list.len();
                }
            }
            identifies
        })
    });
    group.finish();
}

/// Uncompressed bytes/s of `flate2`'s multi-member gzip decoder (zlib-rs),
/// the decoder the loader reads `.gz` objects with.
fn inflate(c: &mut Criterion) {
    let text = lines(20_000).join("\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).expect("in memory");
    let gz = gz.finish().expect("in memory");
    let mut group = c.benchmark_group("decompress");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("gzip", |b| {
        let mut out = vec![0u8; 1 << 20];
        b.iter(|| {
            let mut decoder = flate2::read::MultiGzDecoder::new(gz.as_slice());
            let mut total = 0;
            loop {
                match decoder.read(&mut out).expect("valid gzip") {
                    0 => break total,
                    n => total += n,
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parse, inflate);
criterion_main!(benches);

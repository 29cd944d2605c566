//! S3 (moto) and Azure Blob (Azurite) end to end, and S3 behind a proxy that
//! injects faults. The servers are started by `.ci/run`, which sets
//! `IDENTIFY_LOADER_TEST_S3_ENDPOINT` and `IDENTIFY_LOADER_TEST_AZURITE`;
//! without them these tests say so on stderr and do nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::harness::*;

const TABLES: [(&str, &str); 5] = [
    ("identifies", "SELECT * EXCLUDE (loaded_at) FROM identifies ORDER BY id"),
    ("rejects", "SELECT line, reason, message, raw FROM rejects ORDER BY line, raw"),
    ("discards", "SELECT * FROM discards ORDER BY id, column_name, value"),
    ("users", "SELECT * FROM users ORDER BY id"),
    ("identity_map", "SELECT * FROM identity_map ORDER BY anonymous_id"),
];

fn skip(test: &str, what: &str) {
    // Written past the test harness's capture, so that it shows.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {what} is not set (.ci/run starts the server)");
}

fn s3_endpoint(test: &str) -> Option<String> {
    let endpoint = std::env::var("IDENTIFY_LOADER_TEST_S3_ENDPOINT").ok();
    if endpoint.is_none() {
        skip(test, "IDENTIFY_LOADER_TEST_S3_ENDPOINT");
    }
    endpoint
}

fn s3_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test-secret-never-printed".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

fn azure_env() -> Vec<(&'static str, String)> {
    vec![("AZURE_STORAGE_USE_EMULATOR", "true".into())]
}

fn run_env(args: &[&str], env: &[(&'static str, String)]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("IDENTIFY_LOADER_NOW", NOW)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Creates a bucket on moto (which needs no signature for it).
fn create_bucket(endpoint: &str, bucket: &str) {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    write!(conn, "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") || answer.contains("BucketAlready"), "{answer}");
}

fn s3_store(endpoint: &str, bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .build()
            .unwrap(),
    )
}

/// The fixture logs, without the one whose `received_at` is its mtime
/// (a store's last-modified differs from the local file's).
fn fixture_logs() -> Vec<(String, Vec<u8>)> {
    let root = fixtures().join("logs");
    let mut files: Vec<_> = crate::fixtures::walk(&root)
        .into_iter()
        .filter(|p| !p.ends_with("no-received-at.ndjson"))
        .map(|p| (p.strip_prefix(&root).unwrap().display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

async fn upload(store: &Arc<dyn ObjectStore>, prefix: &str, files: &[(String, Vec<u8>)]) {
    futures::stream::iter(files.iter().map(|(name, bytes)| {
        let path = object_store::path::Path::from(format!("{prefix}/{name}"));
        let store = Arc::clone(store);
        let bytes = bytes.clone();
        async move { store.put(&path, PutPayload::from(bytes)).await.unwrap() }
    }))
    .buffer_unordered(32)
    .collect::<Vec<_>>()
    .await;
}

fn unique(name: &str) -> String {
    format!("{name}-{:08x}", rand::random::<u32>())
}

/// Every table of a warehouse, through `query`.
fn tables(warehouse: &str, env: &[(&'static str, String)]) -> Vec<String> {
    TABLES
        .iter()
        .map(|(table, sql)| {
            let r = run_env(&["query", "--warehouse", warehouse, "--format", "csv", sql], env);
            assert_eq!(r.code, 0, "{table}: {}", r.stderr);
            r.stdout
        })
        .collect()
}

/// A local `run` over the same logs: the tables every remote run must equal.
fn reference(files: &[(String, Vec<u8>)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let wh = tempfile::tempdir().unwrap();
    let r =
        run(&["run", "--input", dir.path().to_str().unwrap(), "--warehouse", wh.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    tables(wh.path().to_str().unwrap(), &[])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn s3_input_and_warehouse_give_the_tables_of_a_local_run() {
    let Some(endpoint) = s3_endpoint("s3_input_and_warehouse_give_the_tables_of_a_local_run") else { return };
    let env = s3_env(&endpoint);
    create_bucket(&endpoint, "it-logs");
    create_bucket(&endpoint, "it-warehouse");
    let files = fixture_logs();
    let prefix = unique("fixtures");
    runtime().block_on(upload(&s3_store(&endpoint, "it-logs"), &prefix, &files));
    let want = reference(&files);
    let input = format!("s3://it-logs/{prefix}");

    let warehouse = format!("s3://it-warehouse/{}", unique("wh"));
    let r = run_env(&["run", "--input", &input, "--warehouse", &warehouse], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stderr.contains("test-secret-never-printed") && !r.stdout.contains("test-secret-never-printed")
    );
    assert_eq!(r.summary().users, Some(14));
    assert_eq!(tables(&warehouse, &env), want);
    let again = run_env(&["run", "--input", &input, "--warehouse", &warehouse], &env).summary();
    assert_eq!((again.files_skipped, again.files_loaded), (8, 0));

    let local = tempfile::tempdir().unwrap();
    let glob = format!("s3://it-logs/{prefix}/*/**");
    let r = run_env(&["run", "--input", &glob, "--warehouse", local.path().to_str().unwrap()], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(tables(local.path().to_str().unwrap(), &[]), want, "remote input, local warehouse");
}

#[test]
fn s3_two_runs_at_once_never_both_commit() {
    let Some(endpoint) = s3_endpoint("s3_two_runs_at_once_never_both_commit") else { return };
    let env = s3_env(&endpoint);
    create_bucket(&endpoint, "it-logs");
    create_bucket(&endpoint, "it-warehouse");
    let files = fixture_logs();
    let prefix = unique("race");
    runtime().block_on(upload(&s3_store(&endpoint, "it-logs"), &prefix, &files));
    let input = format!("s3://it-logs/{prefix}");
    let warehouse = format!("s3://it-warehouse/{}", unique("wh"));
    let spawn = || {
        Command::new(BIN)
            .args(["load", "-q", "--input", &input, "--warehouse", &warehouse])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() || b.status.success());
    let r = run_env(
        &[
            "query",
            "--warehouse",
            &warehouse,
            "--format",
            "csv",
            "SELECT count(*) AS n, count(DISTINCT id) AS d FROM identifies",
        ],
        &env,
    );
    assert_eq!(r.stdout, "n,d\n17,17\n", "{}", r.stderr);
}

#[test]
fn s3_lists_thousands_of_objects_under_a_prefix() {
    let Some(endpoint) = s3_endpoint("s3_lists_thousands_of_objects_under_a_prefix") else { return };
    let env = s3_env(&endpoint);
    create_bucket(&endpoint, "it-logs");
    create_bucket(&endpoint, "it-warehouse");
    let prefix = unique("many");
    let files: Vec<(String, Vec<u8>)> = (0..2500)
        .map(|i| {
            let line = format!(r#"{{"type":"identify","messageId":"m{i}","userId":"u{}","receivedAt":"2024-01-01T00:00:00Z"}}"#, i % 100);
            (format!("day-{}/part-{i:05}.ndjson", i % 3), line.into_bytes())
        })
        .collect();
    runtime().block_on(upload(&s3_store(&endpoint, "it-logs"), &prefix, &files));
    let warehouse = format!("s3://it-warehouse/{}", unique("wh"));
    let glob = format!("s3://it-logs/{prefix}/day-1/*.ndjson");
    let r = run_env(&["load", "--input", &glob, "--warehouse", &warehouse], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!((r.summary().files_seen, r.summary().identifies_loaded), (833, 833));
    let r = run_env(&["run", "--input", &format!("s3://it-logs/{prefix}"), "--warehouse", &warehouse], &env);
    let s = r.summary();
    assert_eq!((s.files_seen, s.files_skipped, s.identifies_loaded, s.users), (2500, 833, 1667, Some(100)));
}

#[test]
fn s3_behind_a_faulty_proxy_ends_with_the_tables_of_a_clean_run() {
    let Some(endpoint) = s3_endpoint("s3_behind_a_faulty_proxy_ends_with_the_tables_of_a_clean_run") else {
        return;
    };
    create_bucket(&endpoint, "it-logs");
    create_bucket(&endpoint, "it-warehouse");
    let files = fixture_logs();
    let prefix = unique("faults");
    runtime().block_on(upload(&s3_store(&endpoint, "it-logs"), &prefix, &files));
    let want = reference(&files);
    let input = format!("s3://it-logs/{prefix}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fault_proxy.py");
    let upstream = endpoint.trim_start_matches("http://").trim_end_matches('/');
    for seed in 1..=3 {
        let mut proxy = Command::new("python3")
            .args([
                script.to_str().unwrap(),
                "--upstream",
                upstream,
                "--seed",
                &seed.to_string(),
                "--delay",
                "2",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut port = String::new();
        BufReader::new(proxy.stdout.take().unwrap()).read_line(&mut port).unwrap();
        let faulty = s3_env(&format!("http://127.0.0.1:{}", port.trim()));
        let warehouse = format!("s3://it-warehouse/{}", unique("wh"));
        let args = [
            "run",
            "--input",
            &input,
            "--warehouse",
            &warehouse,
            "--request-timeout",
            "1s",
            "--max-retries",
            "8",
        ];
        let r = run_env(&args, &faulty);
        let _ = proxy.kill();
        let _ = proxy.wait();
        assert!([0, 1, 3].contains(&r.code), "seed {seed}: exit {} {}", r.code, r.stderr);
        let clean = s3_env(&endpoint);
        if r.code == 0 {
            assert_eq!(tables(&warehouse, &clean), want, "seed {seed}: a successful faulty run");
        }
        // Whatever the faulty run left, the next clean run completes it.
        let r = run_env(&["run", "--input", &input, "--warehouse", &warehouse], &clean);
        assert_eq!(r.code, 0, "seed {seed}: {}", r.stderr);
        assert_eq!(tables(&warehouse, &clean), want, "seed {seed}");
    }
}

#[test]
fn azure_input_and_warehouse_give_the_tables_of_a_local_run() {
    if std::env::var("IDENTIFY_LOADER_TEST_AZURITE").is_err() {
        return skip(
            "azure_input_and_warehouse_give_the_tables_of_a_local_run",
            "IDENTIFY_LOADER_TEST_AZURITE",
        );
    }
    let (logs, wh) = (unique("logs"), unique("wh"));
    let create = Command::new("python3")
        .args(["-c", AZURE_SETUP, &logs, &wh])
        .current_dir(fixtures())
        .output()
        .unwrap();
    assert!(create.status.success(), "{}", String::from_utf8_lossy(&create.stderr));
    let files = fixture_logs();
    let want = reference(&files);
    let env = azure_env();
    let warehouse = format!("az://{wh}/warehouse");
    let r = run_env(&["run", "--input", &format!("az://{logs}/logs"), "--warehouse", &warehouse], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(tables(&warehouse, &env), want);
    let again = run_env(&["run", "--input", &format!("az://{logs}/logs"), "--warehouse", &warehouse], &env);
    assert_eq!(again.summary().files_loaded, 0);
}

/// Creates two containers on Azurite and uploads `logs/` (minus the
/// mtime-dependent file) into the first.
const AZURE_SETUP: &str = r#"
import os, sys
from azure.storage.blob import BlobServiceClient
conn = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")
svc = BlobServiceClient.from_connection_string(conn)
logs = svc.create_container(sys.argv[1])
svc.create_container(sys.argv[2])
for root, _, files in os.walk("logs"):
    for f in files:
        if f != "no-received-at.ndjson":
            path = os.path.join(root, f)
            with open(path, "rb") as data:
                logs.upload_blob(path, data)
"#;

#[test]
fn gcs_urls_are_configured_from_the_environment() {
    // No GCS emulator speaks the XML API object_store uses: check that a
    // gs:// URL builds a store from GOOGLE_* variables and fails cleanly
    // when the bucket cannot be reached, without printing the credentials.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    std::fs::write(
        &key,
        r#"{"type":"service_account","client_email":"it@example.iam.gserviceaccount.com","private_key_id":"k","private_key":"not-a-real-key","token_uri":"http://127.0.0.1:9/token"}"#,
    )
    .unwrap();
    let env = vec![("GOOGLE_SERVICE_ACCOUNT", key.display().to_string())];
    let local = tempfile::tempdir().unwrap();
    let r = run_env(
        &[
            "load",
            "--input",
            "gs://it-bucket/logs",
            "--warehouse",
            local.path().to_str().unwrap(),
            "--max-retries",
            "0",
        ],
        &env,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("gs://it-bucket"), "{}", r.stderr);
    assert!(!r.stderr.contains("not-a-real-key"), "{}", r.stderr);
}

//! `memory://` input and warehouse in one process, through the library.

use std::sync::Arc;

use bytes::Bytes;
use identify_loader::pipeline;
use identify_loader::storage::Stores;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::harness::memory_config;

#[tokio::test(flavor = "multi_thread")]
async fn memory_input_and_warehouse() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let stores = Stores::default();
    stores.register("memory://mem", Arc::clone(&store));
    let lines = [
        r#"{"type":"identify","messageId":"a","userId":"u1","traits":{"plan":"pro"},"receivedAt":"2024-03-01T00:00:00Z"}"#,
        r#"{"type":"identify","messageId":"b","anonymousId":"x","receivedAt":"2024-03-02T00:00:00Z"}"#,
        "not json",
    ];
    let body = lines.join("\n");
    store.put(&Path::from("logs/day1/part.ndjson"), PutPayload::from(Bytes::from(body))).await.unwrap();
    store.put(&Path::from("logs/day1/other.txt"), PutPayload::from_static(b"\n")).await.unwrap();

    let s = pipeline::load(
        &memory_config(vec!["memory://mem/logs/*/*.ndjson".into()], "memory://mem/wh"),
        &stores,
    )
    .await
    .unwrap();
    assert_eq!((s.files_seen, s.identifies_loaded, s.rejected), (1, 2, 1));
    assert_eq!(s.partitions, ["received_date=2024-03-01", "received_date=2024-03-02"]);

    let file = Path::from(format!("wh/identifies/received_date=2024-03-01/part-{}.parquet", s.run_id));
    let bytes = store.get(&file).await.unwrap().bytes().await.unwrap();
    let batch =
        ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap().next().unwrap().unwrap();
    assert_eq!(batch.num_rows(), 1);
    assert!(batch.schema().column_with_name("plan").is_some());
    let rejects = Path::from(format!("wh/rejects/received_date=2025-03-01/part-{}.parquet", s.run_id));
    assert!(store.head(&rejects).await.is_ok());
    let log = Path::from("wh/_identify_loader/log/00000000000000000001.json");
    assert!(store.head(&log).await.is_ok());
}

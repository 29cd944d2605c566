//! Laws: loading a set of events in one run, or split over several runs in
//! any order, gives the same `users` and `identity_map`; so does building
//! them in slices (of their users, of the map's anonymous ids).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use bytes::Bytes;
use identify_loader::pipeline::{self, users::build_users_in};
use identify_loader::storage::Stores;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use proptest::prelude::*;

use crate::harness::memory_config;

#[derive(Debug, Clone)]
struct Ev {
    user: Option<u8>,
    anon: Option<u8>,
    minute: u8,
    received: u8,
    plan: Option<u8>,
    seats: Option<u8>,
}

fn event() -> impl Strategy<Value = Ev> {
    (
        proptest::option::of(0u8..4),
        proptest::option::of(0u8..5),
        0u8..6,
        0u8..3,
        proptest::option::of(0u8..3),
        proptest::option::of(0u8..9),
    )
        .prop_filter("an identity", |e| e.0.is_some() || e.1.is_some())
        .prop_map(|(user, anon, minute, received, plan, seats)| Ev {
            user,
            anon,
            minute,
            received,
            plan,
            seats,
        })
}

fn line(i: usize, e: &Ev) -> String {
    let opt = |v: Option<String>| v.map_or("null".to_owned(), |s| format!("\"{s}\""));
    format!(
        r#"{{"type":"identify","messageId":"m{i}","userId":{},"anonymousId":{},"traits":{{"plan":{},"seats":{}}},"timestamp":"2024-01-01T00:{:02}:00Z","receivedAt":"2024-01-0{}T00:00:00Z"}}"#,
        opt(e.user.map(|u| format!("u{u}"))),
        opt(e.anon.map(|a| format!("a{a}"))),
        opt(e.plan.map(|p| format!("plan{p}"))),
        e.seats.map_or("null".to_owned(), |s| s.to_string()),
        e.minute,
        e.received + 1,
    )
}

/// Loads each group as its own run, in order, then builds users (in that
/// many slices, if given).
async fn users_of(groups: &[Vec<String>], slices: Option<u64>) -> (String, String) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let stores = Stores::default();
    stores.register("memory://p", Arc::clone(&store));
    for (g, lines) in groups.iter().enumerate() {
        let path = Path::from(format!("in/run{g}/events.ndjson"));
        store.put(&path, PutPayload::from(Bytes::from(lines.join("\n")))).await.unwrap();
        let cfg = memory_config(vec![format!("memory://p/in/run{g}")], "memory://p/wh");
        pipeline::load(&cfg, &stores).await.unwrap();
    }
    let cfg = memory_config(vec![], "memory://p/wh");
    let warehouse = pipeline::open_warehouse(&stores, "memory://p/wh").await.unwrap();
    build_users_in(&cfg.warehouse, &warehouse, 2, slices).await.unwrap();
    let read = |table: &'static str| {
        let store = Arc::clone(&store);
        async move {
            let path = Path::from(format!("wh/{table}/{table}.parquet"));
            let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
            let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap()
                .build()
                .unwrap()
                .map(|b| b.unwrap())
                .collect();
            by_column_name(&batches)
        }
    };
    (read("users").await, read("identity_map").await)
}

/// The table as text with its columns sorted by name (runs may meet trait
/// columns in a different order).
fn by_column_name(batches: &[RecordBatch]) -> String {
    if batches.is_empty() {
        return String::new();
    }
    let sorted = crate::harness::in_key_order(batches);
    let batches = std::slice::from_ref(&sorted);
    let schema = sorted.schema();
    let mut order: Vec<usize> = (0..schema.fields().len()).collect();
    order.sort_by_key(|&i| schema.field(i).name().clone());
    let projected: Vec<RecordBatch> = batches.iter().map(|b| b.project(&order).unwrap()).collect();
    pretty_format_batches(&projected).unwrap().to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn split_runs_in_any_order_give_the_same_users(
        events in proptest::collection::vec(event(), 1..25),
        groups in proptest::collection::vec(0usize..3, 25),
        reverse in any::<bool>(),
    ) {
        let lines: Vec<String> = events.iter().enumerate().map(|(i, e)| line(i, e)).collect();
        let mut split: Vec<Vec<String>> = vec![Vec::new(); 3];
        for (i, l) in lines.iter().enumerate() {
            split[groups[i]].push(l.clone());
        }
        split.retain(|g| !g.is_empty());
        if reverse {
            split.reverse();
        }
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let whole = runtime.block_on(users_of(&[lines], None));
        let pieces = runtime.block_on(users_of(&split, None));
        prop_assert_eq!(whole, pieces);
    }

    #[test]
    fn tables_built_in_slices_are_the_tables_built_at_once(
        events in proptest::collection::vec(event(), 1..25),
        slices in 2u64..5,
    ) {
        let lines: Vec<String> = events.iter().enumerate().map(|(i, e)| line(i, e)).collect();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let at_once = runtime.block_on(users_of(std::slice::from_ref(&lines), Some(1)));
        let sliced = runtime.block_on(users_of(&[lines], Some(slices)));
        prop_assert_eq!(at_once, sliced);
    }
}

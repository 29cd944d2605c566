//! The collapse as SQL on small tables, with the expected rows written out.

use datafusion::arrow::util::pretty::pretty_format_batches;

use super::*;
use crate::pipeline::typing::ColumnType::*;

fn column(name: &str, column_type: ColumnType) -> ColumnDef {
    ColumnDef { name: name.into(), column_type, since_run: "r".into() }
}

/// `identifies` rows: (id, user_id, anonymous_id, timestamp, received_at, trait values…).
async fn collapse(trait_columns: &[ColumnDef], rows: &str) -> (String, String) {
    let ctx = SessionContext::new();
    for udaf in crate::session::aggregates() {
        ctx.register_udaf(udaf);
    }
    let names: Vec<String> = trait_columns.iter().map(|c| quote(&c.name)).collect();
    let create = format!(
        "CREATE TABLE raw (id VARCHAR, user_id VARCHAR, anonymous_id VARCHAR, ts VARCHAR, received VARCHAR{}) AS VALUES {rows}",
        trait_columns
            .iter()
            .map(|c| format!(
                ", {} {}",
                quote(&c.name),
                match c.column_type {
                    Int64 => "BIGINT",
                    Float64 => "DOUBLE",
                    Boolean => "BOOLEAN",
                    _ => "VARCHAR",
                }
            ))
            .collect::<String>()
    );
    ctx.sql(&create).await.unwrap().collect().await.unwrap();
    let view = format!(
        "CREATE VIEW identifies AS SELECT id, user_id, anonymous_id, CAST(ts AS TIMESTAMP) AS \"timestamp\", \
         CAST(received AS TIMESTAMP) AS received_at{} FROM raw",
        names.iter().map(|n| format!(", {n}")).collect::<String>()
    );
    ctx.sql(&view).await.unwrap().collect().await.unwrap();
    ctx.sql(&format!("CREATE VIEW identity_map AS {}", map_sql(1, 0)))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let map =
        ctx.sql("SELECT * FROM identity_map ORDER BY anonymous_id").await.unwrap().collect().await.unwrap();
    ctx.sql(&format!("CREATE VIEW owned AS {}", owned_sql(1, 0))).await.unwrap();
    let sorted = format!("SELECT * FROM ({}) ORDER BY id", users_sql(trait_columns));
    let users = ctx.sql(&sorted).await.unwrap().collect().await.unwrap();
    (pretty_format_batches(&map).unwrap().to_string(), pretty_format_batches(&users).unwrap().to_string())
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect()
}

#[tokio::test]
async fn stitching_follows_the_earliest_link() {
    let rows = "
        ('e1', NULL, 'a1', '2024-01-01T00:00:00', '2024-01-01T00:00:00'),
        ('e2', 'u1', 'a1', '2024-01-02T00:00:00', '2024-01-02T00:00:00'),
        ('e3', 'u2', 'a1', '2024-01-03T00:00:00', '2024-01-03T00:00:00'),
        ('e4', NULL, 'a1', '2024-01-04T00:00:00', '2024-01-04T00:00:00'),
        ('e5', NULL, 'a9', '2024-01-05T00:00:00', '2024-01-05T00:00:00'),
        ('e6', 'u2', 'a2', '2023-12-01T00:00:00', '2024-01-06T00:00:00'),
        ('e7', 'u1', 'a2', '2023-12-01T00:00:00', '2024-01-05T00:00:00'),
        ('e8', 'u3', NULL, '2024-01-08T00:00:00', '2024-01-08T00:00:00')";
    let (map, users) = collapse(&[], rows).await;
    assert_eq!(
        lines(&map),
        lines(
            "
            +--------------+---------+---------------------+
            | anonymous_id | user_id | linked_at           |
            +--------------+---------+---------------------+
            | a1           | u1      | 2024-01-02T00:00:00 |
            | a2           | u1      | 2023-12-01T00:00:00 |
            +--------------+---------+---------------------+"
        ),
        "a2: same timestamp, the earlier received_at links it to u1"
    );
    assert_eq!(
        lines(&users),
        lines(
            "
            +----+---------------+---------------------+---------------------+----------------+
            | id | anonymous_ids | first_seen_at       | last_seen_at        | identify_count |
            +----+---------------+---------------------+---------------------+----------------+
            | u1 | [a1, a2]      | 2023-12-01T00:00:00 | 2024-01-04T00:00:00 | 4              |
            | u2 | []            | 2023-12-01T00:00:00 | 2024-01-03T00:00:00 | 2              |
            | u3 | []            | 2024-01-08T00:00:00 | 2024-01-08T00:00:00 | 1              |
            +----+---------------+---------------------+---------------------+----------------+"
        ),
        "e1 and e4 belong to u1; e5 to nobody; e3 and e6 to u2 though their anonymous ids are u1's"
    );
}

#[tokio::test]
async fn a_link_tie_goes_to_the_smallest_id() {
    let rows = "
        ('e2', 'u2', 'a1', '2024-01-01T00:00:00', '2024-01-01T00:00:00'),
        ('e1', 'u1', 'a1', '2024-01-01T00:00:00', '2024-01-01T00:00:00'),
        ('e3', 'u3', 'a1', '2024-01-01T00:00:00', '2024-01-01T00:00:00')";
    let (map, _) = collapse(&[], rows).await;
    assert!(lines(&map).contains(&"| a1           | u1      | 2024-01-01T00:00:00 |".to_owned()), "{map}");
}

#[tokio::test]
async fn latest_non_null_value_by_event_order() {
    let traits = [column("plan", Utf8), column("seats", Int64), column("context_ip", Utf8)];
    let rows = "
        ('e1', 'u1', NULL, '2024-01-01T00:00:00', '2024-01-01T00:00:00', 'free', 1, '1.1.1.1'),
        ('e2', 'u1', NULL, '2024-01-03T00:00:00', '2024-01-03T00:00:00', NULL, 3, NULL),
        ('e3', 'u1', NULL, '2024-01-02T00:00:00', '2024-02-01T00:00:00', 'backfilled', 2, NULL),
        ('e4', 'u2', NULL, '2024-01-01T00:00:00', '2024-01-01T00:00:00', 'b', NULL, NULL),
        ('e5', 'u2', NULL, '2024-01-01T00:00:00', '2024-01-01T00:00:00', 'a', NULL, NULL),
        ('e6', 'u3', NULL, '2024-01-01T00:00:00', '2024-01-02T00:00:00', 'first', NULL, NULL),
        ('e7', 'u3', NULL, '2024-01-01T00:00:00', '2024-01-01T00:00:00', 'second', NULL, NULL)";
    let (_, users) = collapse(&traits, rows).await;
    assert_eq!(
        lines(&users),
        lines(
            "
            +----+---------------+---------------------+---------------------+----------------+------------+-------+
            | id | anonymous_ids | first_seen_at       | last_seen_at        | identify_count | plan       | seats |
            +----+---------------+---------------------+---------------------+----------------+------------+-------+
            | u1 | []            | 2024-01-01T00:00:00 | 2024-01-03T00:00:00 | 3              | backfilled | 3     |
            | u2 | []            | 2024-01-01T00:00:00 | 2024-01-01T00:00:00 | 2              | a          |       |
            | u3 | []            | 2024-01-01T00:00:00 | 2024-01-01T00:00:00 | 2              | first      |       |
            +----+---------------+---------------------+---------------------+----------------+------------+-------+"
        ),
        "null never erases; ties go to received_at, then id; context columns are not user traits"
    );
}

#[tokio::test]
async fn name_is_filled_at_the_user_level() {
    let traits = [column("first_name", Utf8), column("last_name", Utf8), column("name", Utf8)];
    let rows = "
        ('e1', 'u1', NULL, '2024-01-01T00:00:00', '2024-01-01T00:00:00', 'Ada', NULL, NULL),
        ('e2', 'u1', NULL, '2024-01-02T00:00:00', '2024-01-02T00:00:00', NULL, 'Lovelace', NULL),
        ('e3', 'u2', NULL, '2024-01-01T00:00:00', '2024-01-01T00:00:00', 'Grace', 'Hopper', 'Amazing Grace'),
        ('e4', 'u3', NULL, '2024-01-01T00:00:00', '2024-01-01T00:00:00', 'Only', NULL, NULL)";
    let (_, users) = collapse(&traits, rows).await;
    let got: Vec<String> = lines(&users).into_iter().filter(|l| l.starts_with("| u")).collect();
    assert!(got[0].ends_with("| Ada        | Lovelace  | Ada Lovelace  |"), "{users}");
    assert!(got[1].ends_with("| Grace      | Hopper    | Amazing Grace |"), "{users}");
    assert!(got[2].ends_with("| Only       |           |               |"), "{users}");
    // Without a `name` column in identifies, users still gets one.
    let (_, users) =
        collapse(&traits[..2], rows.replace(", NULL)", ")").replace(", 'Amazing Grace')", ")").as_str())
            .await;
    assert!(users.contains("| Ada Lovelace |"), "{users}");
}

#[test]
fn groups_are_sliced_to_fit_their_share_and_no_finer() {
    // 1M users of 760 bytes in 600 MB: two slices; within it, one.
    assert_eq!(slices_for(1_000_000, 760, 600_000_000), 2);
    assert_eq!(slices_for(700_000, 760, 600_000_000), 1);
    assert_eq!(slices_for(789_473, 760, 600_000_000), 1);
    assert_eq!(slices_for(789_474, 760, 600_000_000), 2);
    assert_eq!(slices_for(0, 760, 600_000_000), 1);
    // Past MAX_SLICES reads of identifies, the aggregates spill instead.
    assert_eq!(slices_for(100_000_000, 760, 600_000_000), MAX_SLICES);
    assert_eq!(slices_for(1, 760, 0), MAX_SLICES);
}

fn code(sql: String) -> String {
    sql.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n")
}

#[test]
fn a_slice_keeps_its_owners_identifies_and_their_map_rows() {
    let whole = code(owned_sql(1, 0));
    assert!(!whole.contains("il_slice") && whole.contains("RIGHT JOIN identifies AS i"), "{whole}");
    let sliced = code(owned_sql(3, 2));
    assert!(sliced.contains("RIGHT JOIN identifies_slice_2 AS i"), "{sliced}");
    assert!(sliced.contains("FROM identity_map\n      WHERE il_slice(user_id, 3) = 2)"), "{sliced}");
    assert!(!sliced.contains("{{"), "{sliced}");
}

#[test]
fn a_map_slice_keeps_the_links_of_its_anonymous_ids() {
    let whole = code(map_sql(1, 0));
    assert!(!whole.contains("il_slice") && !whole.contains("{{"), "{whole}");
    let sliced = code(map_sql(4, 1));
    assert!(
        sliced.contains("WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL\n  AND il_slice(anonymous_id, 4) = 1\nGROUP BY"),
        "{sliced}"
    );
}

#[tokio::test]
async fn groups_are_counted_only_when_the_rows_would_not_fit() {
    let ctx = SessionContext::new();
    // 10 identifies, 4 users, 3 linked anonymous ids (a0 twice, a1, a2).
    let rows = (0..10)
        .map(|i| match i {
            0..=3 => format!("('u{}', 'a{}')", i % 4, i % 3),
            _ => format!("('u{}', NULL)", i % 4),
        })
        .collect::<Vec<_>>()
        .join(", ");
    ctx.sql(&format!("CREATE TABLE identifies (user_id VARCHAR, anonymous_id VARCHAR) AS VALUES {rows}"))
        .await
        .unwrap();
    let config = |memory_limit| WarehouseConfig {
        warehouse: "memory://w".into(),
        memory_limit,
        spill_dir: None,
        now: chrono::Utc::now(),
    };
    let slices = |map, users| Slices { map, users };
    // 300 bytes a user without traits, 200 an anonymous id: 10 rows fit
    // 3000 bytes, 4 users 1200, 3 anonymous ids 600.
    assert_eq!(slices_needed(&ctx, &config(10_000), 0).await.unwrap(), slices(1, 1));
    assert_eq!(
        slices_needed(&ctx, &config(4_000), 0).await.unwrap(),
        slices(1, 1),
        "the groups fit, the rows do not"
    );
    assert_eq!(slices_needed(&ctx, &config(2_000), 0).await.unwrap(), slices(1, 2));
    assert_eq!(
        slices_needed(&ctx, &config(1_000), 1).await.unwrap(),
        slices(2, 5),
        "328 bytes a user with a trait"
    );
}

//! Deleted stores' rows are pruned after the audit window; live stores and recently deleted
//! ones stay.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

async fn store(pool: &PgPool, slug: &str, status: &str, deleted_days_ago: Option<i32>) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO urumi.stores (id, name, slug, engine, plan, status, created_by, deleted_at)
         VALUES ($1, $2, $2, 'woocommerce', 'starter', $3, 'test',
                 now() - make_interval(days => $4))",
    )
    .bind(id)
    .bind(slug)
    .bind(status)
    .bind(deleted_days_ago)
    .execute(pool)
    .await
    .unwrap();
    id
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn only_stores_deleted_before_the_window_go(pool: PgPool) {
    let mut old = Vec::new();
    for i in 0..3 {
        old.push(store(&pool, &format!("old-{i}"), "deleted", Some(400)).await);
    }
    let recent = store(&pool, "recent", "deleted", Some(10)).await;
    let live = store(&pool, "live", "ready", None).await;
    let year = Duration::from_secs(365 * 24 * 3600);
    // Batches of 2: the loop goes on until a batch comes back short.
    let n = urumi_store::db::prune_deleted(&pool, year, 2)
        .await
        .unwrap();
    assert_eq!(n, 3);
    let mut left: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM urumi.stores")
        .fetch_all(&pool)
        .await
        .unwrap();
    left.sort();
    let mut want = vec![recent, live];
    want.sort();
    assert_eq!(left, want);
    assert_eq!(
        urumi_store::db::prune_deleted(&pool, year, 2)
            .await
            .unwrap(),
        0
    );
}

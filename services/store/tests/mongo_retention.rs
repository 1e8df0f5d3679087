//! MongoDB expires history past its retention itself: a TTL index on `created_at`, set,
//! changed and dropped with `history.retention` (against SecantusDB, see scripts/services-up).

use std::time::Duration;

use clawdbot_store::HistoryStore;
use clawdbot_store::mongo::{MongoHistory, MongoSettings};

async fn history() -> MongoHistory {
    let settings = MongoSettings {
        uri: clawdbot_testkit::store::mongodb_url(),
        write_concern: "majority".into(),
        database: format!("t_{}", clawdbot_testkit::random_suffix()),
        pool_size: 2,
        timeout: Duration::from_secs(5),
    };
    MongoHistory::connect(&settings)
        .await
        .expect("MongoDB (start SecantusDB: scripts/services-up)")
}

#[tokio::test]
async fn the_retention_is_a_ttl_index_that_follows_the_config() {
    let history = history().await;
    assert_eq!(
        history.expiry().await.expect("indexes"),
        None,
        "none until asked"
    );

    let day = Duration::from_secs(86_400);
    assert!(
        history
            .expire_history_after(Some(180 * day))
            .await
            .expect("set")
    );
    assert_eq!(history.expiry().await.expect("indexes"), Some(180 * day));
    // Asking again changes nothing; a new retention replaces the index.
    assert!(
        history
            .expire_history_after(Some(180 * day))
            .await
            .expect("again")
    );
    assert!(
        history
            .expire_history_after(Some(30 * day))
            .await
            .expect("changed")
    );
    assert_eq!(history.expiry().await.expect("indexes"), Some(30 * day));
    // Retention removed from the config: rows are kept again.
    assert!(!history.expire_history_after(None).await.expect("dropped"));
    assert_eq!(history.expiry().await.expect("indexes"), None);
    history.drop_database().await.expect("drop");
}

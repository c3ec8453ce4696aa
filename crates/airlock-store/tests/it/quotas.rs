//! `QuotaStore` on every backend (memory, SQLite, PostgreSQL): the same
//! sliding-window behaviour, and no overshoot when takes race, within one
//! process and across two replicas on one database.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlock_policy::{MemoryQuotaStore, QuotaKey, QuotaStore, Take};
use airlock_store::testing::PostgresServer;
use airlock_store::{PostgresOptions, PostgresStore, SqliteStore};

const MINUTE: Duration = Duration::from_secs(60);

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
}

fn key(subject: &str) -> QuotaKey {
    QuotaKey {
        quota: "secret-reads".into(),
        subject: subject.into(),
    }
}

/// What every store must do, on a fake clock.
async fn conforms(store: Arc<dyn QuotaStore>) {
    let agent = key("agent");
    let take = |amount, now| Take {
        key: &agent,
        amount,
        limit: 3,
        window: MINUTE,
        now,
    };
    for second in 0..3 {
        let taken = store.take(take(1, at(second * 10))).await.unwrap();
        assert!(taken.granted, "use {second} of 3");
        assert_eq!(taken.usage.used, second + 1);
        assert_eq!(taken.usage.oldest, Some(at(0)));
    }
    let refused = store.take(take(1, at(30))).await.unwrap();
    assert!(!refused.granted, "a fourth within the minute");
    assert_eq!(refused.usage.used, 3, "a refused take is not counted");
    assert!(
        !store.take(take(0, at(30))).await.unwrap().granted,
        "nothing left"
    );
    // Other subjects have their own count.
    let other = key("other");
    let theirs = Take {
        key: &other,
        ..take(1, at(30))
    };
    assert!(store.take(theirs).await.unwrap().granted);
    let usage = store.usage("secret-reads", MINUTE, at(40)).await.unwrap();
    let subjects: Vec<_> = usage.iter().map(|u| (u.subject.as_str(), u.used)).collect();
    assert_eq!(subjects, [("agent", 3), ("other", 1)]);
    // The window slides: the first use leaves it after a minute, one at a time.
    let later = store.take(take(1, at(61))).await.unwrap();
    assert!(later.granted, "the use at 0 s has left the window");
    assert_eq!(later.usage.oldest, Some(at(10)));
    assert!(!store.take(take(1, at(62))).await.unwrap().granted);
    // More than the limit at once never fits.
    assert!(!store.take(take(5, at(1_000))).await.unwrap().granted);
    // Bytes already sent are added whatever the limit.
    store.add(&agent, 10, at(1_000)).await.unwrap();
    assert_eq!(store.take(take(0, at(1_000))).await.unwrap().usage.used, 10);
    // Usage lists the subjects with use in the window.
    let usage = store
        .usage("secret-reads", MINUTE, at(1_000))
        .await
        .unwrap();
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!((usage[0].subject.as_str(), usage[0].used), ("agent", 10));
    // A use given back leaves room at once; one that is not there (given
    // back twice, or never taken) changes nothing.
    let fresh = key("returner");
    let take = |now| Take {
        key: &fresh,
        amount: 1,
        limit: 2,
        window: MINUTE,
        now,
    };
    assert!(store.take(take(at(2_000))).await.unwrap().granted);
    assert!(store.take(take(at(2_001))).await.unwrap().granted);
    assert!(!store.take(take(at(2_002))).await.unwrap().granted);
    store.give_back(&fresh, 1, at(2_001)).await.unwrap();
    store.give_back(&fresh, 1, at(2_001)).await.unwrap();
    store.give_back(&fresh, 1, at(1_999)).await.unwrap();
    let after = store.take(take(at(2_003))).await.unwrap();
    assert!(after.granted, "room again after the give-back");
    assert_eq!(after.usage.used, 2, "only the one use was given back");
}

/// Forty takes at once, from however many stores: exactly the limit granted.
async fn no_overshoot(stores: Vec<Arc<dyn QuotaStore>>) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = stores[i % stores.len()].clone();
        tasks.push(tokio::spawn(async move {
            let agent = key("racer");
            let take = Take {
                key: &agent,
                amount: 1,
                limit: 5,
                window: MINUTE,
                now: at(0),
            };
            store.take(take).await.unwrap().granted
        }));
    }
    let mut granted = 0;
    for task in tasks {
        granted += usize::from(task.await.unwrap());
    }
    assert_eq!(granted, 5);
}

#[tokio::test]
async fn memory() {
    conforms(Arc::new(MemoryQuotaStore::default())).await;
    no_overshoot(vec![Arc::new(MemoryQuotaStore::default())]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_two_processes_sharing_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("airlock.db");
    conforms(Arc::new(SqliteStore::open(&path).await.unwrap())).await;
    let fresh = dir.path().join("race.db");
    let one = SqliteStore::open(&fresh).await.unwrap();
    let two = SqliteStore::open(&fresh).await.unwrap();
    no_overshoot(vec![Arc::new(one), Arc::new(two)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_two_replicas_sharing_it() {
    let server = tokio::task::spawn_blocking(PostgresServer::start)
        .await
        .unwrap()
        .unwrap();
    let connect = |url: String, replica: &'static str| async move {
        PostgresStore::connect(
            PostgresOptions::new(url)
                .password(PostgresServer::PASSWORD)
                .replica(replica),
        )
        .await
        .unwrap()
    };
    let url = server.create_database("quotas").await.unwrap();
    conforms(Arc::new(connect(url, "a").await)).await;
    let url = server.create_database("race").await.unwrap();
    let a = connect(url.clone(), "a").await;
    let b = connect(url, "b").await;
    no_overshoot(vec![Arc::new(a), Arc::new(b)]).await;
}

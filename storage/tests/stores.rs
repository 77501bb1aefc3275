//! The object-store contract, checked the same way on the local folder and on S3.

mod support;

use bytes::Bytes;
use storage::{ObjectStore, StorageError};

macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod local {
            $( #[tokio::test] async fn $scenario() { super::$scenario(&*$crate::support::local().store).await } )*
        }
        mod s3 {
            $( #[tokio::test] async fn $scenario() {
                let Some(t) = $crate::support::s3().await else { return };
                super::$scenario(&*t.store).await
            } )*
        }
    };
}

on_both_stores!(
    round_trip,
    listing_by_prefix,
    missing_keys_are_not_found,
    copy_and_rename,
    bad_keys_are_refused,
    a_failed_write_leaves_the_old_object_whole,
);

async fn round_trip(store: &dyn ObjectStore) {
    let key = "incoming/OP001/2026-11-26/OP001_20261126_001.csv";
    store
        .put(key, Bytes::from_static(b"H,1,OP001\n"))
        .await
        .unwrap();
    assert_eq!(
        store.get_bytes(key).await.unwrap(),
        Bytes::from_static(b"H,1,OP001\n")
    );
    assert_eq!(store.head(key).await.unwrap().size, 10);
    // Overwrite replaces the whole object.
    store.put(key, Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(
        store.get_bytes(key).await.unwrap(),
        Bytes::from_static(b"x")
    );
    store.put("empty.txt", Bytes::new()).await.unwrap();
    assert_eq!(store.head("empty.txt").await.unwrap().size, 0);
}

async fn listing_by_prefix(store: &dyn ObjectStore) {
    for key in [
        "incoming/OP002/a.csv",
        "incoming/OP001/b.csv",
        "incoming/OP001/a.csv",
        "rejected/OP001/a.csv",
        "incomingX",
    ] {
        store.put(key, Bytes::from(key.to_string())).await.unwrap();
    }
    let keys: Vec<String> = store
        .list("incoming/OP001/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["incoming/OP001/a.csv", "incoming/OP001/b.csv"]);
    let keys: Vec<String> = store
        .list("incoming/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(store.list("nothing/").await.unwrap().is_empty());
    let all = store.list("").await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all.iter().find(|o| o.key == "incomingX").unwrap().size, 9);
}

async fn missing_keys_are_not_found(store: &dyn ObjectStore) {
    assert!(
        matches!(store.get("no/such.csv").await.err(), Some(StorageError::NotFound(k)) if k == "no/such.csv")
    );
    assert!(matches!(
        store.head("no/such.csv").await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        store.copy("no/such.csv", "x").await,
        Err(StorageError::NotFound(_))
    ));
    store.delete("no/such.csv").await.unwrap();
}

async fn copy_and_rename(store: &dyn ObjectStore) {
    store
        .put("incoming/a.csv", Bytes::from_static(b"abc"))
        .await
        .unwrap();
    store.copy("incoming/a.csv", "archive/a.csv").await.unwrap();
    assert_eq!(
        store.get_bytes("archive/a.csv").await.unwrap(),
        Bytes::from_static(b"abc")
    );
    store
        .rename("incoming/a.csv", "rejected/a.csv")
        .await
        .unwrap();
    assert!(matches!(
        store.head("incoming/a.csv").await,
        Err(StorageError::NotFound(_))
    ));
    assert_eq!(
        store.get_bytes("rejected/a.csv").await.unwrap(),
        Bytes::from_static(b"abc")
    );
}

async fn bad_keys_are_refused(store: &dyn ObjectStore) {
    for key in ["../escape", "/abs", "a//b", ""] {
        assert!(
            matches!(
                store.put(key, Bytes::new()).await,
                Err(StorageError::InvalidKey { .. })
            ),
            "{key}"
        );
        assert!(store.get(key).await.is_err());
    }
}

#[tokio::test]
async fn objects_are_written_with_sse_kms_when_configured() {
    let Some(t) =
        support::s3_with(|s| s.sse_kms_key_id(Some("alias/recaudo-reports".into()))).await
    else {
        return;
    };
    let s3 = t.s3.as_ref().unwrap();
    t.store
        .put("reports/x.csv", Bytes::from_static(b"a,b\n"))
        .await
        .unwrap();
    let head = s3
        .client()
        .head_object()
        .bucket(s3.bucket())
        .key("tenant/reports/x.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption().map(|s| s.as_str()),
        Some("aws:kms")
    );
    assert_eq!(head.ssekms_key_id(), Some("alias/recaudo-reports"));
    // A copy keeps the encryption.
    t.store
        .copy("reports/x.csv", "reports/y.csv")
        .await
        .unwrap();
    let head = s3
        .client()
        .head_object()
        .bucket(s3.bucket())
        .key("tenant/reports/y.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption().map(|s| s.as_str()),
        Some("aws:kms")
    );
}

/// A write that fails half-way (here: the source stream breaks after 12 MiB, past the first
/// multipart part) leaves the previous object whole and nothing half-written to list.
async fn a_failed_write_leaves_the_old_object_whole(store: &dyn ObjectStore) {
    store
        .put("reports/summary.csv", Bytes::from_static(b"old,complete\n"))
        .await
        .unwrap();
    let chunks = (0..13).map(|i| {
        if i < 12 {
            Ok(Bytes::from(vec![b'x'; 1024 * 1024]))
        } else {
            Err(StorageError::Io {
                op: "read",
                key: "source".into(),
                source: std::io::Error::other("the source broke"),
            })
        }
    });
    let result = store
        .put_stream(
            "reports/summary.csv",
            Box::pin(futures::stream::iter(chunks)),
        )
        .await;
    assert!(result.is_err());
    assert_eq!(
        store.get_bytes("reports/summary.csv").await.unwrap(),
        Bytes::from_static(b"old,complete\n")
    );
    let keys: Vec<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["reports/summary.csv"]);
}

//! Stores for tests: a temporary folder, and a fresh bucket on the S3-compatible test server
//! named by `RECAUDO_TEST_S3_ENDPOINT`. Whether a missing server skips or fails a test is the
//! caller's call (see `testbed::service_missing`), so this returns why it is missing.

use std::sync::Arc;

use storage::{LocalStore, ObjectStore, S3Settings, S3Store};

pub const TEST_S3_ENDPOINT_VAR: &str = "RECAUDO_TEST_S3_ENDPOINT";

pub struct TestStore {
    pub store: Arc<dyn ObjectStore>,
    pub s3: Option<Arc<S3Store>>,
    _dir: Option<tempfile::TempDir>,
}

pub fn local() -> TestStore {
    let dir = tempfile::tempdir().expect("a temporary folder");
    TestStore {
        store: Arc::new(LocalStore::new(dir.path()).expect("a local store")),
        s3: None,
        _dir: Some(dir),
    }
}

/// Settings for `bucket` on the test server, with static test credentials.
pub fn s3_settings(bucket: &str) -> Result<S3Settings, String> {
    let endpoint = std::env::var(TEST_S3_ENDPOINT_VAR)
        .map_err(|_| format!("{TEST_S3_ENDPOINT_VAR} is not set"))?;
    Ok(S3Settings {
        bucket: bucket.to_string(),
        prefix: "tenant/".into(),
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        sse_kms_key_id: None,
        static_credentials: Some(("test".into(), "test".into())),
    })
}

/// A store on a new bucket of the test S3 server.
pub async fn s3_with(
    configure: impl FnOnce(S3Settings) -> S3Settings,
) -> Result<TestStore, String> {
    let bucket = format!("recaudo-test-{}", uuid::Uuid::new_v4().simple());
    let settings = configure(s3_settings(&bucket)?);
    let store = Arc::new(S3Store::new(settings).await);
    store
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .map_err(|e| format!("creating a test bucket: {e:?}"))?;
    Ok(TestStore {
        store: store.clone(),
        s3: Some(store),
        _dir: None,
    })
}

//! The stores of `storage::testing`; a missing S3 server skips the test on a laptop and
//! fails it in CI.

#![allow(dead_code)]

pub use storage::S3Settings;
pub use testbed::store::{TestStore, local};

pub fn s3_settings(bucket: &str) -> Option<S3Settings> {
    testbed::store::s3_settings(bucket)
        .map_err(|e| testbed::service_missing("the S3-compatible server", &e))
        .ok()
}

pub async fn s3_with(configure: impl FnOnce(S3Settings) -> S3Settings) -> Option<TestStore> {
    testbed::store::s3_with(configure)
        .await
        .map_err(|e| testbed::service_missing("the S3-compatible server", &e))
        .ok()
}

pub async fn s3() -> Option<TestStore> {
    s3_with(|s| s).await
}

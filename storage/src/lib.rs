//! Object storage for recaudo: where operator files arrive and reports are published. One
//! small trait with two implementations, chosen by URL: `s3://bucket/prefix` (AWS S3 or any
//! S3-compatible store) and `file://dir` (a local folder, the embedded default).
//!
//! Objects stream both ways: nothing here needs a whole large object in memory.

mod local;
mod s3;

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

pub use local::LocalStore;
pub use s3::{S3Settings, S3Store};

/// A stream of an object's bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StorageError>> + Send>>;

/// An object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key, relative to the store's root or prefix.
    pub key: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {0} not found")]
    NotFound(String),
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("invalid storage URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{op} {key}: {source}")]
    Io {
        op: &'static str,
        key: String,
        source: std::io::Error,
    },
    #[error("S3 {op} {key} failed: {message}")]
    S3 {
        op: &'static str,
        key: String,
        message: String,
        retryable: bool,
    },
}

impl fault::Fault for StorageError {
    /// The store being down or throttling is external; a key or URL we built wrong, or an
    /// object that should be there and is not, is ours.
    fn blame(&self) -> fault::Blame {
        use fault::Blame;
        match self {
            StorageError::S3 { .. } => Blame::External,
            StorageError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut => Blame::External,
                _ => Blame::Internal,
            },
            StorageError::InvalidUrl { .. } => Blame::User,
            StorageError::NotFound(_) | StorageError::InvalidKey { .. } => Blame::Internal,
        }
    }

    fn retry(&self) -> fault::RetryHint {
        match self {
            StorageError::S3 {
                retryable: false, ..
            } => fault::RetryHint::Never,
            other => other.blame().into(),
        }
    }
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// A description for logs: the URL without credentials.
    fn describe(&self) -> String;
    /// Writes an object from a stream. Readers never see a partial object.
    async fn put_stream(&self, key: &str, body: ByteStream) -> Result<(), StorageError>;
    /// Reads an object as a stream; a missing key is `NotFound`.
    async fn get(&self, key: &str) -> Result<ByteStream, StorageError>;
    /// Objects whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError>;
    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError>;
    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError>;
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// Writes a small object held in memory.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError> {
        self.put_stream(key, Box::pin(futures::stream::once(async { Ok(body) })))
            .await
    }

    /// Reads a whole object into memory: for small objects only.
    async fn get_bytes(&self, key: &str) -> Result<Bytes, StorageError> {
        let chunks: Vec<Bytes> = self.get(key).await?.try_collect().await?;
        Ok(chunks.concat().into())
    }

    /// Moves an object: a copy, then the delete of the original.
    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.copy(from, to).await?;
        self.delete(from).await
    }
}

/// Keys are `/`-separated relative paths: no empty, `.` or `..` segments, no leading `/`,
/// no backslashes or control characters. The local store relies on this against path
/// traversal; S3 gets the same rule so both stores accept the same keys.
pub fn check_key(key: &str) -> Result<(), StorageError> {
    let bad = |reason| {
        Err(StorageError::InvalidKey {
            key: key.chars().take(200).collect(),
            reason,
        })
    };
    if key.is_empty() || key.len() > 1024 {
        return bad("must be 1 to 1024 bytes");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return bad("must not contain control characters or backslashes");
    }
    if key
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return bad("must be a relative path without empty, '.' or '..' segments");
    }
    Ok(())
}

/// Opens the store a URL names: `s3://bucket/prefix` (credentials, region and
/// `AWS_ENDPOINT_URL` from the standard AWS environment) or `file://dir`.
pub async fn open(
    url: &str,
    sse_kms_key_id: Option<String>,
) -> Result<Arc<dyn ObjectStore>, StorageError> {
    if let Some(dir) = url.strip_prefix("file://") {
        return Ok(Arc::new(LocalStore::new(dir)?));
    }
    if url.starts_with("s3://") {
        let settings = S3Settings::from_url(url)?.sse_kms_key_id(sse_kms_key_id);
        return Ok(Arc::new(S3Store::new(settings).await));
    }
    Err(StorageError::InvalidUrl {
        url: url.to_string(),
        reason: "must start with s3:// or file://".into(),
    })
}

/// Regroups a stream's bytes into parts of
/// `size` bytes (the last may be shorter), holding one part at a time.
pub(crate) fn parts(
    body: ByteStream,
    size: usize,
) -> impl Stream<Item = Result<Bytes, StorageError>> {
    futures::stream::unfold(
        (body, bytes::BytesMut::new(), false),
        move |(mut body, mut buf, done)| async move {
            if done {
                return None;
            }
            while buf.len() < size {
                match body.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => return Some((Err(e), (body, buf, true))),
                    None => {
                        if buf.is_empty() {
                            return None;
                        }
                        let part = buf.split().freeze();
                        return Some((Ok(part), (body, buf, true)));
                    }
                }
            }
            let part = buf.split_to(size).freeze();
            Some((Ok(part), (body, buf, false)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_store() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "a/./b",
            "a\\b",
            "a\nb",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        for good in [
            "incoming/OP001/2026-11-26/OP001_20261126_001.csv",
            "reports/latest.json",
            "a..b",
        ] {
            assert!(check_key(good).is_ok(), "{good:?}");
        }
    }

    #[tokio::test]
    async fn parts_are_full_sized_but_the_last() {
        let chunks: Vec<Result<Bytes, StorageError>> =
            (0..10).map(|_| Ok(Bytes::from(vec![7u8; 3]))).collect();
        let parts: Vec<Bytes> = parts(Box::pin(futures::stream::iter(chunks)), 8)
            .try_collect()
            .await
            .unwrap();
        let sizes: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        assert_eq!(sizes, [8, 8, 8, 6]);
    }
}

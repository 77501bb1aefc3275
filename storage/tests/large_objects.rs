//! A 64 MiB object streams in and out of each store without being held in memory: the
//! process's peak resident memory grows by far less than the object. One test in its own
//! binary, so nothing else moves the peak.

mod support;

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use storage::ObjectStore;

const SIZE: usize = 64 * 1024 * 1024;
const CHUNK: usize = 1024 * 1024;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// 64 MiB of varied bytes, made chunk by chunk.
fn body() -> storage::ByteStream {
    Box::pin(futures::stream::iter(0..SIZE / CHUNK).map(|i| {
        let chunk: Vec<u8> = (0..CHUNK).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        Ok(Bytes::from(chunk))
    }))
}

fn expected_digest() -> Vec<u8> {
    let mut h = Sha256::new();
    for i in 0..SIZE / CHUNK {
        let chunk: Vec<u8> = (0..CHUNK).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        h.update(&chunk);
    }
    h.finalize().to_vec()
}

async fn stream_through(store: &dyn ObjectStore, expected: &[u8]) {
    let before = peak_rss_kib();
    store.put_stream("big/object.bin", body()).await.unwrap();
    assert_eq!(
        store.head("big/object.bin").await.unwrap().size,
        SIZE as u64
    );
    let mut stream = store.get("big/object.bin").await.unwrap();
    let mut h = Sha256::new();
    let mut len = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        len += chunk.len();
        h.update(&chunk);
    }
    assert_eq!(len, SIZE);
    assert_eq!(h.finalize().to_vec(), expected);
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    assert!(
        grown_mib < 40,
        "{}: peak memory grew by {grown_mib} MiB for a 64 MiB object",
        store.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_object_streams_both_ways() {
    let expected = expected_digest();
    let local = support::local();
    stream_through(&*local.store, &expected).await;
    if let Some(s3) = support::s3().await {
        stream_through(&*s3.store, &expected).await;
    }
}

//! A local folder as an object store, for the embedded default and tests. Writes go to a
//! temporary file in the same folder tree and are renamed into place, so a reader never
//! sees half an object.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::{ByteStream, ObjectMeta, ObjectStore, StorageError, check_key};

/// Temporary files live here, inside the root so that the final rename stays on one
/// filesystem (and is therefore atomic).
const TMP_DIR: &str = ".tmp";

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl AsRef<Path>) -> Result<LocalStore, StorageError> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(root.join(TMP_DIR)).map_err(|source| StorageError::Io {
            op: "create",
            key: root.display().to_string(),
            source,
        })?;
        Ok(LocalStore { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        if key == TMP_DIR || key.starts_with(&format!("{TMP_DIR}/")) {
            return Err(StorageError::InvalidKey {
                key: key.to_string(),
                reason: "is reserved",
            });
        }
        Ok(self.root.join(key))
    }

    fn io<'k>(op: &'static str, key: &'k str) -> impl FnOnce(std::io::Error) -> StorageError + 'k {
        move |source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                StorageError::NotFound(key.to_string())
            } else {
                StorageError::Io {
                    op,
                    key: key.to_string(),
                    source,
                }
            }
        }
    }

    async fn write_atomically(&self, key: &str, mut body: ByteStream) -> Result<(), StorageError> {
        let target = self.path(key)?;
        let tmp = self
            .root
            .join(TMP_DIR)
            .join(uuid::Uuid::new_v4().to_string());
        let result = async {
            let mut file = tokio::fs::File::create(&tmp)
                .await
                .map_err(Self::io("write", key))?;
            while let Some(chunk) = body.next().await {
                file.write_all(&chunk?)
                    .await
                    .map_err(Self::io("write", key))?;
            }
            file.sync_all().await.map_err(Self::io("write", key))?;
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(Self::io("write", key))?;
            }
            tokio::fs::rename(&tmp, &target)
                .await
                .map_err(Self::io("write", key))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn put_stream(&self, key: &str, body: ByteStream) -> Result<(), StorageError> {
        self.write_atomically(key, body).await
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StorageError> {
        let path = self.path(key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(Self::io("get", key))?;
        if file
            .metadata()
            .await
            .map_err(Self::io("get", key))?
            .is_dir()
        {
            return Err(StorageError::NotFound(key.to_string()));
        }
        let key = key.to_string();
        Ok(Box::pin(
            ReaderStream::with_capacity(file, 256 * 1024).map_err(move |source| StorageError::Io {
                op: "get",
                key: key.clone(),
                source,
            }),
        ))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(source) => {
                        return Err(StorageError::Io {
                            op: "list",
                            key: prefix.clone(),
                            source,
                        });
                    }
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let Ok(rel) = path.strip_prefix(&root) else {
                        continue;
                    };
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if key == TMP_DIR {
                        continue;
                    }
                    let Ok(meta) = entry.metadata() else { continue };
                    if meta.is_dir() {
                        // Only descend where keys can still match the prefix.
                        let dir_key = format!("{key}/");
                        if dir_key.starts_with(&prefix) || prefix.starts_with(&dir_key) {
                            stack.push(path);
                        }
                    } else if key.starts_with(&prefix) {
                        out.push(ObjectMeta {
                            key,
                            size: meta.len(),
                        });
                    }
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .expect("list task")
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let meta = tokio::fs::metadata(self.path(key)?)
            .await
            .map_err(Self::io("head", key))?;
        if meta.is_dir() {
            return Err(StorageError::NotFound(key.to_string()));
        }
        Ok(ObjectMeta {
            key: key.to_string(),
            size: meta.len(),
        })
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let body = self.get(from).await?;
        self.write_atomically(to, body).await
    }

    /// Deleting a missing object succeeds, as on S3.
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Self::io("delete", key)(e)),
            _ => Ok(()),
        }
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let (source, target) = (self.path(from)?, self.path(to)?);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(Self::io("rename", to))?;
        }
        tokio::fs::rename(source, target)
            .await
            .map_err(Self::io("rename", from))
    }
}

//! Amazon S3 and S3-compatible stores (aws-sdk-s3). Credentials come from the standard AWS
//! chain (environment, profile, web identity on EKS, instance metadata); `AWS_ENDPOINT_URL`
//! or an explicit endpoint switches to path-style addressing for S3-compatible servers.
//! With a KMS key configured every object is written with SSE-KMS.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as AwsBody;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use futures::StreamExt;

use crate::{ByteStream, ObjectMeta, ObjectStore, StorageError, check_key, parts};

/// Objects larger than this are uploaded in parts of this size; it is also the most a
/// write holds in memory. S3's minimum part size is 5 MiB.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    pub bucket: String,
    /// Prepended to every key, without a leading slash; empty or ending in `/`.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub sse_kms_key_id: Option<String>,
    /// Fixed credentials (tests against a local server); `None` uses the AWS chain.
    pub static_credentials: Option<(String, String)>,
}

impl S3Settings {
    /// `s3://bucket` or `s3://bucket/some/prefix`.
    pub fn from_url(url: &str) -> Result<S3Settings, StorageError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| StorageError::InvalidUrl {
                url: url.into(),
                reason: "must start with s3://".into(),
            })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StorageError::InvalidUrl {
                url: url.into(),
                reason: "names no bucket".into(),
            });
        }
        let prefix = prefix.trim_matches('/');
        Ok(S3Settings {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            ..S3Settings::default()
        })
    }

    pub fn sse_kms_key_id(mut self, key: Option<String>) -> S3Settings {
        self.sse_kms_key_id = key;
        self
    }
}

pub struct S3Store {
    client: Client,
    settings: S3Settings,
}

fn s3_error<E, R>(op: &'static str, key: &str, err: SdkError<E, R>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let status = match &err {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or_default();
            if matches!(code, "NoSuchKey" | "NotFound") {
                return StorageError::NotFound(key.to_string());
            }
            Some(code.to_string())
        }
        _ => None,
    };
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => status.as_deref().is_some_and(|c| {
            matches!(
                c,
                "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout"
            )
        }),
        _ => false,
    };
    // People get one short line; the SDK's whole context goes to the log.
    tracing::debug!(op, key, detail = %DisplayErrorContext(&err), "S3 request failed");
    StorageError::S3 {
        op,
        key: key.to_string(),
        message: readable(&err, status.as_deref()),
        retryable,
    }
}

/// What went wrong, for a person: the service's code and message, or the innermost cause
/// of a request that never got an answer (`Connection refused (os error 111)`), with what
/// to check.
fn readable<E, R>(err: &SdkError<E, R>, code: Option<&str>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let root = || {
        let mut cause: &dyn std::error::Error = err;
        while let Some(next) = cause.source() {
            cause = next;
        }
        cause.to_string()
    };
    match err {
        SdkError::ServiceError(s) => {
            let message = s.err().message().unwrap_or("no message");
            format!("{}: {message}", code.unwrap_or("error"))
        }
        SdkError::DispatchFailure(_) => format!(
            "the object store could not be reached ({}); check RECAUDO_OBJECT_STORE, \
             AWS_ENDPOINT_URL and that the store is up",
            root()
        ),
        SdkError::TimeoutError(_) => "the object store did not answer in time".to_string(),
        SdkError::ResponseError(_) => {
            format!("the object store's answer could not be read ({})", root())
        }
        _ => root(),
    }
}

/// Percent-encodes a copy source, keeping `/`.
fn encode_source(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl S3Store {
    pub async fn new(settings: S3Settings) -> S3Store {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some((id, secret)) = &settings.static_credentials {
            loader = loader.credentials_provider(Credentials::new(
                id,
                secret,
                None,
                None,
                "recaudo-static",
            ));
        }
        let sdk = loader.load().await;
        let path_style =
            settings.endpoint.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let mut conf = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(path_style);
        if sdk.region().is_none() {
            conf = conf.region(Region::new("us-east-1"));
        }
        S3Store {
            client: Client::from_conf(conf.build()),
            settings,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    fn full(&self, key: &str) -> Result<String, StorageError> {
        check_key(key)?;
        Ok(format!("{}{key}", self.settings.prefix))
    }

    fn kms(&self) -> (Option<ServerSideEncryption>, Option<String>) {
        match &self.settings.sse_kms_key_id {
            Some(id) => (Some(ServerSideEncryption::AwsKms), Some(id.clone())),
            None => (None, None),
        }
    }

    async fn multipart(
        &self,
        key: &str,
        full: &str,
        first: bytes::Bytes,
        mut rest: impl futures::Stream<Item = Result<bytes::Bytes, StorageError>> + Unpin,
    ) -> Result<(), StorageError> {
        let (sse, kms) = self.kms();
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.settings.bucket)
            .key(full)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .send()
            .await
            .map_err(|e| s3_error("create multipart upload", key, e))?;
        let upload_id = upload.upload_id().unwrap_or_default().to_string();
        let result = async {
            let mut completed = Vec::new();
            let mut next = Some(Ok(first));
            let mut number = 1;
            while let Some(part) = next {
                let part = part?;
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.settings.bucket)
                    .key(full)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(AwsBody::from(part))
                    .send()
                    .await
                    .map_err(|e| s3_error("upload part", key, e))?;
                completed.push(
                    CompletedPart::builder()
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .part_number(number)
                        .build(),
                );
                number += 1;
                next = rest.next().await;
            }
            self.client
                .complete_multipart_upload()
                .bucket(&self.settings.bucket)
                .key(full)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(completed))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| s3_error("complete multipart upload", key, e))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.settings.bucket)
                .key(full)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.settings.bucket, self.settings.prefix)
    }

    async fn put_stream(&self, key: &str, body: ByteStream) -> Result<(), StorageError> {
        let full = self.full(key)?;
        let mut parts = Box::pin(parts(body, PART_SIZE));
        let first = parts.next().await.transpose()?.unwrap_or_default();
        if first.len() < PART_SIZE {
            // Fits in one request.
            let (sse, kms) = self.kms();
            self.client
                .put_object()
                .bucket(&self.settings.bucket)
                .key(&full)
                .body(AwsBody::from(first))
                .set_server_side_encryption(sse)
                .set_ssekms_key_id(kms)
                .send()
                .await
                .map_err(|e| s3_error("put", key, e))?;
            return Ok(());
        }
        self.multipart(key, &full, first, parts).await
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StorageError> {
        let full = self.full(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| s3_error("get", key, e))?;
        let key = key.to_string();
        Ok(Box::pin(futures::stream::unfold(
            Some(out.body),
            move |body| {
                let key = key.clone();
                async move {
                    let mut body = body?;
                    match body.next().await {
                        Some(Ok(bytes)) => Some((Ok(bytes), Some(body))),
                        Some(Err(e)) => Some((
                            Err(StorageError::S3 {
                                op: "get",
                                key,
                                message: e.to_string(),
                                retryable: true,
                            }),
                            None,
                        )),
                        None => None,
                    }
                }
            },
        )))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let full_prefix = format!("{}{prefix}", self.settings.prefix);
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.settings.bucket)
                .prefix(&full_prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| s3_error("list", prefix, e))?;
            for object in page.contents() {
                if let Some(k) = object
                    .key()
                    .and_then(|k| k.strip_prefix(&self.settings.prefix))
                {
                    out.push(ObjectMeta {
                        key: k.to_string(),
                        size: object.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let full = self.full(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.settings.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_not_found() => StorageError::NotFound(key.to_string()),
                _ => s3_error("head", key, e),
            })?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
        })
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let (source, target) = (self.full(from)?, self.full(to)?);
        let (sse, kms) = self.kms();
        self.client
            .copy_object()
            .bucket(&self.settings.bucket)
            .key(&target)
            .copy_source(encode_source(&format!("{}/{source}", self.settings.bucket)))
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .send()
            .await
            .map_err(|e| s3_error("copy", from, e))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let full = self.full(key)?;
        self.client
            .delete_object()
            .bucket(&self.settings.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| s3_error("delete", key, e))?;
        Ok(())
    }
}

//! Files in an S3-compatible object store (feature `s3`, object_store).

use super::{FileBackend, FileError, FileKey, FileObject, OCTET_STREAM, Upload};
use bytes::BytesMut;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions,
    PutPayload, WriteMultipart,
};
use std::fmt;

/// Uploads up to this size are one `PUT`; larger ones are multipart
/// uploads in parts of this size (S3's minimum part is 5 MiB).
const PART: usize = 8 * 1024 * 1024;
/// Parts in flight at once: memory per upload is about `PART × (1 + this)`.
const PARTS_IN_FLIGHT: usize = 2;

fn backend(e: object_store::Error) -> FileError {
    FileError::Backend(e.to_string())
}

/// Files in an S3 bucket (or any S3-compatible server: MinIO, Ceph, R2,
/// moto), optionally under a prefix.
///
/// Configured from the usual variables by [`from_env`](Self::from_env)
/// (`STORAGE_URL=s3://bucket/prefix`): `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_DEFAULT_REGION`,
/// `AWS_ENDPOINT` (another server), `AWS_ALLOW_HTTP=true` (a server
/// without TLS), web identity and container credentials, as object_store
/// reads them. Uploads up to 8 MiB are one `PUT`; larger ones stream as a
/// multipart upload, 8 MiB parts, two in flight, so memory stays bounded
/// whatever the size; a refused or failed upload is aborted. An upload
/// cancelled midway (its request dropped) leaves an incomplete multipart
/// upload that is invisible under the key; a bucket lifecycle rule
/// (`AbortIncompleteMultipartUpload`) reclaims its parts.
///
/// TLS is rustls with the *ring* provider, installed as the process's
/// default rustls provider if none is (no aws-lc build).
///
/// ```no_run
/// use ferrapi_storage::files::{FileStore, S3FileStore};
/// use object_store::aws::AmazonS3Builder;
///
/// # fn f() -> Result<(), ferrapi_storage::files::FileError> {
/// let s3 = S3FileStore::from_builder(
///     AmazonS3Builder::new()
///         .with_bucket_name("uploads")
///         .with_region("us-east-1")
///         .with_endpoint("http://127.0.0.1:9000")
///         .with_allow_http(true)
///         .with_access_key_id("key")
///         .with_secret_access_key("secret"),
///     "avatars",
/// )?;
/// let store = FileStore::new(s3);
/// # Ok(()) }
/// ```
pub struct S3FileStore {
    store: AmazonS3,
    prefix: String,
}

impl fmt::Debug for S3FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3FileStore")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl S3FileStore {
    /// `bucket_and_prefix` is what follows `s3://` (`bucket` or
    /// `bucket/some/prefix`); everything else from the `AWS_*` variables.
    ///
    /// # Errors
    /// [`FileError::InvalidUrl`] for an empty bucket or a configuration
    /// object_store refuses.
    pub fn from_env(bucket_and_prefix: &str) -> Result<Self, FileError> {
        let (bucket, prefix) = bucket_and_prefix
            .split_once('/')
            .unwrap_or((bucket_and_prefix, ""));
        if bucket.is_empty() {
            return Err(FileError::InvalidUrl {
                url: format!("s3://{bucket_and_prefix}"),
                reason: "no bucket given".into(),
            });
        }
        Self::from_builder(AmazonS3Builder::from_env().with_bucket_name(bucket), prefix)
    }

    /// A store from an object_store builder, keys under `prefix`.
    ///
    /// # Errors
    /// [`FileError::InvalidUrl`] when the configuration is refused, or the
    /// prefix is not made of valid key segments.
    pub fn from_builder(builder: AmazonS3Builder, prefix: &str) -> Result<Self, FileError> {
        // reqwest is built without a bundled TLS provider: use ring, unless
        // the application installed one.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            FileKey::new(prefix)?;
        }
        let store = builder.build().map_err(|e| FileError::InvalidUrl {
            url: "s3://".into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            store,
            prefix: prefix.to_owned(),
        })
    }

    fn path(&self, key: &FileKey) -> Path {
        if self.prefix.is_empty() {
            Path::from(key.as_str())
        } else {
            Path::from(format!("{}/{}", self.prefix, key.as_str()))
        }
    }

    async fn put_multipart(
        &self,
        path: &Path,
        attributes: Attributes,
        first: BytesMut,
        body: &mut Upload<'_>,
    ) -> Result<u64, FileError> {
        let upload = self
            .store
            .put_multipart_opts(
                path,
                PutMultipartOptions {
                    attributes,
                    ..Default::default()
                },
            )
            .await
            .map_err(backend)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut size = first.len() as u64;
        writer.write(&first);
        drop(first);
        loop {
            let chunk = match body.next().await {
                None => break,
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                return Err(backend(e));
            }
            size += chunk.len() as u64;
            writer.write(&chunk);
        }
        writer.finish().await.map_err(backend)?;
        Ok(size)
    }
}

impl FileBackend for S3FileStore {
    fn put<'a>(
        &'a self,
        key: &'a FileKey,
        content_type: &'a str,
        mut body: Upload<'a>,
    ) -> BoxFuture<'a, Result<u64, FileError>> {
        Box::pin(async move {
            let path = self.path(key);
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::ContentType, content_type.to_owned().into());
            let mut first = BytesMut::new();
            while first.len() < PART {
                match body.next().await {
                    Some(chunk) => first.extend_from_slice(&chunk?),
                    None => {
                        let size = first.len() as u64;
                        let options = PutOptions {
                            attributes,
                            ..Default::default()
                        };
                        self.store
                            .put_opts(&path, PutPayload::from(first.freeze()), options)
                            .await
                            .map_err(backend)?;
                        return Ok(size);
                    }
                }
            }
            self.put_multipart(&path, attributes, first, &mut body)
                .await
        })
    }

    fn get<'a>(&'a self, key: &'a FileKey) -> BoxFuture<'a, Result<Option<FileObject>, FileError>> {
        Box::pin(async move {
            let result = match self.store.get(&self.path(key)).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(backend(e)),
            };
            let content_type = result
                .attributes
                .get(&Attribute::ContentType)
                .map_or(OCTET_STREAM.to_owned(), |v| v.as_ref().to_owned());
            Ok(Some(FileObject {
                content_type,
                size: result.meta.size,
                body: result.into_stream().map_err(backend).boxed(),
            }))
        })
    }

    fn delete<'a>(&'a self, key: &'a FileKey) -> BoxFuture<'a, Result<bool, FileError>> {
        Box::pin(async move {
            // S3's DELETE does not say whether there was an object.
            if !self.exists(key).await? {
                return Ok(false);
            }
            match self.store.delete(&self.path(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
                Err(e) => Err(backend(e)),
            }
        })
    }

    fn exists<'a>(&'a self, key: &'a FileKey) -> BoxFuture<'a, Result<bool, FileError>> {
        Box::pin(async move {
            match self.store.head(&self.path(key)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(backend(e)),
            }
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<(), FileError>> {
        Box::pin(async move {
            let prefix = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
            self.store
                .list_with_delimiter(prefix.as_ref())
                .await
                .map(drop)
                .map_err(backend)
        })
    }

    fn name(&self) -> &'static str {
        "s3"
    }
}

//! The blob store for several nodes: an S3-compatible object store (AWS S3, MinIO, Garage,
//! Ceph, ...) through `object_store`.
//!
//! The [`BlobStore`] port is synchronous (callers are on blocking threads), `object_store` is
//! async: the store owns a small tokio runtime whose threads do the network I/O, and each call
//! blocks the calling thread on it. Nothing is read into memory whole: a staged file is
//! uploaded in parts of [`PART_SIZE`], at most [`PARTS_IN_FLIGHT`] at a time (a small file in
//! one request), and a download is a [`Read`] over the response body, which the network
//! fills only as fast as the reader takes bytes out (`SyncIoBridge` over a `StreamReader`).
//! An object is never replaced: a key already stored is found with a HEAD request first (two
//! nodes racing on one key upload the same bytes, so either may win).

use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chat_domain::attachment::BlobKey;
use chat_domain::error::StoreError;
use chat_domain::ports::{BlobStore, StoreResult};
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, PutPayload, RetryConfig, WriteMultipart,
};
use tokio::runtime::Runtime;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// Size of the parts a staged file is uploaded in (S3 wants at least 5 MiB but the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// How many parts of one upload are sent at once: memory per upload is at most this many
/// parts plus the one being read.
pub const PARTS_IN_FLIGHT: usize = 2;

/// Where the objects are and how to sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// The server's URL (`http://127.0.0.1:9000`); `None` for AWS itself (by region).
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Whether a plain `http://` endpoint is accepted (a server on the same host or network).
    pub allow_http: bool,
    /// Objects are named `<prefix>/<key>`, so a bucket can be shared (`chatd/blobs`).
    pub prefix: Option<String>,
}

/// Why an [`S3BlobStore`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("invalid S3 configuration: {0}")]
    Config(#[from] object_store::Error),
    #[error("could not start the S3 client's runtime: {0}")]
    Runtime(#[from] io::Error),
}

/// Blobs in an S3 bucket; see the module doc.
pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    /// The same bucket without retries, for [`Self::check`] to answer at once.
    probe: Arc<dyn ObjectStore>,
    prefix: Option<String>,
    /// Taken (and shut down without waiting) on drop, which may happen on an async thread.
    runtime: Option<Runtime>,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl S3BlobStore {
    /// A store for `config`. Nothing is sent yet; [`Self::check`] tries the connection.
    pub fn new(config: &S3Config) -> Result<Self, S3Error> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        // A download is read at the pace of whoever downloads it, so a request may last long:
        // the whole-request limit is generous (and a body cut by it is resumed from where it
        // stopped by object_store's retries); a server that does not answer is found by the
        // connection limit.
        let client = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(15 * 60));
        builder = builder.with_client_options(client);
        let probe = builder
            .clone()
            .with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            })
            .build()?;
        let store = builder
            .with_retry(RetryConfig {
                max_retries: 5,
                retry_timeout: Duration::from_secs(60),
                ..RetryConfig::default()
            })
            .build()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("chat-files-s3")
            .enable_all()
            .build()?;
        let prefix = config
            .prefix
            .as_deref()
            .map(|prefix| prefix.trim_matches('/').to_owned())
            .filter(|prefix| !prefix.is_empty());
        Ok(Self {
            store: Arc::new(store),
            probe: Arc::new(probe),
            prefix,
            runtime: Some(runtime),
        })
    }

    /// Whether the bucket answers with these credentials (a HEAD of a key that is not there):
    /// for startup, so a wrong configuration stops the server instead of failing uploads.
    pub fn check(&self) -> StoreResult<()> {
        let probe = self.path(&BlobKey::from_digest(&[0; 32]));
        match self.block_on(self.probe.head(&probe)) {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(unavailable("check", &probe, err)),
        }
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime().block_on(future)
    }

    fn path(&self, key: &BlobKey) -> ObjectPath {
        match &self.prefix {
            Some(prefix) => ObjectPath::from(format!("{prefix}/{key}")),
            None => ObjectPath::from(key.as_str()),
        }
    }

    async fn exists(&self, path: &ObjectPath) -> object_store::Result<bool> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn upload(&self, path: &ObjectPath, staged: &Path) -> Result<(), PutError> {
        if self.exists(path).await? {
            return Ok(());
        }
        let mut file = File::open(staged)?;
        let size = file.metadata()?.len();
        if size <= PART_SIZE as u64 {
            let bytes = read_part(&mut file)?;
            self.store.put(path, PutPayload::from(bytes)).await?;
            return Ok(());
        }
        let mut writer =
            WriteMultipart::new_with_chunk_size(self.store.put_multipart(path).await?, PART_SIZE);
        let sent = async {
            loop {
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                // A read from the local disk, on the calling thread (a blocking one); the
                // parts in flight are sent by the runtime's threads meanwhile.
                let part = read_part(&mut file)?;
                if part.is_empty() {
                    return Ok::<(), PutError>(());
                }
                writer.put(part);
            }
        }
        .await;
        match sent {
            Ok(()) => {
                writer.finish().await?;
                Ok(())
            }
            Err(err) => {
                let _ = writer.abort().await;
                Err(err)
            }
        }
    }

    /// The object's bytes in `range`; `None` when it does not exist.
    async fn get(
        &self,
        path: &ObjectPath,
        range: Option<Range<u64>>,
    ) -> object_store::Result<Option<Box<dyn Read + Send>>> {
        let empty = || Some(Box::new(io::empty()) as Box<dyn Read + Send>);
        if let Some(range) = &range
            && range.start >= range.end
        {
            return Ok(self.exists(path).await?.then(empty).flatten());
        }
        let options = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(path, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => {
                // S3 refuses a range that starts at or past the end; the port gives no bytes.
                if let Some(range) = range {
                    match self.store.head(path).await {
                        Ok(meta) if range.start >= meta.size => return Ok(empty()),
                        Err(object_store::Error::NotFound { .. }) => return Ok(None),
                        _ => {}
                    }
                }
                return Err(err);
            }
        };
        let stream = result.into_stream().map_err(io::Error::other);
        let reader = SyncIoBridge::new_with_handle(
            StreamReader::new(stream),
            self.runtime().handle().clone(),
        );
        Ok(Some(Box::new(reader)))
    }
}

impl Drop for S3BlobStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Up to [`PART_SIZE`] bytes from `file`; empty at its end.
fn read_part(file: &mut File) -> io::Result<Bytes> {
    let mut part = Vec::with_capacity(PART_SIZE);
    file.take(PART_SIZE as u64).read_to_end(&mut part)?;
    Ok(Bytes::from(part))
}

#[derive(Debug, thiserror::Error)]
enum PutError {
    #[error(transparent)]
    Store(#[from] object_store::Error),
    #[error("reading the staged file: {0}")]
    Staged(#[from] io::Error),
}

fn unavailable(what: &str, path: &ObjectPath, err: impl std::fmt::Display) -> StoreError {
    tracing::error!(%path, error = %err, "S3 blob store: {what} failed");
    StoreError::Unavailable(format!("blob store: {what} failed"))
}

impl BlobStore for S3BlobStore {
    fn put(&self, key: &BlobKey, staged: &Path) -> StoreResult<()> {
        let path = self.path(key);
        self.block_on(self.upload(&path, staged))
            .map_err(|err| unavailable("put", &path, err))
    }

    fn put_bytes(&self, key: &BlobKey, bytes: &[u8]) -> StoreResult<()> {
        let path = self.path(key);
        self.block_on(async {
            if !self.exists(&path).await? {
                let payload = PutPayload::from(Bytes::copy_from_slice(bytes));
                self.store.put(&path, payload).await?;
            }
            Ok::<(), object_store::Error>(())
        })
        .map_err(|err| unavailable("put", &path, err))
    }

    /// The reader blocks on the store's runtime as it reads: read it on a blocking thread.
    fn open(
        &self,
        key: &BlobKey,
        range: Option<Range<u64>>,
    ) -> StoreResult<Option<Box<dyn Read + Send>>> {
        let path = self.path(key);
        self.block_on(self.get(&path, range))
            .map_err(|err| unavailable("open", &path, err))
    }

    fn delete(&self, key: &BlobKey) -> StoreResult<()> {
        let path = self.path(key);
        match self.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(unavailable("delete", &path, err)),
        }
    }
}

//! The adapters behind [`chat_domain::ports::BlobStore`] and
//! [`chat_domain::ports::MediaInspector`]: where uploaded bytes are kept and what they are.
//!
//! - [`staging`]: an upload is first written to a temporary file under `<data dir>/staging/`,
//!   hashed and counted as it arrives, so its content address is known when it ends;
//! - [`fs`]: the default [`BlobStore`](chat_domain::ports::BlobStore), a directory under the
//!   data directory, into which a staged file is moved without copying;
//! - [`s3`]: the [`BlobStore`](chat_domain::ports::BlobStore) several nodes share, an
//!   S3-compatible bucket;
//! - [`media`]: the [`MediaInspector`](chat_domain::ports::MediaInspector): content types
//!   sniffed from the bytes, image dimensions and thumbnails, decompression bombs refused.

pub mod fs;
pub mod media;
pub mod s3;
pub mod staging;

pub use fs::FsBlobStore;
pub use media::Media;
pub use s3::{S3BlobStore, S3Config, S3Error};
pub use staging::{LimitExceeded, Staged, StagedFile, Staging};

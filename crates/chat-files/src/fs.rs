//! The default blob store: a directory, `<data dir>/blobs/<2 hex>/<2 hex>/<key>`, on a local or
//! shared disk.
//!
//! A staged upload (under `<data dir>/staging/`, the same filesystem) is hard-linked into place
//! rather than copied, so a 1 GiB upload is stored in no time; when the staged file is on
//! another filesystem it is copied, streaming, into a temporary file beside the staging files
//! and linked from there. Linking never replaces an existing blob (identical bytes have one
//! key, and a blob is never half-written in place), and the file and its directory are
//! `fsync`ed before `put` returns, so an acknowledged blob survives a crash. Paths are built
//! only from a parsed [`BlobKey`] (64 hex digits), so no key can point outside the directory.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use chat_domain::attachment::BlobKey;
use chat_domain::error::StoreError;
use chat_domain::ports::{BlobStore, StoreResult};

/// Blobs in a directory; see the module doc.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    blobs: PathBuf,
    staging: PathBuf,
}

impl FsBlobStore {
    /// The store under `data_dir` (`blobs/` and `staging/` are created if missing).
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let blobs = data_dir.join("blobs");
        let staging = data_dir.join("staging");
        fs::create_dir_all(&blobs)?;
        fs::create_dir_all(&staging)?;
        Ok(Self { blobs, staging })
    }

    /// Where the blob with `key` lives (whether or not it is there).
    pub fn path_of(&self, key: &BlobKey) -> PathBuf {
        let hex = key.as_str();
        self.blobs.join(&hex[..2]).join(&hex[2..4]).join(hex)
    }

    /// The blob's directory, created (and made durable) if missing.
    fn dir_for(&self, target: &Path) -> io::Result<PathBuf> {
        let dir = target
            .parent()
            .expect("a blob path has a parent")
            .to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir)?;
            // The two new levels must reach the disk before the blob's entry in them does.
            let outer = dir.parent().expect("a blob directory has a parent");
            sync_dir(outer)?;
            sync_dir(&self.blobs)?;
        }
        Ok(dir)
    }

    fn put_file(&self, key: &BlobKey, staged: &Path) -> io::Result<()> {
        let target = self.path_of(key);
        if target.exists() {
            return Ok(());
        }
        let dir = self.dir_for(&target)?;
        match fs::hard_link(staged, &target) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(err),
            // Another filesystem (EXDEV), or one without hard links: copy.
            Err(_) => {
                let mut source = File::open(staged)?;
                return self.put_copy(&target, &dir, &mut source);
            }
        }
        // The staged file's bytes were made durable when it was finished; its new name must be.
        sync_dir(&dir)?;
        // Moved: the staged name is no longer needed (the caller's removal is then a no-op).
        let _ = fs::remove_file(staged);
        Ok(())
    }

    /// Copies `source` into a temporary file beside the staging files, makes it durable and
    /// links it in as `target` unless a blob is there already.
    fn put_copy(&self, target: &Path, dir: &Path, source: &mut dyn Read) -> io::Result<()> {
        let mut temp = tempfile::Builder::new()
            .prefix("upload-copy-")
            .tempfile_in(&self.staging)?;
        io::copy(
            source,
            &mut io::BufWriter::with_capacity(1 << 20, temp.as_file_mut()),
        )?;
        temp.as_file().sync_all()?;
        match temp.persist_noclobber(target) {
            Ok(_) => {}
            Err(err) if err.error.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(err) => return Err(err.error),
        }
        sync_dir(dir)
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn unavailable(what: &str, key: &BlobKey, err: io::Error) -> StoreError {
    tracing::error!(%key, error = %err, "blob store: {what} failed");
    StoreError::Unavailable(format!("blob store: {what} failed"))
}

impl BlobStore for FsBlobStore {
    fn put(&self, key: &BlobKey, staged: &Path) -> StoreResult<()> {
        self.put_file(key, staged)
            .map_err(|err| unavailable("put", key, err))
    }

    fn put_bytes(&self, key: &BlobKey, bytes: &[u8]) -> StoreResult<()> {
        let target = self.path_of(key);
        if target.exists() {
            return Ok(());
        }
        self.dir_for(&target)
            .and_then(|dir| self.put_copy(&target, &dir, &mut &bytes[..]))
            .map_err(|err| unavailable("put", key, err))
    }

    fn open(
        &self,
        key: &BlobKey,
        range: Option<Range<u64>>,
    ) -> StoreResult<Option<Box<dyn Read + Send>>> {
        let mut file = match File::open(self.path_of(key)) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(unavailable("open", key, err)),
        };
        let Some(range) = range else {
            return Ok(Some(Box::new(file)));
        };
        // Past the end, the file gives no bytes: no need to clamp the start.
        file.seek(SeekFrom::Start(range.start))
            .map_err(|err| unavailable("open", key, err))?;
        let len = range.end.saturating_sub(range.start);
        Ok(Some(Box::new(file.take(len))))
    }

    fn delete(&self, key: &BlobKey) -> StoreResult<()> {
        match fs::remove_file(self.path_of(key)) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(unavailable("delete", key, err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(bytes: &[u8]) -> BlobKey {
        use sha2::{Digest, Sha256};
        BlobKey::from_digest(&Sha256::digest(bytes).into())
    }

    #[test]
    fn a_blob_lives_under_two_levels_of_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let key = key_of(b"hello");
        store.put_bytes(&key, b"hello").unwrap();
        let hex = key.as_str();
        let path = dir
            .path()
            .join("blobs")
            .join(&hex[..2])
            .join(&hex[2..4])
            .join(hex);
        assert_eq!(fs::read(path).unwrap(), b"hello");
    }

    #[test]
    fn a_staged_file_on_the_same_disk_is_moved_not_copied() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let staged = dir.path().join("staging").join("upload-x");
        fs::write(&staged, b"bytes").unwrap();
        let inode = fs::metadata(&staged).unwrap().ino();
        let key = key_of(b"bytes");
        store.put(&key, &staged).unwrap();
        assert_eq!(fs::metadata(store.path_of(&key)).unwrap().ino(), inode);
        assert!(!staged.exists());
    }

    #[test]
    fn a_key_already_stored_is_left_alone_and_the_staged_file_with_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let key = key_of(b"first");
        store.put_bytes(&key, b"first").unwrap();
        let staged = dir.path().join("staging").join("upload-y");
        fs::write(&staged, b"other").unwrap();
        store.put(&key, &staged).unwrap();
        assert_eq!(fs::read(store.path_of(&key)).unwrap(), b"first");
        assert!(staged.exists());
    }
}

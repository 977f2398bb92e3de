//! Where an upload is written while it arrives: a fresh temporary file under
//! `<data dir>/staging/`, hashed (SHA-256) and counted as the bytes go through, so that when the
//! upload ends its content address ([`BlobKey`]) and size are known without reading it again,
//! and its first bytes are at hand for sniffing what it is.
//!
//! The staging directory is on the same filesystem as the directory blob store (both under the
//! data directory), so [`FsBlobStore::put`](crate::FsBlobStore) moves a staged file into place
//! instead of copying it. A staged file is removed when it is dropped unfinished, and when the
//! [`Staged`] that [`StagedFile::finish`] returns is dropped (by then the store has moved or
//! copied it); files a crash left behind are removed at startup by [`Staging::remove_stale`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use chat_domain::attachment::BlobKey;
use sha2::{Digest, Sha256};
use tempfile::TempPath;

/// How many of a file's first bytes are kept for sniffing its content type.
pub const HEAD_LEN: usize = 8 * 1024;

/// Writes go to disk in blocks of this size: large enough that a 1 GiB upload goes at the
/// disk's sequential speed whatever the size of the chunks the network hands over.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Name prefix of staged files, so that [`Staging::remove_stale`] touches nothing else.
const PREFIX: &str = "upload-";

/// The staging directory, `<data dir>/staging/`.
#[derive(Debug, Clone)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// The staging directory under `data_dir`, created if missing.
    pub fn new(data_dir: &Path) -> io::Result<Self> {
        let dir = data_dir.join("staging");
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The directory staged files are written in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new, empty staged file that refuses to grow past `limit` bytes.
    pub fn create(&self, limit: u64) -> io::Result<StagedFile> {
        let (file, path) = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempfile_in(&self.dir)?
            .into_parts();
        StagedFile::new(file, path, limit)
    }

    /// Removes staged files last written more than `older_than` ago: uploads a crash or a
    /// killed process left behind. Meant for startup, before uploads are accepted (a file
    /// being written now is never that old, but one waiting for a slow client could be).
    /// Returns how many were removed.
    pub fn remove_stale(&self, older_than: Duration) -> io::Result<usize> {
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
                continue;
            }
            let meta = entry.metadata()?;
            let age = meta
                .modified()
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .unwrap_or_default();
            if meta.is_file() && age > older_than {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(removed)
    }
}

/// An upload being written: a [`Write`] into a temporary file that hashes and counts what goes
/// through it. Dropped without [`Self::finish`], the file is removed.
///
/// The bytes are hashed on the calling thread and written by a thread of the file's own, in
/// blocks of [`WRITE_BUFFER`] (a few in flight): when the disk falls behind, the kernel makes
/// the writer wait, and hashing goes on meanwhile instead of waiting too, so a large upload
/// takes as long as the slower of the two rather than their sum.
pub struct StagedFile {
    writer: Option<BackgroundWriter>,
    /// The block being filled.
    block: Vec<u8>,
    path: Option<TempPath>,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
    limit: u64,
}

/// A thread writing full blocks to the file, in order, and handing the emptied blocks back.
struct BackgroundWriter {
    full: SyncSender<Vec<u8>>,
    emptied: Receiver<Vec<u8>>,
    thread: JoinHandle<io::Result<File>>,
}

/// How many full blocks wait for the writer thread at most (besides the one it writes): the
/// memory an upload holds is this plus two blocks.
const BLOCKS_QUEUED: usize = 2;

impl BackgroundWriter {
    fn start(mut file: File) -> io::Result<Self> {
        let (full, to_write) = mpsc::sync_channel::<Vec<u8>>(BLOCKS_QUEUED);
        let (give_back, emptied) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("staging-writer".into())
            .spawn(move || {
                for mut block in to_write {
                    file.write_all(&block)?;
                    block.clear();
                    let _ = give_back.send(block);
                }
                Ok(file)
            })?;
        Ok(Self {
            full,
            emptied,
            thread,
        })
    }

    /// Queues a full block (waiting while [`BLOCKS_QUEUED`] are queued) and returns an empty
    /// one to fill next. Fails when the writer has stopped on an error.
    fn send(&self, block: Vec<u8>) -> Result<Vec<u8>, ()> {
        self.full.send(block).map_err(|_| ())?;
        Ok(self
            .emptied
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(WRITE_BUFFER)))
    }

    /// Waits for every queued block to be written; the file, or the error that stopped it.
    fn close(self) -> io::Result<File> {
        drop(self.full);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the staging writer panicked")))
    }
}

/// The error a [`StagedFile`] write fails with when it would pass its limit (an
/// [`io::ErrorKind::FileTooLarge`] error carrying this); the caller answers "too large" (413).
/// Nothing of the refused write is kept, and the staged file should be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the upload is larger than {limit} bytes")]
pub struct LimitExceeded {
    pub limit: u64,
}

impl LimitExceeded {
    /// The limit that `err`, returned by a [`StagedFile`] write, reports as passed; `None` for
    /// any other error (disk full, I/O).
    pub fn in_error(err: &io::Error) -> Option<LimitExceeded> {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<LimitExceeded>())
            .copied()
    }
}

impl StagedFile {
    fn new(file: File, path: TempPath, limit: u64) -> io::Result<Self> {
        Ok(Self {
            writer: Some(BackgroundWriter::start(file)?),
            block: Vec::with_capacity(WRITE_BUFFER),
            path: Some(path),
            hasher: Sha256::new(),
            size: 0,
            head: Vec::new(),
            limit,
        })
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes what is left, flushes the file to disk (`fsync`) and returns what was written:
    /// where, how many bytes, their content address and first bytes.
    pub fn finish(mut self) -> io::Result<Staged> {
        let writer = self
            .writer
            .take()
            .expect("a staged file has its writer until dropped");
        let block = std::mem::take(&mut self.block);
        if !block.is_empty() {
            // If the writer stopped, `close` returns its error.
            let _ = writer.send(block);
        }
        writer.close()?.sync_all()?;
        let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        Ok(Staged {
            path: self
                .path
                .take()
                .expect("a staged file has its path until dropped"),
            size: self.size,
            key: BlobKey::from_digest(&digest),
            head: std::mem::take(&mut self.head),
        })
    }

    /// Hands the full block to the writer; on failure, the writer's error.
    fn send_block(&mut self) -> io::Result<()> {
        let writer = self
            .writer
            .as_ref()
            .expect("a staged file has its writer until dropped");
        let block = std::mem::take(&mut self.block);
        match writer.send(block) {
            Ok(next) => {
                self.block = next;
                Ok(())
            }
            Err(()) => {
                let writer = self.writer.take().expect("checked above");
                Err(writer
                    .close()
                    .err()
                    .unwrap_or_else(|| io::Error::other("the staging writer stopped")))
            }
        }
    }
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let limit = self.limit;
        if self.size.saturating_add(buf.len() as u64) > limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                LimitExceeded { limit },
            ));
        }
        if self.writer.is_none() {
            return Err(io::Error::other(
                "the staged file failed on an earlier write",
            ));
        }
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        if self.head.len() < HEAD_LEN {
            let take = buf.len().min(HEAD_LEN - self.head.len());
            self.head.extend_from_slice(&buf[..take]);
        }
        let mut rest = buf;
        while !rest.is_empty() {
            let take = rest.len().min(WRITE_BUFFER - self.block.len());
            self.block.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.block.len() == WRITE_BUFFER {
                self.send_block()?;
            }
        }
        Ok(buf.len())
    }

    /// Hands the bytes written so far to the writer thread; [`StagedFile::finish`] is what
    /// makes them durable.
    fn flush(&mut self) -> io::Result<()> {
        if self.block.is_empty() || self.writer.is_none() {
            return Ok(());
        }
        self.send_block()
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        // Let the writer finish with the file before the file is removed (with `path`).
        if let Some(writer) = self.writer.take() {
            let _ = writer.close();
        }
    }
}

/// A finished, durable staged file. Dropping it removes the file if it is still there (a blob
/// store may have moved it away already).
#[derive(Debug)]
pub struct Staged {
    /// Where the bytes are; give it to [`BlobStore::put`](chat_domain::ports::BlobStore::put)
    /// (it derefs to a [`Path`]).
    pub path: TempPath,
    /// How many bytes.
    pub size: u64,
    /// Their SHA-256, the key to store them under.
    pub key: BlobKey,
    /// The first bytes (at most [`HEAD_LEN`]), for
    /// [`MediaInspector::sniff`](chat_domain::ports::MediaInspector::sniff).
    pub head: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_key(bytes: &[u8]) -> BlobKey {
        BlobKey::from_digest(&Sha256::digest(bytes).into())
    }

    #[test]
    fn a_finished_file_has_the_bytes_their_hash_size_and_head() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new(dir.path()).unwrap();
        let bytes: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut file = staging.create(1 << 20).unwrap();
        for chunk in bytes.chunks(777) {
            file.write_all(chunk).unwrap();
        }
        let staged = file.finish().unwrap();
        assert_eq!(staged.size, bytes.len() as u64);
        assert_eq!(staged.key, sha256_key(&bytes));
        assert_eq!(staged.head, bytes[..HEAD_LEN]);
        assert_eq!(fs::read(&*staged.path).unwrap(), bytes);
        assert!(staged.path.starts_with(staging.dir()));
    }

    #[test]
    fn writes_of_any_size_across_many_blocks_arrive_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new(dir.path()).unwrap();
        let bytes: Vec<u8> = (0..7 * WRITE_BUFFER / 2 + 5)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut file = staging.create(u64::MAX).unwrap();
        let (small, rest) = bytes.split_at(1000);
        let (large, rest) = rest.split_at(5 * WRITE_BUFFER / 2);
        file.write_all(small).unwrap();
        file.write_all(large).unwrap();
        file.flush().unwrap();
        for chunk in rest.chunks(65_537) {
            file.write_all(chunk).unwrap();
        }
        let staged = file.finish().unwrap();
        assert_eq!(staged.key, sha256_key(&bytes));
        assert_eq!(fs::read(&*staged.path).unwrap(), bytes);
    }

    #[test]
    fn a_failing_disk_write_is_reported_by_a_later_write_or_by_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read-only");
        fs::write(&path, b"").unwrap();
        let read_only = File::open(&path).unwrap();
        let mut file =
            StagedFile::new(read_only, TempPath::try_from_path(&path).unwrap(), u64::MAX).unwrap();
        let block = vec![7u8; WRITE_BUFFER];
        let failed = (0..10).any(|_| file.write_all(&block).is_err());
        assert!(failed || file.finish().is_err());
    }

    #[test]
    fn an_empty_upload_is_the_hash_of_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new(dir.path()).unwrap();
        let staged = staging.create(10).unwrap().finish().unwrap();
        assert_eq!(staged.size, 0);
        assert_eq!(staged.key, sha256_key(b""));
        assert!(staged.head.is_empty());
    }

    #[test]
    fn a_write_past_the_limit_is_refused_with_an_error_the_caller_can_tell_apart() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new(dir.path()).unwrap();
        let mut file = staging.create(10).unwrap();
        file.write_all(b"0123456789").unwrap();
        let err = file.write_all(b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            LimitExceeded::in_error(&err),
            Some(LimitExceeded { limit: 10 })
        );
        assert_eq!(file.size(), 10);
        let other = io::Error::other("disk on fire");
        assert_eq!(LimitExceeded::in_error(&other), None);
    }

    #[test]
    fn dropped_unfinished_or_finished_the_staged_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new(dir.path()).unwrap();
        let mut file = staging.create(100).unwrap();
        file.write_all(b"abc").unwrap();
        drop(file);
        let staged = staging.create(100).unwrap().finish().unwrap();
        assert_eq!(fs::read_dir(staging.dir()).unwrap().count(), 1);
        drop(staged);
        assert_eq!(fs::read_dir(staging.dir()).unwrap().count(), 0);
    }

    #[test]
    fn only_old_staged_files_are_removed_as_stale() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new(dir.path()).unwrap();
        let old = staging.create(100).unwrap().finish().unwrap();
        let fresh = staging.create(100).unwrap().finish().unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&*old.path)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        fs::write(staging.dir().join("not-ours"), b"keep").unwrap();
        let removed = staging.remove_stale(Duration::from_secs(600)).unwrap();
        assert_eq!(removed, 1);
        assert!(!old.path.exists());
        assert!(fresh.path.exists());
        assert!(staging.dir().join("not-ours").exists());
    }
}

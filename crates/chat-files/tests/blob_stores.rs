//! One conformance suite for every [`BlobStore`]: the directory store, and the S3 store against
//! an S3 server (`s3s-fs`, over a temporary directory) that the test runs in its own process.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use chat_domain::attachment::BlobKey;
use chat_domain::ports::BlobStore;
use chat_files::{FsBlobStore, S3BlobStore, S3Config, Staged, Staging};
use support::{s3_server, s3_store};

mod support;
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

/// Position-dependent bytes, so that parts put together in the wrong order show.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn staged(staging: &Staging, bytes: &[u8]) -> Staged {
    let mut file = staging.create(u64::MAX).unwrap();
    for chunk in bytes.chunks(64 * 1024) {
        file.write_all(chunk).unwrap();
    }
    file.finish().unwrap()
}

fn key_of(bytes: &[u8]) -> BlobKey {
    BlobKey::from_digest(&Sha256::digest(bytes).into())
}

fn read(
    store: &dyn BlobStore,
    key: &BlobKey,
    range: Option<std::ops::Range<u64>>,
) -> Option<Vec<u8>> {
    let mut reader = store.open(key, range).unwrap()?;
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).unwrap();
    Some(bytes)
}

/// What every blob store does.
fn conformance(store: Arc<dyn BlobStore>, staging: &Staging) {
    let store = &*store;
    // Missing.
    let missing = key_of(b"never stored");
    assert!(store.open(&missing, None).unwrap().is_none());
    assert!(store.open(&missing, Some(0..10)).unwrap().is_none());
    assert!(store.open(&missing, Some(5..5)).unwrap().is_none());
    store.delete(&missing).unwrap();

    // Put a staged file, read it whole and in ranges.
    let text = b"hello world";
    let key = key_of(text);
    let file = staged(staging, text);
    store.put(&file.key, &file.path).unwrap();
    drop(file);
    assert_eq!(read(store, &key, None).unwrap(), text);
    for (range, expected) in [
        (0..5, &b"hello"[..]),
        (6..11, b"world"),
        (6..100, b"world"),
        (10..11, b"d"),
        (11..20, b""),
        (50..60, b""),
        (3..3, b""),
    ] {
        assert_eq!(
            read(store, &key, Some(range.clone())).unwrap(),
            expected,
            "{range:?}"
        );
    }

    // A key already stored: put again, nothing changes.
    let again = staged(staging, text);
    store.put(&again.key, &again.path).unwrap();
    store.put_bytes(&key, text).unwrap();
    assert_eq!(read(store, &key, None).unwrap(), text);

    // Small bytes; an empty blob.
    let thumb = pattern(5000, 1);
    store.put_bytes(&key_of(&thumb), &thumb).unwrap();
    assert_eq!(read(store, &key_of(&thumb), None).unwrap(), thumb);
    store.put_bytes(&key_of(b""), b"").unwrap();
    assert_eq!(read(store, &key_of(b""), None).unwrap(), b"");

    // Delete, twice.
    store.delete(&key).unwrap();
    assert!(store.open(&key, None).unwrap().is_none());
    store.delete(&key).unwrap();

    // Several puts of one key at once (several users uploading the same file).
    let shared = pattern(3 * MIB, 2);
    let shared_key = key_of(&shared);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let file = staged(staging, &shared);
                store.put(&file.key, &file.path).unwrap();
            });
        }
    });
    assert_eq!(read(store, &shared_key, None).unwrap(), shared);

    // A file of many parts (S3 multipart), streamed back whole and across part boundaries.
    let big = pattern(40 * MIB + 12_345, 3);
    let big_key = key_of(&big);
    let file = staged(staging, &big);
    store.put(&file.key, &file.path).unwrap();
    drop(file);
    let mut reader = store.open(&big_key, None).unwrap().unwrap();
    let mut hasher = Sha256::new();
    let mut chunk = vec![0; 256 * 1024];
    let mut total = 0;
    loop {
        let n = reader.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
        total += n;
    }
    assert_eq!(total, big.len());
    assert_eq!(BlobKey::from_digest(&hasher.finalize().into()), big_key);
    let boundary = 8 * MIB as u64;
    for range in [
        boundary - 10..boundary + 10,
        39 * MIB as u64..41 * MIB as u64,
    ] {
        let end = (range.end as usize).min(big.len());
        assert_eq!(
            read(store, &big_key, Some(range.clone())).unwrap(),
            big[range.start as usize..end],
            "{range:?}"
        );
    }
    store.delete(&big_key).unwrap();
    assert!(store.open(&big_key, None).unwrap().is_none());
}

#[test]
fn the_directory_store_keeps_blobs_as_a_blob_store_must() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let staging = Staging::new(dir.path()).unwrap();
    conformance(Arc::new(store), &staging);
    // Every staged file was moved in or removed.
    assert_eq!(std::fs::read_dir(staging.dir()).unwrap().count(), 0);
}

#[test]
fn the_directory_store_copies_a_file_staged_on_another_disk() {
    use std::os::unix::fs::MetadataExt;
    // /dev/shm is a memory filesystem: a hard link from it into the data directory fails
    // (EXDEV) and the store copies.
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("SKIPPED: no /dev/shm to stage on another filesystem");
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let elsewhere = tempfile::tempdir_in(shm).unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let staging = Staging::new(elsewhere.path()).unwrap();
    let file = staged(&staging, b"across disks");
    assert_ne!(
        std::fs::metadata(&*file.path).unwrap().dev(),
        std::fs::metadata(dir.path()).unwrap().dev(),
        "the staged file must be on another filesystem for this test"
    );
    store.put(&file.key, &file.path).unwrap();
    assert!(
        file.path.exists(),
        "copied, so the staged file is the caller's to remove"
    );
    assert_eq!(
        std::fs::read(store.path_of(&file.key)).unwrap(),
        b"across disks"
    );
    conformance(Arc::new(store), &staging);
    // No copy was left half-made beside the blobs.
    assert_eq!(
        std::fs::read_dir(dir.path().join("staging"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn the_s3_store_keeps_blobs_as_a_blob_store_must() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("blobs")).unwrap();
    let addr = s3_server(root.path());
    let store = s3_store(addr, Some("/chatd/blobs/"));
    store.check().unwrap();
    let staging_dir = tempfile::tempdir().unwrap();
    let staging = Staging::new(staging_dir.path()).unwrap();
    conformance(Arc::new(store), &staging);
    // Objects are named under the prefix.
    let key = key_of(b"named");
    let store = s3_store(addr, Some("chatd/blobs"));
    store.put_bytes(&key, b"named").unwrap();
    let object = root.path().join("blobs/chatd/blobs").join(key.as_str());
    assert_eq!(std::fs::read(object).unwrap(), b"named");
}

#[test]
fn the_s3_store_works_from_an_async_servers_blocking_threads_and_outlives_nothing() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("blobs")).unwrap();
    let addr = s3_server(root.path());
    let store = Arc::new(s3_store(addr, None));
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bytes = pattern(100_000, 4);
    let key = key_of(&bytes);
    let read_back = server.block_on({
        let store = store.clone();
        let bytes = bytes.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                store.put_bytes(&key_of(&bytes), &bytes).unwrap();
                read(&*store, &key_of(&bytes), Some(10..20)).unwrap()
            })
            .await
            .unwrap()
        }
    });
    assert_eq!(read_back, bytes[10..20]);
    // Dropped on an async thread, the store's runtime shuts down without a panic.
    server.block_on(async move { drop(store) });
    let _ = key;
}

#[test]
fn wrong_s3_credentials_are_found_by_the_startup_check() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("blobs")).unwrap();
    let addr = s3_server(root.path());
    let store = S3BlobStore::new(&S3Config {
        endpoint: Some(format!("http://{addr}")),
        bucket: "blobs".into(),
        region: "us-east-1".into(),
        access_key_id: "test-key".into(),
        secret_access_key: "wrong".into(),
        allow_http: true,
        prefix: None,
    })
    .unwrap();
    assert!(store.check().is_err());
}

#[test]
fn an_s3_endpoint_that_is_not_there_is_found_by_the_startup_check_at_once() {
    // A port nothing listens on: bound, then closed.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let started = std::time::Instant::now();
    assert!(s3_store(addr, None).check().is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

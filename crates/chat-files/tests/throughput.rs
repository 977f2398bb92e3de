//! How fast a large upload goes through staging and the directory store, next to the disk
//! and SHA-256 alone. Measurements, not checks: run in release, on an idle machine, with
//! `cargo test -p chat-files --release --test throughput -- --ignored --nocapture`, and
//! compare with `dd if=/dev/zero of=<same disk> bs=1M count=1024 conv=fdatasync`.

use std::io::{Read, Write};
use std::time::Instant;

use chat_domain::ports::BlobStore;
use chat_files::{FsBlobStore, Staging};

mod support;
use sha2::{Digest, Sha256};

const GIB: usize = 1024 * 1024 * 1024;
/// The size of the chunks a multipart body arrives in.
const CHUNK: usize = 64 * 1024;

fn mb_per_s(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds
}

#[test]
#[ignore]
fn sha256_alone() {
    // In chunks as an upload arrives (cache-resident), not one block larger than the caches.
    let block = vec![0x5au8; CHUNK];
    let started = Instant::now();
    let mut hasher = Sha256::new();
    for _ in 0..GIB / block.len() {
        hasher.update(&block);
    }
    let _ = hasher.finalize();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "SHA-256 of 1 GiB in memory: {:.0} MB/s",
        mb_per_s(GIB, seconds)
    );
}

#[test]
#[ignore]
fn a_gibibyte_through_staging_and_the_directory_store() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let staging = Staging::new(dir.path()).unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 7 % 251) as u8).collect();

    let started = Instant::now();
    let mut file = staging.create(u64::MAX).unwrap();
    for _ in 0..GIB / CHUNK {
        file.write_all(&chunk).unwrap();
    }
    let writing_seconds = started.elapsed().as_secs_f64();
    let staged = file.finish().unwrap();
    let staging_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    store.put(&staged.key, &staged.path).unwrap();
    let put_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut reader = store.open(&staged.key, None).unwrap().unwrap();
    let mut buf = vec![0; 256 * 1024];
    let mut total = 0;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    let read_seconds = started.elapsed().as_secs_f64();
    assert_eq!(total, GIB);
    println!(
        "1 GiB in {CHUNK}-byte writes: staged (hashed, fsynced) at {:.0} MB/s \
         ({:.2} s writing, {:.2} s fsync); put (link) in {:.1} ms; \
         read back at {:.0} MB/s (page cache likely warm)",
        mb_per_s(GIB, staging_seconds),
        writing_seconds,
        staging_seconds - writing_seconds,
        put_seconds * 1e3,
        mb_per_s(GIB, read_seconds),
    );
}

/// The same writes without staging (no hashing, no counting): the baseline staging is
/// compared with, measured in the same conditions as it.
#[test]
#[ignore]
fn a_gibibyte_written_plainly() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 7 % 251) as u8).collect();
    let started = Instant::now();
    let file = std::fs::File::create(dir.path().join("plain")).unwrap();
    let mut writer = std::io::BufWriter::with_capacity(1024 * 1024, file);
    for _ in 0..GIB / CHUNK {
        writer.write_all(&chunk).unwrap();
    }
    writer.into_inner().unwrap().sync_all().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "1 GiB written plainly (buffered, fsynced): {:.0} MB/s",
        mb_per_s(GIB, seconds)
    );
}

/// A staged file through the S3 store and back, against the in-process S3 server (s3s-fs,
/// which writes to the same disk and checksums what it receives): a floor, not what a real
/// object store gives.
#[test]
#[ignore]
fn a_quarter_gibibyte_through_the_s3_store() {
    let size = GIB / 4;
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::create_dir(root.path().join("blobs")).unwrap();
    let store = support::s3_store(support::s3_server(root.path()), None);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let staging = Staging::new(dir.path()).unwrap();
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 7 % 251) as u8).collect();
    let mut file = staging.create(u64::MAX).unwrap();
    for _ in 0..size / CHUNK {
        file.write_all(&chunk).unwrap();
    }
    let staged = file.finish().unwrap();

    let started = Instant::now();
    store.put(&staged.key, &staged.path).unwrap();
    let put_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut reader = store.open(&staged.key, None).unwrap().unwrap();
    let mut buf = vec![0; 256 * 1024];
    let mut total = 0;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    let read_seconds = started.elapsed().as_secs_f64();
    assert_eq!(total, size);
    println!(
        "256 MiB through S3 (s3s-fs in process): put (multipart) at {:.0} MB/s, read at {:.0} MB/s",
        mb_per_s(size, put_seconds),
        mb_per_s(size, read_seconds),
    );
}

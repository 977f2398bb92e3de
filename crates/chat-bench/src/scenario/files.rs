//! `files`: one large attachment up and down, streaming, against the server's disk.
//!
//! A file of `--size` bytes (1 GiB by default) is generated as it is sent, never held in
//! memory, and uploaded as `multipart/form-data` (part `file`) to `POST /api/v1/attachments`;
//! the answer's `id` is then downloaded from `GET /api/v1/attachments/{id}`, counting the
//! bytes. Each direction is reported in MB/s, to compare with the disk's sequential speed
//! (`dd ... conv=fdatasync`). The bytes differ from run to run (the run tag is in every
//! block), so content addressing never turns an upload into a no-op. With `--server-pid`, the
//! server's resident memory (VmRSS) is read before, at its peak during each transfer and after:
//! a server that streams grows by a few MiB, not by the file. With `--verify`, both ends hash
//! the bytes (SHA-256) and a mismatch is a failure. `--duration` does not apply: each transfer
//! runs to its end (bounded by `--transfer-timeout`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use clap::Args;
use futures_util::stream;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Rng;
use super::connections::read_rss_kib;
use crate::client::{RequestFailure, Target};
use crate::report::Row;
use crate::stats::Failures;
use crate::{BenchError, Common, Setup, parse_duration, secs};

/// The size of the blocks the file is generated and sent in.
const BLOCK: usize = 256 * 1024;
/// How often the server's memory is read during a transfer.
const RSS_EVERY: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Args)]
pub struct FilesOptions {
    /// Size of the file: bytes, or with a binary suffix (`512KiB`, `64M`, `1GiB`, `2G`).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub size: u64,
    /// The server's process id, to read its resident memory from /proc/<pid>/status.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Hash the bytes on both ends and fail on a mismatch (costs the bench CPU).
    #[arg(long)]
    pub verify: bool,
    /// Limit for each of the two transfers.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub transfer_timeout: Duration,
}

/// What a `files` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct FilesReport {
    pub size_bytes: u64,
    pub upload_s: f64,
    pub upload_mb_per_s: f64,
    pub download_s: f64,
    pub download_mb_per_s: f64,
    /// Bytes received by the download (equal to `size_bytes` unless it failed).
    pub downloaded_bytes: u64,
    /// The bytes were hashed on both ends and matched.
    pub verified: bool,
    /// Server VmRSS in KiB (with `--server-pid`): before, highest during the upload and the
    /// download, and after.
    pub server_rss_kib: Option<RssFigures>,
    /// Non-2xx answers, timeouts, transport errors and wrong bytes, by kind.
    pub failures: Failures,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RssFigures {
    pub before: u64,
    pub upload_peak: u64,
    pub download_peak: u64,
    pub after: u64,
}

impl FilesReport {
    pub fn title(&self) -> String {
        format!(
            "files: {:.1} MiB up and down",
            self.size_bytes as f64 / 1024.0 / 1024.0
        )
    }

    pub fn rows(&self) -> Vec<Row> {
        let mut rows = vec![
            (
                "upload",
                format!("{:.1} MB/s ({:.2}s)", self.upload_mb_per_s, self.upload_s),
            ),
            (
                "download",
                format!(
                    "{:.1} MB/s ({:.2}s, {} bytes)",
                    self.download_mb_per_s, self.download_s, self.downloaded_bytes
                ),
            ),
            ("verified (SHA-256)", self.verified.to_string()),
        ];
        if let Some(rss) = self.server_rss_kib {
            let mib = |kib: u64| kib as f64 / 1024.0;
            rows.push((
                "server RSS before/up/down/after",
                format!(
                    "{:.1} / {:.1} / {:.1} / {:.1} MiB (peak growth {:+.1} MiB)",
                    mib(rss.before),
                    mib(rss.upload_peak),
                    mib(rss.download_peak),
                    mib(rss.after),
                    mib(rss.upload_peak.max(rss.download_peak)) - mib(rss.before)
                ),
            ));
        }
        rows.push(("errors", self.failures.cell()));
        rows
    }
}

/// Runs the `files` scenario against the first node of `common.urls`.
pub async fn run(common: &Common, opts: &FilesOptions) -> Result<FilesReport, BenchError> {
    if opts.size == 0 {
        return Err(BenchError::Invalid("--size must be above 0".into()));
    }
    if let Some(pid) = opts.server_pid
        && read_rss_kib(pid).is_none()
    {
        return Err(BenchError::Invalid(format!(
            "--server-pid {pid}: no /proc/{pid}/status to read"
        )));
    }
    let Setup {
        target, tag, users, ..
    } = common.setup(1).await?;
    let token = &users[0].token;
    let http = Target::client(opts.transfer_timeout)?;
    let mut failures = Failures::default();
    let rss_before = opts.server_pid.and_then(read_rss_kib);

    // Upload.
    let sent_digest = Arc::new(Mutex::new(None));
    let body = generated(
        opts.size,
        &tag,
        opts.verify.then(|| Arc::clone(&sent_digest)),
    );
    let part = reqwest::multipart::Part::stream_with_length(body, opts.size)
        .file_name(format!("bench-{tag}.bin"))
        .mime_str("application/octet-stream")
        .map_err(|e| BenchError::Setup(format!("multipart part: {e}")))?;
    let form = reqwest::multipart::Form::new().part("file", part);
    let sampler = RssSampler::start(opts.server_pid);
    let started = Instant::now();
    let uploaded = upload(&http, &target, token, form).await;
    let upload_time = started.elapsed();
    let upload_peak = sampler.stop().await;
    let id = match uploaded {
        Ok(id) => id,
        Err(failure) => {
            failures.add(format!("upload: {}", failure.0));
            return Ok(FilesReport {
                size_bytes: opts.size,
                upload_s: secs(upload_time),
                upload_mb_per_s: 0.0,
                download_s: 0.0,
                download_mb_per_s: 0.0,
                downloaded_bytes: 0,
                verified: false,
                server_rss_kib: None,
                failures,
            });
        }
    };

    // Download.
    let sampler = RssSampler::start(opts.server_pid);
    let started = Instant::now();
    let downloaded = download(&http, &target, token, &id, opts.verify).await;
    let download_time = started.elapsed();
    let download_peak = sampler.stop().await;
    let (downloaded_bytes, received_digest) = match downloaded {
        Ok(figures) => figures,
        Err(failure) => {
            failures.add(format!("download: {}", failure.0));
            (0, None)
        }
    };
    if downloaded_bytes != opts.size && failures.is_empty() {
        failures.add("download: wrong length");
    }
    let mut verified = false;
    if opts.verify && failures.is_empty() {
        let sent = *sent_digest.lock().unwrap_or_else(|e| e.into_inner());
        if sent.is_some() && sent == received_digest {
            verified = true;
        } else {
            failures.add("download: bytes differ from the upload");
        }
    }
    let rss_after = opts.server_pid.and_then(read_rss_kib);
    let server_rss_kib = match (rss_before, upload_peak, download_peak, rss_after) {
        (Some(before), Some(upload_peak), Some(download_peak), Some(after)) => Some(RssFigures {
            before,
            upload_peak,
            download_peak,
            after,
        }),
        _ => None,
    };
    let mb_per_s = |bytes: u64, took: Duration| bytes as f64 / 1e6 / took.as_secs_f64();
    Ok(FilesReport {
        size_bytes: opts.size,
        upload_s: secs(upload_time),
        upload_mb_per_s: mb_per_s(opts.size, upload_time),
        download_s: secs(download_time),
        download_mb_per_s: mb_per_s(downloaded_bytes, download_time),
        downloaded_bytes,
        verified,
        server_rss_kib,
        failures,
    })
}

/// `size` bytes made block by block as the upload asks for them: one random block with the
/// run tag and the block's number at its start, so no two blocks (or runs) are equal. When
/// `digest` is given, the bytes are hashed and the SHA-256 is left there at the end.
fn generated(size: u64, tag: &str, digest: Option<Arc<Mutex<Option<[u8; 32]>>>>) -> reqwest::Body {
    reqwest::Body::wrap_stream(blocks(size, tag, digest))
}

/// The blocks of [`generated`].
fn blocks(
    size: u64,
    tag: &str,
    digest: Option<Arc<Mutex<Option<[u8; 32]>>>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut rng = Rng::new(u64::from_le_bytes(*b"chatfile"));
    let block: Bytes = (0..BLOCK)
        .map(|_| (rng.next_f64() * 256.0) as u8)
        .collect::<Vec<u8>>()
        .into();
    let tag = tag.as_bytes().to_vec();
    let state = (0u64, hasher_if(digest.is_some()));
    stream::unfold(state, move |(sent, mut hasher)| {
        let (block, tag, digest) = (block.clone(), tag.clone(), digest.clone());
        async move {
            if sent >= size {
                if let (Some(hasher), Some(digest)) = (hasher, digest) {
                    *digest.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(hasher.finalize().into());
                }
                return None;
            }
            let len = (size - sent).min(BLOCK as u64) as usize;
            let mut chunk = BytesMut::from(&block[..len]);
            let mut stamp = tag;
            stamp.extend_from_slice(&(sent / BLOCK as u64).to_le_bytes());
            let stamp_len = stamp.len().min(len);
            chunk[..stamp_len].copy_from_slice(&stamp[..stamp_len]);
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(&chunk);
            }
            let chunk = chunk.freeze();
            Some((Ok::<_, std::io::Error>(chunk), (sent + len as u64, hasher)))
        }
    })
}

fn hasher_if(verify: bool) -> Option<Sha256> {
    verify.then(Sha256::new)
}

/// Sends the form; the new attachment's id.
async fn upload(
    http: &reqwest::Client,
    target: &Target,
    token: &str,
    form: reqwest::multipart::Form,
) -> Result<String, RequestFailure> {
    #[derive(Deserialize)]
    struct Created {
        id: String,
    }
    let response = http
        .post(target.url("/api/v1/attachments"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .map_err(|e| RequestFailure::from_reqwest(&e))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| RequestFailure::from_reqwest(&e))?;
    if !status.is_success() {
        return Err(RequestFailure::status(status));
    }
    serde_json::from_slice::<Created>(&body)
        .map(|created| created.id)
        .map_err(|_| RequestFailure("an upload answer without an id".into()))
}

/// Reads the attachment to its end; how many bytes, and their SHA-256 when `verify`.
async fn download(
    http: &reqwest::Client,
    target: &Target,
    token: &str,
    id: &str,
    verify: bool,
) -> Result<(u64, Option<[u8; 32]>), RequestFailure> {
    let mut response = http
        .get(target.url(&format!("/api/v1/attachments/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| RequestFailure::from_reqwest(&e))?;
    if !response.status().is_success() {
        return Err(RequestFailure::status(response.status()));
    }
    let mut hasher = hasher_if(verify);
    let mut received = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| RequestFailure::from_reqwest(&e))?
    {
        received += chunk.len() as u64;
        if let Some(hasher) = hasher.as_mut() {
            hasher.update(&chunk);
        }
    }
    Ok((received, hasher.map(|hasher| hasher.finalize().into())))
}

/// Reads a process's VmRSS every [`RSS_EVERY`] until stopped; the highest value read.
struct RssSampler {
    pid: Option<u32>,
    peak: Arc<AtomicU64>,
    task: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl RssSampler {
    fn start(pid: Option<u32>) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let task = pid.map(|pid| {
            let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
            let peak = Arc::clone(&peak);
            let handle = tokio::spawn(async move {
                let mut tick = tokio::time::interval(RSS_EVERY);
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        _ = tick.tick() => {}
                    }
                    if let Some(kib) = read_rss_kib(pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                }
            });
            (stop, handle)
        });
        Self { pid, peak, task }
    }

    /// The highest VmRSS read (one more read is taken now), or `None` without a pid.
    async fn stop(self) -> Option<u64> {
        let (stop, handle) = self.task?;
        let _ = stop.send(());
        let _ = handle.await;
        if let Some(kib) = self.pid.and_then(read_rss_kib) {
            self.peak.fetch_max(kib, Ordering::Relaxed);
        }
        Some(self.peak.load(Ordering::Relaxed))
    }
}

/// Parses `1073741824`, `512KiB`, `64M`, `1GiB`, `2G` (suffixes are binary: K = 1024).
pub fn parse_size(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let digits = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a size (e.g. 1GiB, 64M, 1048576)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{raw:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3TB").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[tokio::test]
    async fn the_generated_file_has_the_size_asked_and_differs_per_run() {
        use futures_util::TryStreamExt;
        async fn collect(size: u64, tag: &str) -> (Vec<u8>, [u8; 32]) {
            let digest = Arc::new(Mutex::new(None));
            let bytes: Vec<u8> = blocks(size, tag, Some(Arc::clone(&digest)))
                .try_fold(Vec::new(), |mut all, block| async move {
                    all.extend_from_slice(&block);
                    Ok(all)
                })
                .await
                .unwrap();
            let digest = digest.lock().unwrap().expect("a digest at the end");
            (bytes, digest)
        }
        let size = 3 * BLOCK as u64 + 17;
        let (one, digest) = collect(size, "run1").await;
        assert_eq!(one.len() as u64, size);
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&one)));
        assert_ne!(one[..BLOCK], one[BLOCK..2 * BLOCK]);
        let (two, _) = collect(size, "run2").await;
        assert_ne!(one, two);
    }
}

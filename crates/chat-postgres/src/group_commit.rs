//! Group commit for message appends.
//!
//! One thread per process takes every append that is waiting (up to [`MAX_BATCH`]), writes
//! them all in one transaction and commits once: under load one commit, and one turn at the
//! cluster-wide seq lock (see `messages.rs`), carries many messages; alone a message still
//! commits as soon as it arrives. After the commit the appends' completions run in order,
//! which is `seq` order. Nobody waits on a thread of their own for an append: the queue takes
//! it at once and the completion carries the outcome.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SendError, Sender, channel};

use chat_domain::StoreError;
use chat_domain::message::{AppendOutcome, NewMessage};
use chat_domain::ports::{OnAppended, StoreResult};

use crate::error::StorageError;
use crate::messages::append_batch;
use crate::pool::PgDatabase;
use crate::{Announcing, announce_in_order};

/// The most appends one transaction carries.
pub(crate) const MAX_BATCH: usize = 512;
/// Appends waiting beyond this are refused at once ([`StoreError::Unavailable`]) instead of
/// growing memory without end; callers bound what they have in flight well below it.
pub(crate) const MAX_WAITING: usize = 65_536;

struct Job {
    message: NewMessage,
    done: OnAppended,
}

/// The handle senders use; the commit thread stops when the last handle is dropped.
pub(crate) struct GroupCommit {
    jobs: Sender<Job>,
    waiting: Arc<AtomicUsize>,
}

impl GroupCommit {
    pub(crate) fn start(db: Arc<PgDatabase>, announcing: Arc<Announcing>) -> std::io::Result<Self> {
        let (jobs, queue) = channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let counter = waiting.clone();
        std::thread::Builder::new()
            .name("chat-postgres-commit".into())
            .spawn(move || commit_loop(&db, &queue, &counter, &announcing))?;
        Ok(Self { jobs, waiting })
    }

    /// Queues an append without waiting for it; `done` runs on the commit thread once its
    /// transaction has committed (or failed).
    pub(crate) fn submit(&self, message: NewMessage, done: OnAppended) {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return done(Err(StoreError::Unavailable(
                "too many messages waiting to be stored; retry shortly".into(),
            )));
        }
        if let Err(SendError(job)) = self.jobs.send(Job { message, done }) {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            (job.done)(Err(StoreError::Unavailable(
                "the commit thread has stopped".into(),
            )));
        }
    }
}

fn commit_loop(
    db: &PgDatabase,
    queue: &Receiver<Job>,
    waiting: &AtomicUsize,
    announcing: &Announcing,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        waiting.fetch_sub(batch.len(), Ordering::AcqRel);
        let started = std::time::Instant::now();
        let messages: Vec<&NewMessage> = batch.iter().map(|job| &job.message).collect();
        // Until every completion has run: a change this node commits after this batch is
        // announced after it.
        let _in_order = announce_in_order(announcing);
        // A bug that panics mid-batch must fail this batch (the transaction rolls back with
        // its connection), not stop every later send.
        let written = catch_unwind(AssertUnwindSafe(|| {
            db.write(|conn| append_batch(conn, &messages))
        }))
        .unwrap_or(Err(StorageError::Panicked("the batch writer")));
        let took = started.elapsed();
        metrics::histogram!("chatd_commit_batch_size").record(batch.len() as f64);
        metrics::histogram!("chatd_commit_duration_seconds").record(took.as_secs_f64());
        tracing::trace!(
            appends = batch.len(),
            micros = took.as_micros() as u64,
            "group commit"
        );
        match written {
            Ok(results) => {
                let stored = results
                    .iter()
                    .filter(|result| {
                        matches!(
                            result,
                            Ok(AppendOutcome {
                                appended: chat_domain::message::Appended::Created(_),
                                ..
                            })
                        )
                    })
                    .count();
                metrics::counter!("chatd_messages_stored_total").increment(stored as u64);
                for (job, result) in batch.into_iter().zip(results) {
                    finish(job.done, result);
                }
            }
            Err(error) => {
                let error = StoreError::from(error);
                tracing::error!(%error, appends = batch.len(), "group commit failed");
                for job in batch {
                    finish(job.done, Err(StoreError::Unavailable(error.to_string())));
                }
            }
        }
    }
}

/// Hands an append its outcome. A callback that panics must not take the commit thread, and
/// every later send, down with it.
fn finish(done: OnAppended, result: StoreResult<AppendOutcome>) {
    if catch_unwind(AssertUnwindSafe(|| done(result))).is_err() {
        tracing::error!("an append's completion panicked");
    }
}

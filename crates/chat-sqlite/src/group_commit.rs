//! Group commit for message appends.
//!
//! One thread takes every append that is waiting, writes them all in one immediate
//! transaction and commits once: under load a commit (the expensive part of a write) carries
//! many messages, and alone a message still commits as soon as it arrives. After the commit,
//! the appends' `on_commit` hooks run in order, which is `seq` order.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use chat_domain::StoreError;
use chat_domain::message::{AppendOutcome, NewMessage};
use chat_domain::ports::{OnCommit, StoreResult};

use crate::error::StorageError;
use crate::messages::append_batch;
use crate::pool::Database;

/// The most appends one transaction carries.
const MAX_BATCH: usize = 512;
/// Appends waiting beyond this make senders wait (back-pressure) instead of growing memory.
const MAX_WAITING: usize = 8192;

struct Job {
    message: NewMessage,
    on_commit: OnCommit,
    reply: SyncSender<StoreResult<AppendOutcome>>,
}

/// The handle senders use; the commit thread stops when the last handle is dropped.
pub(crate) struct GroupCommit {
    jobs: SyncSender<Job>,
}

impl GroupCommit {
    pub(crate) fn start(db: Arc<Database>) -> std::io::Result<Self> {
        let (jobs, waiting) = sync_channel(MAX_WAITING);
        std::thread::Builder::new()
            .name("chat-sqlite-commit".into())
            .spawn(move || commit_loop(&db, &waiting))?;
        Ok(Self { jobs })
    }

    /// Queues an append and blocks until its transaction has committed (or failed).
    pub(crate) fn append(
        &self,
        message: &NewMessage,
        on_commit: OnCommit,
    ) -> StoreResult<AppendOutcome> {
        let stopped = || StoreError::Unavailable("the commit thread has stopped".into());
        let (reply, result) = sync_channel(1);
        let job = Job {
            message: message.clone(),
            on_commit,
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => self.jobs.send(job).map_err(|_| stopped())?,
            Err(TrySendError::Disconnected(_)) => return Err(stopped()),
        }
        result.recv().map_err(|_| stopped())?
    }
}

fn commit_loop(db: &Database, waiting: &Receiver<Job>) {
    while let Ok(first) = waiting.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let messages: Vec<&NewMessage> = batch.iter().map(|job| &job.message).collect();
        // A bug that panics mid-batch must fail this batch (Diesel rolls the transaction
        // back), not stop every later send.
        let written = catch_unwind(AssertUnwindSafe(|| {
            db.write(|conn| append_batch(conn, &messages))
        }))
        .unwrap_or_else(|_| {
            Err(StorageError::Corrupt {
                what: "append batch",
                detail: "the batch writer panicked".into(),
            })
        });
        match written {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    let result = match result {
                        Ok(Some(outcome)) => {
                            // A hook that panics must not take the commit thread down with it.
                            let hook = job.on_commit;
                            if catch_unwind(AssertUnwindSafe(|| hook(&outcome))).is_err() {
                                tracing::error!("an on-commit hook panicked");
                            }
                            Ok(outcome)
                        }
                        Ok(None) => Err(StoreError::Missing),
                        Err(error) => Err(error.into()),
                    };
                    let _ = job.reply.send(result);
                }
            }
            Err(error) => {
                let error = StoreError::from(error);
                tracing::error!(%error, appends = batch.len(), "group commit failed");
                for job in batch {
                    let _ = job
                        .reply
                        .send(Err(StoreError::Unavailable(error.to_string())));
                }
            }
        }
    }
}

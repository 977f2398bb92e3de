//! Group commit for message appends.
//!
//! One thread takes every append that is waiting, writes them all in one immediate
//! transaction and commits once: under load a commit (the expensive part of a write) carries
//! many messages, and alone a message still commits as soon as it arrives. After the commit,
//! the appends' completions run in order, which is `seq` order. Nobody waits on a thread of
//! their own for an append: the queue takes it at once and the completion carries the outcome.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SendError, Sender, channel};

use chat_domain::StoreError;
use chat_domain::message::{AppendOutcome, Appended, NewMessage};
use chat_domain::ports::{OnAppended, StoreResult};

use crate::MembershipEpoch;
use crate::error::StorageError;
use crate::messages::{KnownConversations, append_batch};
use crate::pool::Database;
use crate::recent::RecentMessages;

/// The most appends one transaction carries.
const MAX_BATCH: usize = 512;
/// Appends waiting beyond this are refused at once ([`StoreError::Unavailable`]) instead of
/// growing memory without end; callers bound what they have in flight well below it.
const MAX_WAITING: usize = 65_536;

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
    pub(crate) fn start(
        db: Arc<Database>,
        memberships: Arc<MembershipEpoch>,
        recent: Arc<RecentMessages>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let known = KnownConversations::new(memberships);
        let counter = waiting.clone();
        std::thread::Builder::new()
            .name("chat-sqlite-commit".into())
            .spawn(move || commit_loop(&db, &queue, &counter, known, &recent))?;
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
    db: &Database,
    queue: &Receiver<Job>,
    waiting: &AtomicUsize,
    mut known: KnownConversations,
    recent: &RecentMessages,
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
        // A bug that panics mid-batch must fail this batch (Diesel rolls the transaction
        // back), not stop every later send.
        let written = catch_unwind(AssertUnwindSafe(|| {
            db.write(|conn| append_batch(conn, &messages, &mut known))
        }))
        .unwrap_or_else(|_| {
            Err(StorageError::Corrupt {
                what: "append batch",
                detail: "the batch writer panicked".into(),
            })
        });
        tracing::trace!(
            appends = batch.len(),
            micros = started.elapsed().as_micros() as u64,
            "group commit"
        );
        if written.is_err() {
            known.forget();
        }
        match written {
            Ok(results) => {
                // Kept pages learn of the new messages before anyone hears of them.
                recent.appended(results.iter().filter_map(|result| match result {
                    Ok(Some(AppendOutcome {
                        appended: Appended::Created(message),
                        ..
                    })) => Some(message),
                    _ => None,
                }));
                for (job, result) in batch.into_iter().zip(results) {
                    let result = match result {
                        Ok(Some(outcome)) => Ok(outcome),
                        Ok(None) => Err(StoreError::Missing),
                        Err(error) => {
                            // The batch committed, but this append's insert failed: if the
                            // storage failed it, health must say so.
                            db.note_write_failed(&error);
                            Err(error.into())
                        }
                    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_db;
    use chat_domain::message::MessageContent;
    use chat_domain::ports::MessageStore;
    use chat_domain::{ConversationId, MessageId, UserId};
    use std::sync::mpsc::sync_channel;

    fn message() -> NewMessage {
        NewMessage {
            id: MessageId::new(),
            conversation_id: ConversationId::new(),
            sender_id: UserId::new(),
            content: MessageContent::parse("hi").unwrap(),
            client_message_id: None,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_queue_that_is_full_refuses_at_once_and_every_accepted_append_is_answered() {
        let db = temp_db();
        let database = db.store.database().clone();
        // Hold the writer lock so that the commit thread cannot drain the queue.
        let (locked, release) = (sync_channel(0), sync_channel::<()>(0));
        let holder = {
            let database = database.clone();
            let (locked, release) = (locked.0, release.1);
            std::thread::spawn(move || {
                database.holding_writers(|| {
                    locked.send(()).unwrap();
                    release.recv().unwrap();
                })
            })
        };
        locked.1.recv().unwrap();

        let (answers, answered) = std::sync::mpsc::channel();
        // The commit thread may have taken one batch off the queue before blocking.
        let submitted = MAX_WAITING + MAX_BATCH + 1;
        for _ in 0..submitted {
            let answers = answers.clone();
            db.store.submit(
                message(),
                Box::new(move |outcome| answers.send(outcome).unwrap()),
            );
        }
        drop(answers);
        let refused_at_once = answered
            .try_iter()
            .filter(|outcome| matches!(outcome, Err(StoreError::Unavailable(_))))
            .count();
        assert!(
            refused_at_once >= 1,
            "a full queue refuses instead of growing"
        );

        release.0.send(()).unwrap();
        holder.join().unwrap();
        let rest: Vec<_> = answered.iter().collect();
        assert_eq!(
            refused_at_once + rest.len(),
            submitted,
            "every append is answered once"
        );
        // Nothing here names a real conversation: each accepted append is refused as missing.
        assert!(rest.iter().all(|o| matches!(o, Err(StoreError::Missing))));
    }
}

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

use crate::error::StorageError;
use crate::messages::{KnownConversations, append_batch};
use crate::pool::Database;
use crate::recent::RecentMessages;
use crate::{Announcing, MembershipEpoch, announce_in_order};

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
        announcing: Arc<Announcing>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let known = KnownConversations::new(memberships);
        let counter = waiting.clone();
        std::thread::Builder::new()
            .name("chat-sqlite-commit".into())
            .spawn(move || commit_loop(&db, &queue, &counter, known, &recent, &announcing))?;
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
        // Until every completion has run: a change committed after this batch is announced
        // after it.
        let _in_order = announce_in_order(announcing);
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
        let took = started.elapsed();
        metrics::histogram!("chatd_commit_batch_size").record(batch.len() as f64);
        metrics::histogram!("chatd_commit_duration_seconds").record(took.as_secs_f64());
        tracing::trace!(
            appends = batch.len(),
            micros = took.as_micros() as u64,
            "group commit"
        );
        if written.is_err() {
            known.forget();
        }
        match written {
            Ok(results) => {
                let stored = results
                    .iter()
                    .filter(|result| {
                        matches!(
                            result,
                            Ok(Ok(AppendOutcome {
                                appended: Appended::Created(_),
                                ..
                            }))
                        )
                    })
                    .count();
                metrics::counter!("chatd_messages_stored_total").increment(stored as u64);
                // Kept pages learn of the new messages before anyone hears of them.
                recent.appended(results.iter().filter_map(|result| match result {
                    Ok(Ok(AppendOutcome {
                        appended: Appended::Created(message),
                        ..
                    })) => Some(message),
                    _ => None,
                }));
                for (job, result) in batch.into_iter().zip(results) {
                    let result = match result {
                        Ok(answer) => answer,
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
    use crate::test_support::{TempDb, temp_db};
    use chat_domain::conversation::{
        Conversation, ConversationKind, ConversationName, NewConversation, Role,
    };
    use chat_domain::message::{Message, MessageContent, Seq};
    use chat_domain::ports::{ConversationStore, MessageStore, UserStore};
    use chat_domain::user::{Email, NewUser, PasswordHash, Username};
    use chat_domain::{ConversationId, MessageId, UserId};
    use chrono::SubsecRound;
    use std::sync::mpsc::sync_channel;

    /// A group of one member, who may send to it.
    fn group_of_one(db: &TempDb) -> (ConversationId, UserId) {
        let user = UserId::new();
        let now = chrono::Utc::now().trunc_subsecs(6);
        db.store
            .insert(&NewUser {
                id: user,
                username: Username::parse("sender").unwrap(),
                email: Email::parse("sender@example.com").unwrap(),
                full_name: None,
                password_hash: PasswordHash("hash".into()),
                created_at: now,
            })
            .unwrap();
        let conversation = Conversation {
            id: ConversationId::new(),
            kind: ConversationKind::Group,
            name: Some(ConversationName::parse("team").unwrap()),
            created_by: user,
            created_at: now,
            updated_at: now,
        };
        let id = conversation.id;
        db.store
            .create(&NewConversation {
                conversation,
                members: vec![(user, Role::Owner)],
            })
            .unwrap();
        (id, user)
    }

    fn message(conversation_id: ConversationId, sender_id: UserId, i: usize) -> NewMessage {
        NewMessage {
            id: MessageId::new(),
            conversation_id,
            sender_id,
            content: MessageContent::parse(&format!("message {i}")).unwrap(),
            client_message_id: None,
            reply_to_id: None,
            thread_root_id: None,
            mentions: Default::default(),
            created_at: chrono::Utc::now().trunc_subsecs(6),
            attachment_ids: Vec::new(),
        }
    }

    #[test]
    fn a_queue_that_is_full_refuses_at_once_and_every_accepted_append_is_answered() {
        let db = temp_db();
        let database = db.store.database().clone();
        let (group, sender) = group_of_one(&db);
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

        // Every other append goes to the group, the rest to conversations that do not exist.
        let sent_to_the_group = |i: usize| i.is_multiple_of(2);
        let (answers, answered) = std::sync::mpsc::channel();
        // The commit thread may have taken one batch off the queue before blocking.
        let submitted = MAX_WAITING + MAX_BATCH + 1;
        let mut messages = Vec::with_capacity(submitted);
        let mut refused_at_once = Vec::new();
        for i in 0..submitted {
            let conversation = if sent_to_the_group(i) {
                group
            } else {
                ConversationId::new()
            };
            let new = message(conversation, sender, i);
            messages.push(new.clone());
            let answers = answers.clone();
            db.store.submit(
                new,
                Box::new(move |outcome| answers.send((i, outcome)).unwrap()),
            );
            // Nothing can be stored while the lock is held: an answer now is a refusal.
            refused_at_once.extend(answered.try_iter());
        }
        drop(answers);
        assert!(
            !refused_at_once.is_empty(),
            "a full queue refuses instead of growing"
        );
        let accepted = submitted - refused_at_once.len();
        assert!(
            (MAX_WAITING..=MAX_WAITING + MAX_BATCH).contains(&accepted),
            "the queue holds {MAX_WAITING} appends besides the batch being written, \
             yet {accepted} were accepted"
        );
        for (position, (i, outcome)) in refused_at_once.iter().enumerate() {
            assert_eq!(
                *i,
                accepted + position,
                "once full, every later append is refused"
            );
            assert!(
                matches!(outcome, Err(StoreError::Unavailable(_))),
                "append {i} was refused with {outcome:?}"
            );
        }

        release.0.send(()).unwrap();
        holder.join().unwrap();
        let rest: Vec<_> = answered.iter().collect();
        assert_eq!(
            rest.len(),
            accepted,
            "every accepted append is answered once"
        );
        let mut last_seq = Seq(0);
        let mut stored = Vec::new();
        for (expected, (i, outcome)) in rest.into_iter().enumerate() {
            assert_eq!(i, expected, "appends are answered in the order submitted");
            if !sent_to_the_group(i) {
                assert!(
                    matches!(outcome, Err(StoreError::Missing)),
                    "append {i} named no conversation, yet got {outcome:?}"
                );
                continue;
            }
            let message: Message = match outcome {
                Ok(AppendOutcome {
                    appended: Appended::Created(message),
                    ..
                }) => message,
                other => panic!("append {i} to the group got {other:?}"),
            };
            let new = &messages[i];
            assert_eq!(
                (message.id, message.conversation_id, message.sender_id),
                (new.id, new.conversation_id, new.sender_id)
            );
            assert_eq!(message.content.as_ref(), Some(&new.content));
            assert!(
                message.seq > last_seq,
                "seqs follow the order of the answers"
            );
            last_seq = message.seq;
            stored.push(message);
        }
        assert_eq!(stored.len(), accepted.div_ceil(2));
        // What each append was answered with is what the store now holds.
        for answer in stored.iter().step_by(997).chain(stored.last()) {
            let found = MessageStore::find(&db.store, answer.id).unwrap();
            assert_eq!(found.as_ref(), Some(answer));
        }
    }
}

//! The latest messages of busy conversations, kept in memory.
//!
//! "The latest page" is by far the most read history: every client opening a conversation
//! asks for it. Serving it from memory skips the query and the decoding of every row, which
//! were most of what such a read cost. The commit thread extends a kept page after every
//! commit, before anyone is told of the message, so a client that hears of a message and then
//! asks for the page finds it there.
//!
//! A page read from the database is kept only if no message was committed to its
//! conversation after the read's snapshot: seqs are given in commit order by the one writer,
//! so a page whose newest seq is at least the last one appended is complete up to now, and a
//! commit still on its way to this memory will extend it. This holds because this process is
//! the only writer of messages to its database file.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chat_domain::ConversationId;
use chat_domain::message::Message;
use chat_domain::paging::Page;

/// Messages kept per conversation: the largest page a client may ask for.
const KEEP: usize = Page::MAX_LIMIT as usize;
/// Bytes of kept messages (roughly) before the memory is cleared and refilled by reads: a
/// bound on this memory whatever the size of the messages.
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// Conversations whose last append is remembered before that memory starts over.
const MAX_REMEMBERED: usize = 100_000;

pub(crate) struct RecentMessages {
    inner: Mutex<Inner>,
    /// Bytes of kept messages (roughly) before they are all let go.
    budget: usize,
}

impl Default for RecentMessages {
    fn default() -> Self {
        Self::with_budget(MAX_BYTES)
    }
}

#[derive(Default)]
struct Inner {
    pages: HashMap<ConversationId, Kept>,
    /// Roughly the memory the kept messages take, see [`footprint`].
    bytes: usize,
    /// The seq of the last message appended to each conversation since `epoch` began.
    last_appended: HashMap<ConversationId, i64>,
    /// Raised whenever `last_appended` starts over: a read that began before cannot be
    /// checked against it, so its page is not kept.
    epoch: u64,
}

struct Kept {
    /// Ascending by seq; the conversation's newest messages.
    messages: VecDeque<Message>,
    /// Whether these are all of the conversation's messages.
    whole: bool,
}

impl RecentMessages {
    fn with_budget(budget: usize) -> Self {
        Self {
            inner: Mutex::default(),
            budget,
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update leaves the maps consistent, so a panic elsewhere poisons nothing real.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The latest `limit` messages of a conversation, ascending, if they are kept.
    pub(crate) fn latest(
        &self,
        conversation: ConversationId,
        limit: usize,
    ) -> Option<Vec<Message>> {
        let inner = self.inner();
        let kept = inner.pages.get(&conversation)?;
        if kept.messages.len() < limit && !kept.whole {
            return None;
        }
        let skip = kept.messages.len().saturating_sub(limit);
        Some(kept.messages.iter().skip(skip).cloned().collect())
    }

    /// To call before reading a page from the database; give the answer to [`Self::fill`].
    pub(crate) fn epoch(&self) -> u64 {
        self.inner().epoch
    }

    /// Keeps a latest page just read from the database (ascending), unless a message was
    /// appended to the conversation after the read. `whole`: the page is every message.
    pub(crate) fn fill(
        &self,
        conversation: ConversationId,
        page: &[Message],
        whole: bool,
        read_in_epoch: u64,
    ) {
        let newest = page.last().map_or(0, |m| m.seq.0);
        let mut inner = self.inner();
        let appended_since = inner
            .last_appended
            .get(&conversation)
            .is_some_and(|&last| last > newest);
        if read_in_epoch != inner.epoch || appended_since {
            return;
        }
        let skip = page.len().saturating_sub(KEEP);
        let kept = Kept {
            messages: page[skip..].iter().cloned().collect(),
            whole: whole && skip == 0,
        };
        let added: usize = kept.messages.iter().map(footprint).sum();
        let replaced: usize = inner
            .pages
            .insert(conversation, kept)
            .map_or(0, |old| old.messages.iter().map(footprint).sum());
        inner.bytes = (inner.bytes + added).saturating_sub(replaced);
        inner.make_room(self.budget);
    }

    /// Forgets the kept page of a conversation one of whose messages just changed (an edit,
    /// a delete, a reaction, a pin), after the change committed. A read that began before the change
    /// may hold the message as it was, so no read begun before this call is kept.
    pub(crate) fn forget(&self, conversation: ConversationId) {
        let mut inner = self.inner();
        inner.epoch += 1;
        if let Some(old) = inner.pages.remove(&conversation) {
            let freed: usize = old.messages.iter().map(footprint).sum();
            inner.bytes = inner.bytes.saturating_sub(freed);
        }
    }

    /// Records messages just committed, in seq order.
    pub(crate) fn appended<'a>(&self, messages: impl IntoIterator<Item = &'a Message>) {
        let mut inner = self.inner();
        if inner.last_appended.len() >= MAX_REMEMBERED {
            inner.last_appended.clear();
            inner.epoch += 1;
        }
        for message in messages {
            if message.thread_root_id.is_some() {
                // A thread reply is on no page of history, but its root, which a kept page
                // may hold, now shows another summary: the page is read again, and a read
                // that began before the reply committed is not kept.
                inner.epoch += 1;
                if let Some(old) = inner.pages.remove(&message.conversation_id) {
                    let freed: usize = old.messages.iter().map(footprint).sum();
                    inner.bytes = inner.bytes.saturating_sub(freed);
                }
                continue;
            }
            inner
                .last_appended
                .insert(message.conversation_id, message.seq.0);
            let Some(kept) = inner.pages.get_mut(&message.conversation_id) else {
                continue;
            };
            // A page read after the commit, and kept before this call, has it already.
            if kept.messages.back().is_some_and(|m| m.seq >= message.seq) {
                continue;
            }
            kept.messages.push_back(message.clone());
            let mut dropped = 0;
            if kept.messages.len() > KEEP {
                dropped = kept.messages.pop_front().as_ref().map_or(0, footprint);
                kept.whole = false;
            }
            inner.bytes = (inner.bytes + footprint(message)).saturating_sub(dropped);
        }
        inner.make_room(self.budget);
    }
}

impl Inner {
    fn make_room(&mut self, budget: usize) {
        if self.bytes > budget {
            self.pages.clear();
            self.bytes = 0;
        }
    }
}

/// Roughly what a kept message costs in memory.
fn footprint(message: &Message) -> usize {
    std::mem::size_of::<Message>()
        + message.text().map_or(0, str::len)
        + message
            .client_message_id
            .as_ref()
            .map_or(0, |c| c.as_str().len())
        + message
            .reactions
            .iter()
            .map(|r| {
                std::mem::size_of_val(r)
                    + r.emoji.as_str().len()
                    + std::mem::size_of_val(r.user_ids.as_slice())
            })
            .sum::<usize>()
        + std::mem::size_of_val(message.mentions.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_domain::message::{MessageContent, NewMessage, Seq};
    use chat_domain::{MessageId, UserId};

    fn message(conversation: ConversationId, seq: i64) -> Message {
        NewMessage {
            id: MessageId::new(),
            conversation_id: conversation,
            sender_id: UserId::new(),
            content: MessageContent::parse(&format!("m{seq}")).unwrap(),
            client_message_id: None,
            created_at: chrono::Utc::now(),
            reply_to_id: None,
            thread_root_id: None,
            mentions: Default::default(),
            attachment_ids: Vec::new(),
        }
        .stored_as(Seq(seq), None, Vec::new())
    }

    fn seqs(page: Option<Vec<Message>>) -> Option<Vec<i64>> {
        page.map(|p| p.iter().map(|m| m.seq.0).collect())
    }

    #[test]
    fn a_kept_page_grows_with_every_commit_and_serves_smaller_pages() {
        let recent = RecentMessages::default();
        let c = ConversationId::new();
        assert_eq!(seqs(recent.latest(c, 2)), None);
        recent.fill(c, &[message(c, 1), message(c, 3)], true, recent.epoch());
        recent.appended(&[message(c, 7)]);
        assert_eq!(seqs(recent.latest(c, 2)), Some(vec![3, 7]));
        assert_eq!(
            seqs(recent.latest(c, 50)),
            Some(vec![1, 3, 7]),
            "it is the whole conversation"
        );
        // A page read after seq 7 was committed, kept before the commit thread got here.
        recent.appended(&[message(c, 7)]);
        assert_eq!(
            seqs(recent.latest(c, 50)),
            Some(vec![1, 3, 7]),
            "no duplicate"
        );
    }

    #[test]
    fn a_thread_reply_joins_no_kept_page_and_lets_go_of_the_one_holding_its_root() {
        let recent = RecentMessages::default();
        let (c, d) = (ConversationId::new(), ConversationId::new());
        let root = message(c, 1);
        recent.fill(c, std::slice::from_ref(&root), true, recent.epoch());
        recent.fill(d, &[message(d, 2)], true, recent.epoch());
        let read_before_the_reply = recent.epoch();
        let mut reply = message(c, 3);
        reply.thread_root_id = Some(root.id);
        recent.appended(&[reply]);
        assert_eq!(
            seqs(recent.latest(c, 50)),
            None,
            "its root's summary changed"
        );
        assert_eq!(seqs(recent.latest(d, 50)), Some(vec![2]), "others are kept");
        // A read that began before the reply committed holds the root's old summary.
        recent.fill(c, &[root], true, read_before_the_reply);
        assert_eq!(seqs(recent.latest(c, 50)), None);
    }

    #[test]
    fn a_read_from_before_the_memory_of_appends_started_over_is_not_kept() {
        let recent = RecentMessages::default();
        let c = ConversationId::new();
        let before = recent.epoch();
        for i in 0..MAX_REMEMBERED as i64 + 1 {
            recent.appended(&[message(ConversationId::new(), i + 10)]);
        }
        recent.fill(c, &[message(c, 3)], true, before);
        assert_eq!(seqs(recent.latest(c, 1)), None);
    }

    #[test]
    fn a_messages_mentions_count_in_its_footprint() {
        let plain = message(ConversationId::new(), 1);
        let mut mentioning = plain.clone();
        mentioning.mentions = vec![UserId::new(), UserId::new()];
        assert_eq!(
            footprint(&mentioning),
            footprint(&plain) + 2 * std::mem::size_of::<UserId>()
        );
    }

    #[test]
    fn kept_messages_stay_within_their_memory_budget() {
        let one = footprint(&message(ConversationId::new(), 1));
        let recent = RecentMessages::with_budget(one * 10);
        let (c, d) = (ConversationId::new(), ConversationId::new());
        recent.fill(c, &[message(c, 1), message(c, 2)], true, recent.epoch());
        recent.fill(d, &[message(d, 3)], true, recent.epoch());
        for seq in 4..10 {
            recent.appended(&[message(c, seq)]);
        }
        assert_eq!(
            recent.latest(c, 1).map(|p| p.len()),
            Some(1),
            "9 of 10 used"
        );
        recent.appended(&[message(d, 10), message(d, 11)]);
        assert_eq!(
            recent.latest(c, 1).map(|p| p.len()),
            None,
            "over budget: all let go"
        );
        assert_eq!(recent.latest(d, 1).map(|p| p.len()), None);
        // Reads fill it again.
        recent.fill(d, &[message(d, 11)], false, recent.epoch());
        assert_eq!(seqs(recent.latest(d, 1)), Some(vec![11]));
    }

    #[test]
    fn a_page_read_before_a_later_commit_is_not_kept() {
        let recent = RecentMessages::default();
        let c = ConversationId::new();
        // The read saw seq 3; seq 5 was committed and recorded before the read got here.
        recent.appended(&[message(c, 5)]);
        recent.fill(c, &[message(c, 3)], true, recent.epoch());
        assert_eq!(seqs(recent.latest(c, 1)), None);
        // A read that saw seq 5 is current.
        recent.fill(c, &[message(c, 3), message(c, 5)], true, recent.epoch());
        assert_eq!(seqs(recent.latest(c, 1)), Some(vec![5]));
    }

    #[test]
    fn a_changed_conversation_is_read_again_and_a_read_begun_before_the_change_is_not_kept() {
        let recent = RecentMessages::default();
        let c = ConversationId::new();
        recent.fill(c, &[message(c, 1)], true, recent.epoch());
        let before = recent.epoch();
        recent.forget(c);
        assert_eq!(seqs(recent.latest(c, 1)), None);
        recent.fill(c, &[message(c, 1)], true, before);
        assert_eq!(seqs(recent.latest(c, 1)), None);
        recent.fill(c, &[message(c, 1)], true, recent.epoch());
        assert_eq!(seqs(recent.latest(c, 1)), Some(vec![1]));
    }

    #[test]
    fn only_the_newest_messages_are_kept_and_a_longer_page_than_kept_is_a_miss() {
        let recent = RecentMessages::default();
        let c = ConversationId::new();
        let page: Vec<Message> = (1..=KEEP as i64).map(|s| message(c, s)).collect();
        recent.fill(c, &page, false, recent.epoch());
        recent.appended(&[message(c, KEEP as i64 + 1)]);
        let latest = seqs(recent.latest(c, KEEP)).unwrap();
        assert_eq!(latest.first(), Some(&2));
        assert_eq!(latest.last(), Some(&(KEEP as i64 + 1)));
        assert_eq!(recent.latest(c, KEEP + 1).map(|p| p.len()), None);
    }
}

//! The contract of the storage ports: every rule a store must keep, written once as plain
//! functions over any store, so the in-memory fakes, SQLite and PostgreSQL are held to the
//! same rules and none can drift.
//!
//! The doc comments in [`crate::ports`] are the specification; each function here pins one
//! rule of it. A rule takes a fresh, empty store and panics when the store breaks the rule.
//! An adapter runs them all with [`contract_tests!`](crate::contract_tests), which expands to
//! one `#[test]` per rule. Compiled for chat-domain's own tests and, for adapters' tests,
//! behind the `contract` feature; it uses no test-only crate, so the feature adds nothing to
//! the dependency tree.
//!
//! The rules fill the store through [`Fixture`], which an adapter's own tests may use too. Its
//! timestamps are whole milliseconds, coarser than SQLite and PostgreSQL keep, so values read
//! back compare equal to those written; only revocation expiries follow the wall clock.

pub mod attachments;
pub mod changes;
pub mod conversations;
pub mod delivery;
pub mod feed;
pub mod member_state;
pub mod mentions;
pub mod messages;
pub mod presence;
pub mod reactions;
pub mod read_receipts;
pub mod replies;
pub mod revocations;
pub mod search;
pub mod sessions;
pub mod threads;
pub mod users;
pub mod webhooks;

// Blocking, reports and server admins (issue #17).
pub mod admins;
pub mod blocks;
pub mod reports;

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, DurationRound, Utc};

use crate::conversation::{
    Conversation, ConversationKind, ConversationName, InboxFilter, NewConversation, Role,
};
use crate::mention::MentionCandidates;
use crate::message::{AppendOutcome, Appended, Message, MessageContent, NewMessage};
use crate::ports::SessionStore;
use crate::ports::{
    AdminStore, AttachmentStore, BlockStore, ConversationStore, FeedStore, MessageStore,
    PresenceStore, ReadReceiptStore, ReportStore, SearchStore, StoreResult, TokenRevocations,
    UserStore,
};
use crate::ports::{OutboxStore, WebhookStore};
use crate::user::{Email, NewUser, PasswordHash, Username};
use crate::{ConversationId, MessageId, UserId};

/// A store behind every storage port: what the contract runs against. Any type implementing
/// all seven ports is one.
pub trait Stores:
    UserStore
    + ConversationStore
    + MessageStore
    + ReadReceiptStore
    + TokenRevocations
    + FeedStore
    + SearchStore
    + AttachmentStore
    + SessionStore
    + BlockStore
    + AdminStore
    + ReportStore
    + OutboxStore
    + WebhookStore
    + PresenceStore
{
}

impl<T> Stores for T where
    T: UserStore
        + ConversationStore
        + MessageStore
        + ReadReceiptStore
        + TokenRevocations
        + FeedStore
        + SearchStore
        + AttachmentStore
        + SessionStore
        + BlockStore
        + AdminStore
        + ReportStore
        + OutboxStore
        + WebhookStore
        + PresenceStore
        + ?Sized
{
}

/// Expands to one `#[test]` per rule of the storage ports' contract, each run against a
/// fresh store.
///
/// The argument is an expression evaluated once per test that yields a guard dereferencing
/// to an empty store implementing every storage port (see [`contract::Stores`]): a temporary
/// SQLite file, a freshly created PostgreSQL database, or `Box::new(MemoryStore::default())`.
/// The guard is dropped when its test ends, which is where it should clean up (`&*guard` is
/// what the rules get, so the guard implements `Deref`). Some rules append from several
/// threads at once. Invoke the macro in a module of its own, as it defines a function per
/// rule, named after the rule:
///
/// ```ignore
/// #[cfg(test)]
/// mod contract {
///     chat_domain::contract_tests!(crate::test_support::temp_db());
/// }
/// ```
///
/// For an adapter whose server may be absent, write `optional` before an expression that
/// yields an `Option` of such a guard: on `None` the test returns at once, so the expression
/// must say why on stderr itself (`SKIPPED: <suite>: set <VAR> to run it`):
///
/// ```ignore
/// #[cfg(test)]
/// mod contract {
///     chat_domain::contract_tests!(optional crate::test_support::temp_database());
/// }
/// ```
///
/// The crate running it dev-depends on chat-domain with `features = ["contract"]`.
///
/// [`contract::Stores`]: crate::contract::Stores
#[macro_export]
macro_rules! contract_tests {
    (@rules $fresh:tt) => {
        $crate::contract_tests!(@each $fresh;
            users::usernames_and_emails_are_unique_ignoring_case_and_a_conflict_names_the_field,
            users::a_user_reads_back_as_written_and_is_found_by_username_or_email_ignoring_case,
            users::search_matches_substrings_of_username_or_full_name_literally,
            users::search_ranks_exact_username_then_prefix_then_full_name_words,
            users::search_finds_an_email_only_by_the_whole_address,
            users::an_update_changes_only_what_it_names_and_a_taken_email_is_a_conflict,
            users::a_new_password_or_deactivation_raises_the_token_generation,
            users::updating_or_deactivating_a_missing_user_is_missing,
            revocations::a_revoked_token_stays_revoked_and_others_are_not,
            conversations::a_conversation_reads_back_as_created_with_its_members,
            conversations::a_pair_can_have_only_one_direct_conversation_whichever_order,
            conversations::members_are_listed_in_the_order_they_joined,
            conversations::members_of_several_conversations_come_back_grouped_in_the_order_asked,
            conversations::adding_members_skips_existing_ones_and_respects_the_cap,
            conversations::removing_a_member_hides_the_conversation_and_its_messages_from_them,
            conversations::roles_can_be_changed_and_found_by_role,
            conversations::renaming_changes_the_name_and_a_missing_conversation_is_missing,
            messages::appended_messages_get_increasing_seqs_across_conversations,
            messages::a_sender_who_is_not_a_member_cannot_append,
            messages::a_client_message_id_is_stored_once_per_sender_and_conversation,
            messages::a_retry_uses_up_no_seq,
            messages::a_retry_with_other_content_gets_the_stored_message_back_unchanged,
            messages::sending_is_reading,
            messages::history_pages_are_cut_by_seq,
            messages::since_and_last_seq_for_cover_only_the_users_conversations,
            messages::an_append_sees_members_added_removed_or_changed_before_it,
            messages::a_deactivated_user_takes_no_new_direct_message_but_a_retry_gets_its_message,
            messages::submitted_appends_are_stored_and_answered_in_the_order_submitted,
            messages::commit_callbacks_run_in_seq_order_even_for_appends_committed_together,
            messages::concurrent_appends_lose_nothing_and_never_share_a_seq,
            messages::the_latest_seq_is_the_highest_handed_out,
            changes::an_edit_replaces_the_content_and_takes_a_seq_after_every_earlier_one,
            changes::an_edit_to_the_same_content_or_of_a_deleted_message_changes_nothing,
            changes::a_delete_purges_the_content_and_leaves_a_tombstone_in_place,
            changes::a_removed_member_can_neither_edit_nor_delete_nor_hide,
            changes::hiding_affects_only_that_users_catch_up_and_unread_counts,
            changes::change_callbacks_run_once_per_real_change_in_seq_order_with_appends,
            changes::an_edit_keeps_reactions_and_pin_and_a_delete_drops_both,
            reactions::reacting_twice_stores_one_reaction_and_takes_one_seq,
            reactions::reactions_and_pins_come_with_every_read_of_a_message,
            reactions::the_reaction_cap_counts_distinct_emoji,
            reactions::removing_the_last_reaction_of_an_emoji_removes_the_emoji,
            reactions::every_reaction_or_pin_change_takes_a_seq_after_all_earlier,
            reactions::pins_are_listed_latest_first_within_the_cap,
            reactions::a_removed_member_cannot_react_or_pin,
            replies::a_reply_reads_back_quoting_its_original_from_every_read,
            replies::a_replys_snippet_follows_edits_and_deletes_of_its_original,
            replies::a_reply_to_anything_but_a_live_message_of_its_conversation_is_refused,
            threads::a_thread_reply_is_read_from_its_thread_and_its_root_carries_the_summary,
            threads::a_deleted_reply_still_counts_and_a_deleted_root_keeps_its_thread,
            threads::a_thread_root_must_be_a_live_main_message_of_the_conversation,
            threads::a_thread_reply_is_unread_only_for_the_threads_participants,
            mentions::mentions_are_members_named_at_commit_and_every_read_carries_them,
            mentions::an_edit_mentions_whom_its_content_names_and_a_delete_mentions_nobody,
            mentions::unread_mentions_are_the_unread_messages_that_mention_the_member,
            mentions::mentions_of_appends_committed_together_are_each_their_own,
            read_receipts::a_read_marker_only_moves_forward,
            read_receipts::the_inbox_lists_recent_activity_first_with_last_message_and_unread_count,
            read_receipts::unread_counts_are_messages_from_others_past_the_marker,
            member_state::advancing_a_marker_takes_a_position_only_when_it_moves,
            member_state::setting_a_marker_moves_it_either_way_onto_a_message_with_a_position,
            member_state::a_set_markers_unread_count_leaves_out_tombstones_and_hidden_messages,
            member_state::settings_change_only_what_they_name_and_each_change_takes_a_position,
            member_state::a_mute_lasts_until_its_time_and_keeps_the_unread_count,
            member_state::an_archive_holds_until_a_newer_message_unless_muted,
            member_state::a_removed_member_keeps_no_settings,
            feed::the_feed_holds_each_thing_once_at_its_latest_change_in_position_order,
            feed::the_feed_shows_only_conversations_the_user_is_in_now_and_their_own_removal,
            feed::paging_the_feed_by_position_never_skips_or_repeats,
            feed::a_deleted_message_replays_as_a_tombstone_that_keeps_its_edit_time,
            feed::every_change_comes_back_at_its_position_to_those_who_may_see_it,
            delivery::deliveries_move_markers_forward_only_each_at_its_own_position,
            delivery::the_feed_replays_each_members_delivered_marker_at_its_latest_move,
            delivery::marking_unread_takes_nothing_back_from_delivery,
            search::words_phrases_and_prefixes_match_whole_words_in_any_case,
            search::query_syntax_of_any_store_is_only_words_to_a_search,
            search::relevance_ranks_better_matches_first_and_recent_is_newest_first,
            search::filters_narrow_by_conversation_sender_and_seq,
            search::paging_by_cursor_covers_every_hit_once_in_order,
            search::edited_messages_match_their_new_words_and_deleted_ones_nothing,
            search::only_members_find_messages_and_never_ones_they_hid,
            attachments::an_upload_is_attached_in_the_append_and_every_read_carries_it,
            attachments::only_the_senders_own_unattached_uploads_attach_and_a_refusal_stores_nothing,
            attachments::a_retry_gets_the_stored_message_with_its_attachments,
            attachments::a_delete_for_everyone_drops_its_attachments_and_unreferences_their_blobs,
            attachments::the_sweep_takes_old_unattached_uploads_and_untouched_unreferenced_blobs_only,
            attachments::the_quota_counts_the_uploaders_stored_uploads,
            sessions::a_session_reads_back_as_created_and_lists_only_the_users_live_ones,
            sessions::a_refresh_hash_rotates_once_and_an_old_one_ends_the_session,
            sessions::an_expired_session_does_not_rotate,
            sessions::concurrent_rotations_of_one_hash_let_exactly_one_through,
            sessions::a_user_ends_only_their_own_sessions_and_all_but_one,
            sessions::opening_a_session_deletes_expired_ones,
            blocks::a_block_is_stored_once_listed_latest_first_and_lifted_once,
            blocks::blockers_of_names_only_those_among_who_blocked_the_user,
            blocks::a_direct_message_from_a_blocked_sender_is_refused_and_nothing_is_stored,
            admins::admin_is_granted_and_revoked_once_and_a_missing_user_is_missing,
            admins::the_audit_log_reads_back_newest_first_and_pages_by_id,
            admins::reactivation_keeps_the_token_generation_and_a_missing_user_is_missing,
            admins::a_moderated_delete_needs_no_membership_and_purges_as_a_delete_does,
            reports::a_report_reads_back_open_and_lists_newest_first_by_status,
            reports::a_report_is_resolved_once_and_a_missing_one_is_missing,
            webhooks::every_announced_change_is_in_the_outbox_in_the_order_it_was_made,
            webhooks::a_fan_out_takes_each_event_once_and_queues_it_to_every_endpoint,
            webhooks::a_claim_never_holds_a_leased_delivery_nor_one_behind_a_pending_earlier_one,
            webhooks::a_lease_that_runs_out_lets_another_claim_take_the_delivery,
            webhooks::a_dead_letter_is_listed_until_replayed_and_goes_with_its_endpoint,
            presence::last_seen_reads_back_as_recorded_and_a_user_never_seen_has_none,
            presence::hiding_last_seen_is_kept_apart_from_the_time,
            presence::presence_of_a_missing_user_is_missing,
            presence::contacts_are_the_other_members_of_the_users_conversations_now,
        );
    };
    (@each $fresh:tt; $($module:ident :: $rule:ident),* $(,)?) => {
        $(
            #[test]
            fn $rule() {
                $crate::contract_tests!(@run $fresh, $module::$rule);
            }
        )*
    };
    (@run (always $fresh:expr), $module:ident :: $rule:ident) => {
        let store = $fresh;
        $crate::contract::$module::$rule(&*store);
    };
    (@run (optional $fresh:expr), $module:ident :: $rule:ident) => {
        if let Some(store) = $fresh {
            $crate::contract::$module::$rule(&*store);
        }
    };
    (optional $fresh:expr) => {
        $crate::contract_tests!(@rules (optional $fresh));
    };
    ($fresh:expr) => {
        $crate::contract_tests!(@rules (always $fresh));
    };
}

/// A store under test with the means to fill it: users, conversations and messages made
/// with valid values and strictly increasing timestamps.
pub struct Fixture<'s, S: ?Sized> {
    pub store: &'s S,
    start: DateTime<Utc>,
    ticks: AtomicI64,
}

impl<'s, S: Stores + ?Sized> Fixture<'s, S> {
    pub fn new(store: &'s S) -> Self {
        let start = Utc::now()
            .duration_trunc(Duration::milliseconds(1))
            .unwrap_or_else(|_| Utc::now());
        Self {
            store,
            start,
            ticks: AtomicI64::new(0),
        }
    }

    /// A moment later than every one handed out before, in whole milliseconds.
    pub fn now(&self) -> DateTime<Utc> {
        self.start + Duration::milliseconds(self.ticks.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// A new account named `name`, with the email `<name>@example.com` and no full name.
    pub fn user(&self, name: &str) -> UserId {
        self.user_with(name, &format!("{name}@example.com"), None)
    }

    pub fn user_with(&self, name: &str, email: &str, full_name: Option<&str>) -> UserId {
        let id = UserId::new();
        self.store
            .insert(&self.new_user(id, name, email, full_name))
            .expect("a new user is stored");
        id
    }

    pub fn new_user(
        &self,
        id: UserId,
        name: &str,
        email: &str,
        full_name: Option<&str>,
    ) -> NewUser {
        NewUser {
            id,
            username: Username::parse(name).expect("a valid username"),
            email: Email::parse(email).expect("a valid email"),
            full_name: full_name.map(str::to_owned),
            password_hash: PasswordHash(format!("hash of {name}")),
            created_at: self.now(),
        }
    }

    /// Creates a conversation of `kind` with `members`: in a group the first owns it and the
    /// rest are plain members; both members of a direct conversation are plain members.
    pub fn create(
        &self,
        kind: ConversationKind,
        members: &[UserId],
    ) -> StoreResult<ConversationId> {
        let conversation = self.conversation(kind, members[0]);
        let id = conversation.id;
        let members = members
            .iter()
            .enumerate()
            .map(|(i, user)| {
                let owns = i == 0 && kind == ConversationKind::Group;
                (*user, if owns { Role::Owner } else { Role::Member })
            })
            .collect();
        self.store.create(&NewConversation {
            conversation,
            members,
        })?;
        Ok(id)
    }

    /// A conversation not yet stored, created by `creator` now.
    pub fn conversation(&self, kind: ConversationKind, creator: UserId) -> Conversation {
        let now = self.now();
        Conversation {
            id: ConversationId::new(),
            kind,
            name: (kind == ConversationKind::Group)
                .then(|| ConversationName::parse("team").expect("a valid name")),
            created_by: creator,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn group(&self, members: &[UserId]) -> ConversationId {
        self.create(ConversationKind::Group, members)
            .expect("a group is created")
    }

    pub fn direct(&self, a: UserId, b: UserId) -> ConversationId {
        self.create(ConversationKind::Direct, &[a, b])
            .expect("a direct conversation is created")
    }

    /// A message from `sender` to `conversation`, written now, without a client message id.
    pub fn message(&self, conversation: ConversationId, sender: UserId, text: &str) -> NewMessage {
        NewMessage {
            id: MessageId::new(),
            conversation_id: conversation,
            sender_id: sender,
            content: MessageContent::parse(text).expect("valid content"),
            client_message_id: None,
            created_at: self.now(),
            reply_to_id: None,
            thread_root_id: None,
            mentions: MentionCandidates::parse(text),
            attachment_ids: Vec::new(),
        }
    }

    /// Appends through [`MessageStore::append`] with no commit callback.
    pub fn append(&self, message: &NewMessage) -> StoreResult<AppendOutcome> {
        self.store.append(message, Box::new(|_| {}))
    }

    /// Sends a message that must be stored as a new one, and returns it as stored.
    pub fn send(&self, conversation: ConversationId, sender: UserId, text: &str) -> Message {
        created(
            self.append(&self.message(conversation, sender, text))
                .expect("the message is stored"),
        )
    }
}

/// The message an append stored; panics if it returned an earlier one instead.
pub fn created(outcome: AppendOutcome) -> Message {
    match outcome.appended {
        Appended::Created(message) => message,
        Appended::Existing(message) => panic!("expected a new message, got {message:?} again"),
    }
}

/// The message an append returned as already stored; panics if it stored a new one.
pub fn existing(outcome: AppendOutcome) -> Message {
    match outcome.appended {
        Appended::Existing(message) => message,
        Appended::Created(message) => panic!("a retry stored a second message: {message:?}"),
    }
}

/// The inbox filter that lets every conversation through.
pub fn everything() -> InboxFilter {
    InboxFilter::all(Utc::now())
}

/// `ids` sorted, to compare sets of ids whose order a port leaves open.
pub fn sorted<T: Ord + Clone>(ids: &[T]) -> Vec<T> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids
}

#[cfg(test)]
mod against_the_fakes {
    //! The contract run against the in-memory fakes the services' unit tests use.
    crate::contract_tests!(Box::new(crate::fakes::MemoryStore::default()));
}

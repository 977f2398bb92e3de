//! The rules of what each member keeps for themselves: where their read marker stands (and
//! its place in the change feed), and their settings, mute and archive.

use chrono::Duration;

use crate::contract::{Fixture, Stores, everything};
use crate::conversation::InboxFilter;
use crate::message::Seq;
use crate::paging::Page;
use crate::read_state::{MemberSettings, SettingsUpdate};
use crate::{ConversationId, StoreError, UserId};

/// A marker moved by `advance` takes the next seq, above every seq handed out before, and
/// keeps it; a call that does not move the marker takes none. Moving the sender's marker by
/// sending takes none either: the message is that change.
pub fn advancing_a_marker_takes_a_position_only_when_it_moves<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let c = f.direct(a, b);
    let m1 = f.send(c, a, "1");
    let m2 = f.send(c, a, "2");
    let moved = store.advance(c, b, m1.seq, f.now()).unwrap();
    let first = moved.seq.expect("a move takes a position");
    assert!(first > m2.seq, "a position comes after every one before");
    assert_eq!(store.latest_seq().unwrap(), first);
    let stayed = store.advance(c, b, m1.seq, f.now()).unwrap();
    assert_eq!(stayed.seq, Some(first), "no move, no new position");
    assert_eq!(store.latest_seq().unwrap(), first);
    let again = store.advance(c, b, m2.seq, f.now()).unwrap();
    assert!(again.seq.expect("a move takes a position") > first);

    let reply = f.send(c, b, "3");
    assert!(reply.seq > again.seq.unwrap());
    let own = store.advance(c, a, m2.seq, f.now()).unwrap();
    assert_eq!(own.seq, None, "the sender's marker moved only by sending");
    assert_eq!(own.last_read_seq, m2.seq);
}

/// The unread count a set marker answers with counts as every unread count does: no message
/// deleted for everyone, none the member hid.
pub fn a_set_markers_unread_count_leaves_out_tombstones_and_hidden_messages<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let ab = f.direct(a, b);
    let kept = f.send(ab, a, "kept");
    let deleted = f.send(ab, a, "deleted");
    let hidden = f.send(ab, a, "hidden");
    store.delete(deleted.id, a, f.now(), &mut |_| {}).unwrap();
    store.hide(hidden.id, b, &mut |_| {}).unwrap();

    let set = store.set_marker(ab, b, Seq::ZERO, f.now()).unwrap();
    assert_eq!(set.unread_count, 1, "only {kept:?} is unread");
    assert_eq!(store.unread_counts(b).unwrap(), vec![(ab, 1)]);
}

/// `set_marker` moves the marker back or forward onto the conversation's newest message at
/// or below the seq asked for (zero when none: nothing read), says where it stood before and
/// what is then unread, and takes a new position every time. A non-member is missing.
pub fn setting_a_marker_moves_it_either_way_onto_a_message_with_a_position<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let ab = f.direct(a, b);
    let elsewhere = f.direct(a, c);
    let m1 = f.send(ab, a, "1");
    let m2 = f.send(ab, a, "2");
    let gap = f.send(elsewhere, a, "in between");
    let m3 = f.send(ab, a, "3");
    let later = f.send(elsewhere, a, "elsewhere");
    store.advance(ab, b, m3.seq, f.now()).unwrap();

    let at = f.now();
    let back = store.set_marker(ab, b, m1.seq, at).unwrap();
    assert_eq!(back.previous, m3.seq);
    assert_eq!(back.marker.last_read_seq, m1.seq, "a marker set moves back");
    assert_eq!(back.message_id, Some(m1.id));
    assert_eq!(back.unread_count, 2);
    assert_eq!(back.marker.read_at, at);
    assert!(!back.moved_forward());
    let first = back.marker.seq.expect("a set takes a position");
    assert!(first > later.seq);
    assert_eq!(
        store.membership(ab, b).unwrap().unwrap().last_read_seq,
        m1.seq
    );
    assert_eq!(store.unread_counts(b).unwrap(), vec![(ab, 2)]);

    let none = store.set_marker(ab, b, Seq::ZERO, f.now()).unwrap();
    assert_eq!(
        (
            none.marker.last_read_seq,
            none.message_id,
            none.unread_count
        ),
        (Seq::ZERO, None, 3)
    );
    let second = none.marker.seq.unwrap();
    assert!(second > first);

    // Between two messages: onto the earlier one. Past the newest (even past a seq of
    // another conversation): onto the newest.
    let between = store.set_marker(ab, b, gap.seq, f.now()).unwrap();
    assert!(between.moved_forward());
    assert_eq!(
        (
            between.marker.last_read_seq,
            between.message_id,
            between.unread_count
        ),
        (m2.seq, Some(m2.id), 1)
    );
    let all = store
        .set_marker(ab, b, Seq(later.seq.0 + 100), f.now())
        .unwrap();
    assert_eq!(
        (all.marker.last_read_seq, all.message_id, all.unread_count),
        (m3.seq, Some(m3.id), 0)
    );
    assert!(all.marker.seq.unwrap() > between.marker.seq.unwrap());
    let same = store.set_marker(ab, b, m3.seq, f.now()).unwrap();
    assert_eq!(same.previous, m3.seq);
    assert!(same.marker.seq.unwrap() > all.marker.seq.unwrap());

    // Then `advance` moves it on from where it was set, and never back.
    store.set_marker(ab, b, m1.seq, f.now()).unwrap();
    let on = store.advance(ab, b, m2.seq, f.now()).unwrap();
    assert_eq!(on.last_read_seq, m2.seq);

    for (conversation, user) in [(ab, c), (ConversationId::new(), b), (ab, UserId::new())] {
        assert!(matches!(
            store.set_marker(conversation, user, m1.seq, f.now()),
            Err(StoreError::Missing)
        ));
    }
}

/// Settings start unmuted and unarchived; an update changes only the fields it names, takes
/// a new position each time, and reads back. A non-member has none and cannot change any.
pub fn settings_change_only_what_they_name_and_each_change_takes_a_position<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let ab = f.direct(a, b);
    let sent = f.send(ab, a, "hi");
    let now = f.now();
    assert_eq!(
        store.settings(ab, b, now).unwrap(),
        Some(MemberSettings::default())
    );
    let until = now + Duration::hours(8);
    let muted = store
        .update_settings(
            ab,
            b,
            &SettingsUpdate {
                muted_until: Some(Some(until)),
                archived: None,
            },
            f.now(),
        )
        .unwrap();
    assert_eq!((muted.conversation_id, muted.user_id), (ab, b));
    assert_eq!(
        muted.settings,
        MemberSettings {
            muted_until: Some(until),
            archived: false
        }
    );
    assert!(muted.seq > sent.seq);
    assert_eq!(store.latest_seq().unwrap(), muted.seq);

    let archived = store
        .update_settings(
            ab,
            b,
            &SettingsUpdate {
                muted_until: None,
                archived: Some(true),
            },
            f.now(),
        )
        .unwrap();
    assert_eq!(
        archived.settings,
        MemberSettings {
            muted_until: Some(until),
            archived: true
        },
        "a field left out stays as it was"
    );
    assert!(archived.seq > muted.seq);
    assert_eq!(
        store.settings(ab, b, f.now()).unwrap(),
        Some(archived.settings)
    );
    assert_eq!(
        store.settings(ab, a, f.now()).unwrap(),
        Some(MemberSettings::default()),
        "settings are the member's own"
    );

    let unmuted = store
        .update_settings(
            ab,
            b,
            &SettingsUpdate {
                muted_until: Some(None),
                archived: Some(false),
            },
            f.now(),
        )
        .unwrap();
    assert_eq!(unmuted.settings, MemberSettings::default());
    assert!(unmuted.seq > archived.seq);

    assert_eq!(store.settings(ab, c, f.now()).unwrap(), None);
    assert_eq!(
        store.settings(ConversationId::new(), b, f.now()).unwrap(),
        None
    );
    for (conversation, user) in [(ab, c), (ConversationId::new(), b)] {
        assert!(matches!(
            store.update_settings(conversation, user, &SettingsUpdate::default(), f.now()),
            Err(StoreError::Missing)
        ));
    }
}

/// `muted` lists the user's conversations muted at the time asked, and a mute changes
/// nothing about unread counts (the badge leaving them out is the service's rule).
pub fn a_mute_lasts_until_its_time_and_keeps_the_unread_count<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let ab = f.direct(a, b);
    let bc = f.direct(b, c);
    f.send(ab, a, "1");
    f.send(bc, c, "2");
    let now = f.now();
    let until = now + Duration::minutes(30);
    store
        .update_settings(
            ab,
            b,
            &SettingsUpdate {
                muted_until: Some(Some(until)),
                archived: None,
            },
            now,
        )
        .unwrap();
    assert_eq!(store.muted(b, now).unwrap(), vec![ab]);
    assert!(
        store.muted(a, now).unwrap().is_empty(),
        "a mute is one member's"
    );
    assert!(
        store.muted(b, until).unwrap().is_empty(),
        "a mute ends at its time"
    );
    let mut counts = store.unread_counts(b).unwrap();
    counts.sort();
    let mut expected = vec![(ab, 1), (bc, 1)];
    expected.sort();
    assert_eq!(counts, expected);
}

/// Archiving takes a conversation out of the unarchived inbox until a message newer than
/// the archiving arrives, which brings it back, unless it is muted then. Archiving again
/// archives as of then; the filter `None` lists every conversation.
pub fn an_archive_holds_until_a_newer_message_unless_muted<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let ab = f.direct(a, b);
    let ac = f.direct(a, c);
    f.send(ab, b, "1");
    f.send(ac, c, "2");
    let listed = |archived: Option<bool>| -> Vec<(ConversationId, bool)> {
        store
            .inbox(
                a,
                Page::default(),
                InboxFilter {
                    archived,
                    now: f.now(),
                },
            )
            .unwrap()
            .into_iter()
            .map(|e| (e.conversation.id, e.settings.archived))
            .collect()
    };
    let set = |conversation, update: SettingsUpdate| {
        store
            .update_settings(conversation, a, &update, f.now())
            .unwrap()
    };
    let archive = || SettingsUpdate {
        muted_until: None,
        archived: Some(true),
    };
    assert!(set(ab, archive()).settings.archived);
    assert_eq!(listed(Some(true)), vec![(ab, true)]);
    assert_eq!(listed(Some(false)), vec![(ac, false)]);
    assert_eq!(listed(None).len(), 2);
    assert!(
        !store.inbox(b, Page::default(), everything()).unwrap()[0]
            .settings
            .archived,
        "an archive is one member's"
    );

    // A message after the archive brings it back, whoever sends it.
    f.send(ab, b, "back");
    assert!(!store.settings(ab, a, f.now()).unwrap().unwrap().archived);
    assert!(listed(Some(true)).is_empty());
    assert_eq!(listed(Some(false)), vec![(ab, false), (ac, false)]);

    // Archived again, as of now, and muted: a new message leaves it archived.
    assert!(set(ab, archive()).settings.archived);
    let muted = set(
        ab,
        SettingsUpdate {
            muted_until: Some(Some(f.now() + Duration::hours(1))),
            archived: None,
        },
    );
    assert!(muted.settings.archived, "muting keeps the archive");
    f.send(ab, b, "quiet");
    assert_eq!(listed(Some(true)), vec![(ab, true)]);
    // Unmuted, the message newer than the archive brings it back.
    let unmuted = set(
        ab,
        SettingsUpdate {
            muted_until: Some(None),
            archived: None,
        },
    );
    assert!(!unmuted.settings.archived);
    assert!(listed(Some(true)).is_empty());

    // Unarchiving is for good.
    set(ab, archive());
    assert!(
        !set(
            ab,
            SettingsUpdate {
                muted_until: None,
                archived: Some(false),
            }
        )
        .settings
        .archived
    );
    assert!(listed(Some(true)).is_empty());
}

/// Settings live with the membership: a member removed and added again starts afresh.
pub fn a_removed_member_keeps_no_settings<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    store
        .update_settings(
            g,
            b,
            &SettingsUpdate {
                muted_until: Some(Some(f.now() + Duration::hours(1))),
                archived: Some(true),
            },
            f.now(),
        )
        .unwrap();
    assert!(store.remove_member(g, b, f.now()).unwrap().is_some());
    assert_eq!(store.settings(g, b, f.now()).unwrap(), None);
    assert!(store.muted(b, f.now()).unwrap().is_empty());
    store
        .add_members(g, &[b], crate::conversation::Role::Member, 10, f.now())
        .unwrap();
    assert_eq!(
        store.settings(g, b, f.now()).unwrap(),
        Some(MemberSettings::default())
    );
}

//! The rules of [`PresenceStore`](crate::ports::PresenceStore).

use crate::StoreError;
use crate::UserId;
use crate::contract::{Fixture, Stores, sorted};

/// A user's last-seen time reads back as recorded, a later one replaces it, and a user
/// never recorded reads back with none and not hidden; missing users are left out.
pub fn last_seen_reads_back_as_recorded_and_a_user_never_seen_has_none<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (alice, bob) = (f.user("alice"), f.user("bob"));
    let (first, later) = (f.now(), f.now());
    store.record_last_seen(alice, first).unwrap();
    store.record_last_seen(alice, later).unwrap();
    let mut seen = store.last_seen(&[bob, alice, UserId::new()]).unwrap();
    seen.sort_by_key(|s| s.user_id);
    let mut expected = vec![
        crate::presence::LastSeen {
            user_id: alice,
            last_seen_at: Some(later),
            hide_last_seen: false,
        },
        crate::presence::LastSeen::unknown(bob),
    ];
    expected.sort_by_key(|s| s.user_id);
    assert_eq!(seen, expected);
}

/// Hiding the last-seen time keeps the time itself, and showing it again brings it back;
/// recording a new time keeps the choice.
pub fn hiding_last_seen_is_kept_apart_from_the_time<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let alice = f.user("alice");
    store.set_hide_last_seen(alice, true).unwrap();
    let at = f.now();
    store.record_last_seen(alice, at).unwrap();
    let seen = store.last_seen(&[alice]).unwrap();
    assert_eq!(
        (seen[0].last_seen_at, seen[0].hide_last_seen),
        (Some(at), true)
    );
    store.set_hide_last_seen(alice, false).unwrap();
    let seen = store.last_seen(&[alice]).unwrap();
    assert_eq!(
        (seen[0].last_seen_at, seen[0].hide_last_seen),
        (Some(at), false)
    );
}

/// Recording or hiding for a user who does not exist is missing.
pub fn presence_of_a_missing_user_is_missing<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let nobody = UserId::new();
    assert!(matches!(
        store.record_last_seen(nobody, f.now()),
        Err(StoreError::Missing)
    ));
    assert!(matches!(
        store.set_hide_last_seen(nobody, true),
        Err(StoreError::Missing)
    ));
}

/// Contacts are the other members of every conversation the user is in now, each once:
/// not the user, not strangers, not those the user left behind.
pub fn contacts_are_the_other_members_of_the_users_conversations_now<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (alice, bob, carol, dave, eve) = (
        f.user("alice"),
        f.user("bob"),
        f.user("carol"),
        f.user("dave"),
        f.user("eve"),
    );
    f.group(&[alice, bob, carol]);
    f.direct(alice, bob);
    let left = f.group(&[dave, alice]);
    f.direct(dave, eve);
    store.remove_member(left, alice, f.now()).unwrap();
    assert_eq!(
        sorted(&store.contacts(alice).unwrap()),
        sorted(&[bob, carol])
    );
    assert_eq!(sorted(&store.contacts(dave).unwrap()), sorted(&[eve]));
    let among = store
        .contacts_among(alice, &[eve, bob, alice, dave, UserId::new()])
        .unwrap();
    assert_eq!(among, [bob]);
    assert!(store.contacts_among(alice, &[]).unwrap().is_empty());
}

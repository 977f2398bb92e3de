//! The rules of [`BlockStore`](crate::ports::BlockStore), and of the block check a direct
//! message meets as it is stored ([`StoreError::Blocked`]).

use chrono::Duration;

use crate::StoreError;
use crate::contract::{Fixture, Stores, sorted};
use crate::conversation::ConversationKind;

/// Blocking twice stores one block, unblocking says whether there was one, and the list is
/// the blocker's own, latest first.
pub fn a_block_is_stored_once_listed_latest_first_and_lifted_once<S: Stores + ?Sized>(store: &S) {
    let fx = Fixture::new(store);
    let (alice, bob, carol) = (fx.user("alice"), fx.user("bob"), fx.user("carol"));
    let first = fx.now();
    assert!(store.block(alice, bob, first).unwrap());
    assert!(!store.block(alice, bob, fx.now()).unwrap());
    let second = first + Duration::seconds(1);
    assert!(store.block(alice, carol, second).unwrap());
    assert!(store.block(carol, alice, fx.now()).unwrap());
    let listed: Vec<_> = store
        .blocked_by(alice)
        .unwrap()
        .into_iter()
        .map(|b| (b.user_id, b.blocked_at))
        .collect();
    assert_eq!(listed, [(carol, second), (bob, first)]);
    assert!(store.blocked_by(bob).unwrap().is_empty());
    assert!(store.unblock(alice, bob).unwrap());
    assert!(!store.unblock(alice, bob).unwrap());
    assert!(!store.unblock(bob, alice).unwrap());
    let listed: Vec<_> = store
        .blocked_by(alice)
        .unwrap()
        .into_iter()
        .map(|b| b.user_id)
        .collect();
    assert_eq!(listed, [carol]);
}

/// `blockers_of` names exactly those of `among` who blocked the user, in one direction only.
pub fn blockers_of_names_only_those_among_who_blocked_the_user<S: Stores + ?Sized>(store: &S) {
    let fx = Fixture::new(store);
    let (alice, bob, carol, dave) = (
        fx.user("alice"),
        fx.user("bob"),
        fx.user("carol"),
        fx.user("dave"),
    );
    store.block(alice, dave, fx.now()).unwrap();
    store.block(carol, dave, fx.now()).unwrap();
    store.block(dave, bob, fx.now()).unwrap();
    let found = store.blockers_of(dave, &[alice, bob, carol]).unwrap();
    assert_eq!(sorted(&found), sorted(&[alice, carol]));
    assert_eq!(store.blockers_of(dave, &[bob]).unwrap(), []);
    assert_eq!(store.blockers_of(bob, &[dave, alice]).unwrap(), [dave]);
    assert_eq!(store.blockers_of(dave, &[]).unwrap(), []);
}

/// A direct message from a user the other member has blocked is refused as it is stored
/// (the blocker may still write), a group message is not, and lifting the block lets it
/// through: also for a conversation the store has appended to before the block.
pub fn a_direct_message_from_a_blocked_sender_is_refused_and_nothing_is_stored<
    S: Stores + ?Sized,
>(
    store: &S,
) {
    let fx = Fixture::new(store);
    let (alice, bob, carol) = (fx.user("alice"), fx.user("bob"), fx.user("carol"));
    let direct = fx.direct(alice, bob);
    let group = fx
        .create(ConversationKind::Group, &[carol, alice, bob])
        .unwrap();
    fx.send(direct, bob, "before");
    fx.send(group, bob, "before");
    store.block(alice, bob, fx.now()).unwrap();
    let before = store.latest_seq().unwrap();
    let refused = fx.append(&fx.message(direct, bob, "after"));
    assert!(matches!(refused, Err(StoreError::Blocked)), "{refused:?}");
    assert_eq!(store.latest_seq().unwrap(), before, "nothing was stored");
    fx.send(direct, alice, "the blocker still writes");
    fx.send(group, bob, "groups are not affected");
    store.unblock(alice, bob).unwrap();
    fx.send(direct, bob, "after the block is lifted");
}

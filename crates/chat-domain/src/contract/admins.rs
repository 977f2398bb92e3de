//! The rules of [`AdminStore`](crate::ports::AdminStore).

use crate::StoreError;
use crate::UserId;
use crate::admin::AuditEntry;
use crate::contract::{Fixture, Stores};
use crate::ports::UserStore;

/// Granting and revoking say whether they changed anything, and a missing user is missing.
pub fn admin_is_granted_and_revoked_once_and_a_missing_user_is_missing<S: Stores + ?Sized>(
    store: &S,
) {
    let fx = Fixture::new(store);
    let (alice, bob) = (fx.user("alice"), fx.user("bob"));
    assert!(!store.is_admin(alice).unwrap());
    assert!(store.set_admin(alice, true).unwrap());
    assert!(!store.set_admin(alice, true).unwrap());
    assert!(store.is_admin(alice).unwrap());
    assert!(!store.is_admin(bob).unwrap());
    assert!(!store.set_admin(bob, false).unwrap());
    assert!(store.set_admin(alice, false).unwrap());
    assert!(!store.is_admin(alice).unwrap());
    assert!(matches!(
        store.set_admin(UserId::new(), true),
        Err(StoreError::Missing)
    ));
}

/// Entries read back as written, with increasing ids, newest first, paged by id.
pub fn the_audit_log_reads_back_newest_first_and_pages_by_id<S: Stores + ?Sized>(store: &S) {
    let fx = Fixture::new(store);
    let alice = fx.user("alice");
    let mut written = Vec::new();
    for (actor, action) in [
        (None, "admin.grant"),
        (Some(alice), "user.deactivate"),
        (Some(alice), "report.resolve"),
    ] {
        written.push(
            store
                .record(&AuditEntry {
                    actor,
                    action,
                    target: format!("target of {action}"),
                    detail: "a note".into(),
                    at: fx.now(),
                })
                .unwrap(),
        );
    }
    assert!(written.windows(2).all(|w| w[0].id < w[1].id));
    let log = store.audit_log(None, 10).unwrap();
    let newest_first: Vec<_> = written.iter().rev().cloned().collect();
    assert_eq!(log, newest_first);
    assert_eq!(log[2].actor, None);
    assert_eq!(log[0].action, "report.resolve");
    assert_eq!(store.audit_log(None, 2).unwrap(), newest_first[..2]);
    assert_eq!(
        store.audit_log(Some(written[1].id), 10).unwrap(),
        [written[0].clone()]
    );
    assert_eq!(store.audit_log(Some(written[0].id), 10).unwrap(), []);
}

/// Reactivating makes a deactivated account active again without lowering its token
/// generation; an active one is left as it is; a missing one is missing.
pub fn reactivation_keeps_the_token_generation_and_a_missing_user_is_missing<S: Stores + ?Sized>(
    store: &S,
) {
    let fx = Fixture::new(store);
    let alice = fx.user("alice");
    let (active, changed) = store.reactivate(alice, fx.now()).unwrap();
    assert!(active.is_active && !changed);
    let deactivated = store.deactivate(alice, fx.now()).unwrap();
    let at = fx.now();
    let (again, changed) = store.reactivate(alice, at).unwrap();
    assert!(again.is_active && changed);
    assert_eq!(again.token_generation, deactivated.token_generation);
    assert_eq!(again.updated_at, at);
    assert_eq!(UserStore::find(store, alice).unwrap().unwrap(), again);
    assert!(matches!(
        store.reactivate(UserId::new(), fx.now()),
        Err(StoreError::Missing)
    ));
}

/// A server admin's delete ([`MessageStore::moderate_delete`]) needs no membership, purges
/// as a member's delete does, calls back once, and a missing message is missing.
///
/// [`MessageStore::moderate_delete`]: crate::ports::MessageStore::moderate_delete
pub fn a_moderated_delete_needs_no_membership_and_purges_as_a_delete_does<S: Stores + ?Sized>(
    store: &S,
) {
    let fx = Fixture::new(store);
    let (alice, bob, root) = (fx.user("alice"), fx.user("bob"), fx.user("root"));
    let direct = fx.direct(alice, bob);
    let message = fx.send(direct, bob, "offensive");
    let at = fx.now();
    assert!(matches!(
        store.delete(message.id, root, at, &mut |_| {}),
        Err(StoreError::Missing)
    ));
    let mut heard = 0;
    let changed = store
        .moderate_delete(message.id, root, at, &mut |_| heard += 1)
        .unwrap();
    assert!(changed.changed);
    assert_eq!(heard, 1);
    assert_eq!(changed.message.content, None);
    assert_eq!(changed.members.len(), 2);
    let stored = crate::ports::MessageStore::find(store, message.id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.content, None);
    let deletion = stored.deletion.unwrap();
    assert_eq!((deletion.by, deletion.at), (root, at));
    let again = store
        .moderate_delete(message.id, root, fx.now(), &mut |_| heard += 1)
        .unwrap();
    assert!(!again.changed);
    assert_eq!(heard, 1);
    assert!(matches!(
        store.moderate_delete(crate::MessageId::new(), root, fx.now(), &mut |_| {}),
        Err(StoreError::Missing)
    ));
}

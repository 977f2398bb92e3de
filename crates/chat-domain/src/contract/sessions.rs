//! The rules of [`SessionStore`](crate::ports::SessionStore).

use chrono::{DateTime, Duration, Utc};

use crate::contract::{Fixture, Stores, sorted};
use crate::session::{NewSession, RefreshHash, Rotation, Session};
use crate::{SessionId, UserId};

fn hash(text: &str) -> RefreshHash {
    RefreshHash(format!("{text:0>64}"))
}

/// Stores a live session of `user`, created at `at`, whose refresh token `refresh` expires
/// `lasts` later.
fn open<S: Stores + ?Sized>(
    fixture: &Fixture<'_, S>,
    user: UserId,
    refresh: &str,
    at: DateTime<Utc>,
    lasts: Duration,
) -> Session {
    let session = Session {
        id: SessionId::new(),
        user_id: user,
        device: Some("Alice's phone".into()),
        client_address: Some("192.0.2.1".into()),
        created_at: at,
        last_used_at: at,
        expires_at: at + lasts,
        generation: 3,
        revoked: false,
    };
    fixture
        .store
        .open_session(&NewSession {
            session: session.clone(),
            refresh: hash(refresh),
        })
        .expect("a session is stored");
    session
}

fn find<S: Stores + ?Sized>(store: &S, id: SessionId) -> Option<Session> {
    store.find_session(id).unwrap()
}

/// A session reads back as created; a user's list holds only their own live, unexpired
/// sessions, most recently used first.
pub fn a_session_reads_back_as_created_and_lists_only_the_users_live_ones<S: Stores + ?Sized>(
    store: &S,
) {
    let fixture = Fixture::new(store);
    let (alice, bob) = (fixture.user("alice"), fixture.user("bob"));
    let first = open(&fixture, alice, "a1", fixture.now(), Duration::days(60));
    let mut anonymous = open(&fixture, alice, "a2", fixture.now(), Duration::days(60));
    let ended = open(&fixture, alice, "a3", fixture.now(), Duration::days(60));
    let bobs = open(&fixture, bob, "b1", fixture.now(), Duration::days(60));
    assert_eq!(find(store, first.id), Some(first.clone()));
    assert!(store.end_session(alice, ended.id).unwrap());
    let now = fixture.now();
    anonymous = match store
        .rotate(
            anonymous.id,
            &hash("a2"),
            &hash("a2'"),
            now,
            now + Duration::days(60),
        )
        .unwrap()
    {
        Rotation::Rotated(session) => session,
        other => panic!("expected a rotation, got {other:?}"),
    };
    let last_expiry = anonymous.expires_at;
    let listed = store.sessions_of(alice, fixture.now()).unwrap();
    assert_eq!(listed, [anonymous, first.clone()]);
    assert_eq!(store.sessions_of(bob, fixture.now()).unwrap(), [bobs]);
    assert_eq!(
        store
            .sessions_of(alice, first.expires_at + Duration::milliseconds(1))
            .unwrap()
            .len(),
        1,
        "the session rotated since lasts longer"
    );
    assert!(
        store
            .sessions_of(alice, last_expiry + Duration::milliseconds(1))
            .unwrap()
            .is_empty(),
        "expired sessions are not listed"
    );
    assert!(find(store, SessionId::new()).is_none());
}

/// The current hash rotates the session on (once); any other hash of a live session ends it.
pub fn a_refresh_hash_rotates_once_and_an_old_one_ends_the_session<S: Stores + ?Sized>(store: &S) {
    let fixture = Fixture::new(store);
    let alice = fixture.user("alice");
    let session = open(&fixture, alice, "r1", fixture.now(), Duration::days(1));
    let now = fixture.now();
    let later = now + Duration::days(60);
    let Rotation::Rotated(rotated) = store
        .rotate(session.id, &hash("r1"), &hash("r2"), now, later)
        .unwrap()
    else {
        panic!("the current hash rotates");
    };
    assert_eq!(rotated.last_used_at, now);
    assert_eq!(rotated.expires_at, later);
    assert_eq!(rotated.created_at, session.created_at);
    assert!(!rotated.revoked);
    let now = fixture.now();
    let Rotation::Rotated(_) = store
        .rotate(session.id, &hash("r2"), &hash("r3"), now, later)
        .unwrap()
    else {
        panic!("the next hash rotates in turn");
    };
    // r1 is spent: presenting it again is reuse, and ends the whole session.
    match store
        .rotate(session.id, &hash("r1"), &hash("r4"), fixture.now(), later)
        .unwrap()
    {
        Rotation::Reused(before) => assert_eq!(before.id, session.id),
        other => panic!("expected reuse, got {other:?}"),
    }
    assert!(find(store, session.id).unwrap().revoked);
    assert_eq!(
        store
            .rotate(session.id, &hash("r3"), &hash("r5"), fixture.now(), later)
            .unwrap(),
        Rotation::Unknown,
        "an ended session rotates no more"
    );
    assert_eq!(
        store
            .rotate(
                SessionId::new(),
                &hash("r3"),
                &hash("r5"),
                fixture.now(),
                later
            )
            .unwrap(),
        Rotation::Unknown
    );
}

/// An expired session neither rotates nor is ended by a wrong hash.
pub fn an_expired_session_does_not_rotate<S: Stores + ?Sized>(store: &S) {
    let fixture = Fixture::new(store);
    let alice = fixture.user("alice");
    let session = open(
        &fixture,
        alice,
        "r1",
        fixture.now(),
        Duration::milliseconds(5),
    );
    let after = session.expires_at + Duration::milliseconds(1);
    for presented in ["r1", "other"] {
        assert_eq!(
            store
                .rotate(
                    session.id,
                    &hash(presented),
                    &hash("r2"),
                    after,
                    after + Duration::days(1)
                )
                .unwrap(),
            Rotation::Unknown
        );
    }
    assert!(!find(store, session.id).unwrap().revoked);
}

/// Of concurrent rotations with the same hash, exactly one goes through.
pub fn concurrent_rotations_of_one_hash_let_exactly_one_through<S: Stores + ?Sized>(store: &S) {
    let fixture = Fixture::new(store);
    let alice = fixture.user("alice");
    let session = open(&fixture, alice, "r1", fixture.now(), Duration::days(1));
    let now = fixture.now();
    let outcomes: Vec<Rotation> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let next = hash(&format!("next{i}"));
                let id = session.id;
                scope.spawn(move || {
                    store
                        .rotate(id, &hash("r1"), &next, now, now + Duration::days(1))
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, Rotation::Rotated(_)))
        .count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    // The others came after the rotation: the first of them is reuse and ends the session.
    assert!(
        outcomes.iter().any(|o| matches!(o, Rotation::Reused(_))),
        "{outcomes:?}"
    );
    assert!(find(store, session.id).unwrap().revoked);
}

/// A user ends only their own live sessions; ending all spares the one named.
pub fn a_user_ends_only_their_own_sessions_and_all_but_one<S: Stores + ?Sized>(store: &S) {
    let fixture = Fixture::new(store);
    let (alice, bob) = (fixture.user("alice"), fixture.user("bob"));
    let phone = open(&fixture, alice, "p", fixture.now(), Duration::days(1));
    let laptop = open(&fixture, alice, "l", fixture.now(), Duration::days(1));
    let tablet = open(&fixture, alice, "t", fixture.now(), Duration::days(1));
    let bobs = open(&fixture, bob, "b", fixture.now(), Duration::days(1));
    assert!(
        !store.end_session(bob, phone.id).unwrap(),
        "not bob's to end"
    );
    assert!(!find(store, phone.id).unwrap().revoked);
    assert!(store.end_session(alice, phone.id).unwrap());
    assert!(
        !store.end_session(alice, phone.id).unwrap(),
        "already ended"
    );
    assert!(!store.end_session(alice, SessionId::new()).unwrap());
    let ended = store.end_sessions(alice, Some(laptop.id)).unwrap();
    assert_eq!(ended, [tablet.id]);
    assert!(find(store, tablet.id).unwrap().revoked);
    assert!(!find(store, laptop.id).unwrap().revoked);
    assert!(!find(store, bobs.id).unwrap().revoked);
    assert_eq!(
        sorted(&store.end_sessions(alice, None).unwrap()),
        [laptop.id]
    );
    assert!(store.sessions_of(alice, fixture.now()).unwrap().is_empty());
}

/// Opening a session deletes the sessions that expired before it: rows do not pile up.
pub fn opening_a_session_deletes_expired_ones<S: Stores + ?Sized>(store: &S) {
    let fixture = Fixture::new(store);
    let alice = fixture.user("alice");
    let old = open(
        &fixture,
        alice,
        "o",
        fixture.now(),
        Duration::milliseconds(1),
    );
    let live = open(&fixture, alice, "l", fixture.now(), Duration::days(1));
    let _ = fixture.now();
    open(&fixture, alice, "n", fixture.now(), Duration::days(1));
    assert!(find(store, old.id).is_none());
    assert!(find(store, live.id).is_some());
}

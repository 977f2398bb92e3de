//! The rules of [`UserStore`]: unique names ignoring case, lookups, search, profile changes
//! and the token generation.

use crate::contract::{Fixture, Stores, sorted};
use crate::paging::Page;
use crate::ports::UserStore;
use crate::user::{Email, PasswordHash, ProfileUpdate, UserQuery};
use crate::{StoreError, UserId};

/// A taken username (ignoring case) or email (ignoring case) is a conflict that names the
/// field, and `taken` reports the same before any insert is tried.
pub fn usernames_and_emails_are_unique_ignoring_case_and_a_conflict_names_the_field<
    S: Stores + ?Sized,
>(
    store: &S,
) {
    let f = Fixture::new(store);
    f.user("alice");
    let shouting = f.new_user(UserId::new(), "ALICE", "other@example.com", None);
    assert!(matches!(
        store.insert(&shouting),
        Err(StoreError::Conflict { field: "username" })
    ));
    let same_email = f.new_user(UserId::new(), "bob", "ALICE@Example.com", None);
    assert!(matches!(
        store.insert(&same_email),
        Err(StoreError::Conflict { field: "email" })
    ));
    assert!(
        UserStore::find(store, same_email.id).unwrap().is_none(),
        "a refused account is not stored"
    );
    assert_eq!(store.taken("Alice", "x@y.z").unwrap(), (true, false));
    assert_eq!(
        store.taken("bob", "Alice@EXAMPLE.com").unwrap(),
        (false, true)
    );
    assert_eq!(
        store.taken("bob", "bob@example.com").unwrap(),
        (false, false)
    );
}

/// `find`, `find_many` and `password_hash` return what was written; `find_credentials` finds
/// an account by its username or its email, ignoring case.
pub fn a_user_reads_back_as_written_and_is_found_by_username_or_email_ignoring_case<
    S: Stores + ?Sized,
>(
    store: &S,
) {
    let f = Fixture::new(store);
    let new = f.new_user(
        UserId::new(),
        "alice",
        "alice@example.com",
        Some("Alice Liddell"),
    );
    let stored = store.insert(&new).unwrap();
    assert_eq!(
        (stored.id, stored.username.as_str(), stored.email.as_str()),
        (new.id, "alice", "alice@example.com")
    );
    assert_eq!(stored.full_name.as_deref(), Some("Alice Liddell"));
    assert!(stored.is_active);
    assert_eq!(stored.token_generation, 0);
    assert_eq!(stored.created_at, new.created_at);
    assert_eq!(
        UserStore::find(store, new.id).unwrap(),
        Some(stored.clone())
    );
    assert_eq!(UserStore::find(store, UserId::new()).unwrap(), None);

    let bob = f.user("bob");
    let mut found: Vec<UserId> = store
        .find_many(&[bob, UserId::new(), new.id])
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    found.sort();
    assert_eq!(found, sorted(&[bob, new.id]));
    assert!(store.find_many(&[]).unwrap().is_empty());

    for login in ["alice", "ALICE", "Alice@Example.COM"] {
        let (user, hash) = store
            .find_credentials(login)
            .unwrap()
            .unwrap_or_else(|| panic!("{login} finds alice"));
        assert_eq!(user, stored, "{login}");
        assert_eq!(hash, PasswordHash("hash of alice".into()), "{login}");
    }
    assert!(store.find_credentials("nobody").unwrap().is_none());
    assert!(store.find_credentials("alic").unwrap().is_none());
    assert_eq!(
        store.password_hash(new.id).unwrap(),
        Some(PasswordHash("hash of alice".into()))
    );
    assert_eq!(store.password_hash(UserId::new()).unwrap(), None);
}

/// The usernames a search for `text` finds, in order.
fn usernames_found<S: Stores + ?Sized>(store: &S, text: Option<&str>, page: Page) -> Vec<String> {
    store
        .search(&UserQuery {
            text: text.map(str::to_owned),
            page,
        })
        .unwrap()
        .into_iter()
        .map(|u| u.username.as_str().to_owned())
        .collect()
}

/// Search finds a case-insensitive substring of the username or the full name, taken
/// literally (`%` and `_` are no wildcards), ordered by username and paged.
pub fn search_matches_substrings_of_username_or_full_name_literally<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    f.user_with("malik", "m@example.com", Some("Malik Grey"));
    f.user_with("bob", "b@example.com", Some("Robert Lisle"));
    f.user_with("alice", "a@example.com", None);
    f.user_with("a_b", "ab@example.com", Some("100% real"));
    let search = |text: &str| usernames_found(store, Some(text), Page::default());
    // "Robert Lisle" has a word starting with "li"; alice and malik only hold it.
    assert_eq!(search("LI"), ["bob", "alice", "malik"]);
    assert_eq!(search("grey"), ["malik"]);
    assert_eq!(search("_"), ["a_b"]);
    assert_eq!(search("%"), ["a_b"]);
    assert_eq!(search("0% r"), ["a_b"]);
    assert_eq!(search("a%e"), Vec::<String>::new());
    assert_eq!(search("zzz"), Vec::<String>::new());
    let everyone = ["a_b", "alice", "bob", "malik"];
    assert_eq!(usernames_found(store, None, Page::default()), everyone);
    assert_eq!(
        usernames_found(
            store,
            Some("li"),
            Page {
                limit: 1,
                offset: 1
            }
        ),
        ["alice"]
    );
    assert_eq!(
        usernames_found(
            store,
            None,
            Page {
                limit: 2,
                offset: 3
            }
        ),
        ["malik"]
    );
}

/// The best match comes first: the username itself (or the whole email address), then
/// usernames starting with the text, then full names with a word starting with it, then the
/// rest; by username within each.
pub fn search_ranks_exact_username_then_prefix_then_full_name_words<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    f.user_with("joanne", "j@example.com", None);
    f.user_with("annabel", "annabel@example.com", None);
    f.user_with("bob", "b@example.com", Some("Mary Ann Smith"));
    f.user_with("carl", "ann@example.com", Some("Carl Mann"));
    f.user_with("ann", "x@example.com", None);
    f.user_with("anna", "y@example.com", Some("Zed"));
    f.user_with("dana", "d@example.com", Some("Annika Dane"));
    let search = |text: &str| usernames_found(store, Some(text), Page::default());
    assert_eq!(
        search("ANN"),
        ["ann", "anna", "annabel", "bob", "dana", "carl", "joanne"]
    );
    assert_eq!(search("ann@example.com"), ["carl"]);
    assert_eq!(search("x@example.com"), ["ann"]);
    assert_eq!(
        search("an"),
        ["ann", "anna", "annabel", "bob", "dana", "carl", "joanne"]
    );
}

/// An email address is found only whole (ignoring case), never by a part of it.
pub fn search_finds_an_email_only_by_the_whole_address<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    f.user("alice");
    f.user("bob");
    let search = |text: &str| usernames_found(store, Some(text), Page::default());
    assert_eq!(search("Bob@Example.COM"), ["bob"]);
    assert_eq!(search("@example.com"), Vec::<String>::new());
    assert_eq!(search("bob@example"), Vec::<String>::new());
    assert_eq!(search("example.com"), Vec::<String>::new());
}

/// An update changes the fields it names and keeps the rest; an email another account holds
/// (ignoring case) is a conflict naming `email` and changes nothing.
pub fn an_update_changes_only_what_it_names_and_a_taken_email_is_a_conflict<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let alice = f.user_with("alice", "alice@example.com", Some("Alice"));
    f.user("bob");
    let at = f.now();
    let bio = ProfileUpdate {
        bio: Some(Some("hi".into())),
        avatar_url: Some(Some("https://example.com/a.png".into())),
        ..Default::default()
    };
    let updated = store.update(alice, &bio, at).unwrap();
    assert_eq!(updated.bio.as_deref(), Some("hi"));
    assert_eq!(
        updated.avatar_url.as_deref(),
        Some("https://example.com/a.png")
    );
    assert_eq!(updated.full_name.as_deref(), Some("Alice"));
    assert_eq!(updated.email.as_str(), "alice@example.com");
    assert_eq!(updated.updated_at, at);
    assert_eq!(
        UserStore::find(store, alice).unwrap(),
        Some(updated.clone())
    );

    let cleared = ProfileUpdate {
        full_name: Some(None),
        email: Some(Email::parse("new@example.com").unwrap()),
        ..Default::default()
    };
    let updated = store.update(alice, &cleared, f.now()).unwrap();
    assert_eq!(updated.full_name, None);
    assert_eq!(updated.email.as_str(), "new@example.com");
    assert_eq!(updated.bio.as_deref(), Some("hi"));
    assert!(store.find_credentials("new@example.com").unwrap().is_some());
    assert!(
        store
            .find_credentials("alice@example.com")
            .unwrap()
            .is_none()
    );

    let taken = ProfileUpdate {
        email: Some(Email::parse("BOB@example.com").unwrap()),
        bio: Some(None),
        ..Default::default()
    };
    assert!(matches!(
        store.update(alice, &taken, f.now()),
        Err(StoreError::Conflict { field: "email" })
    ));
    assert_eq!(
        UserStore::find(store, alice).unwrap(),
        Some(updated),
        "a refused update changes nothing"
    );
}

/// A new password hash raises the token generation (ending every token issued before); other
/// changes do not; deactivation raises it too and marks the account inactive.
pub fn a_new_password_or_deactivation_raises_the_token_generation<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let alice = f.user("alice");
    let bio_only = ProfileUpdate {
        bio: Some(Some("hi".into())),
        ..Default::default()
    };
    assert_eq!(
        store
            .update(alice, &bio_only, f.now())
            .unwrap()
            .token_generation,
        0
    );
    let password = ProfileUpdate {
        password_hash: Some(PasswordHash("new hash".into())),
        ..Default::default()
    };
    assert_eq!(
        store
            .update(alice, &password, f.now())
            .unwrap()
            .token_generation,
        1
    );
    assert_eq!(
        store.password_hash(alice).unwrap(),
        Some(PasswordHash("new hash".into()))
    );
    let at = f.now();
    let deactivated = store.deactivate(alice, at).unwrap();
    assert!(!deactivated.is_active);
    assert_eq!(deactivated.token_generation, 2);
    assert_eq!(deactivated.updated_at, at);
    assert_eq!(UserStore::find(store, alice).unwrap(), Some(deactivated));
}

/// Updating or deactivating an account that does not exist is `Missing`.
pub fn updating_or_deactivating_a_missing_user_is_missing<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    assert!(matches!(
        store.update(UserId::new(), &ProfileUpdate::default(), f.now()),
        Err(StoreError::Missing)
    ));
    assert!(matches!(
        store.deactivate(UserId::new(), f.now()),
        Err(StoreError::Missing)
    ));
}

//! The rules of [`ConversationStore`]: one direct conversation per pair, members and their
//! order, the member cap, removal, roles and renaming.

use crate::ConversationId;
use crate::StoreError;
use crate::UserId;
use crate::contract::{Fixture, Stores, everything, sorted};
use crate::conversation::{ConversationKind, ConversationName, Member, NewConversation, Role};
use crate::message::Seq;
use crate::paging::Page;
use crate::ports::ConversationStore;

/// A conversation reads back as it was created; its members start with the roles given, the
/// creation time as their joining time, and nothing read.
pub fn a_conversation_reads_back_as_created_with_its_members<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, eve) = (f.user("alice"), f.user("bob"), f.user("eve"));
    let conversation = f.conversation(ConversationKind::Group, a);
    store
        .create(&NewConversation {
            conversation: conversation.clone(),
            members: vec![(a, Role::Owner), (b, Role::Admin)],
        })
        .unwrap();
    let id = conversation.id;
    assert_eq!(
        ConversationStore::find(store, id).unwrap(),
        Some(conversation.clone())
    );
    assert_eq!(
        ConversationStore::find(store, ConversationId::new()).unwrap(),
        None
    );
    let member = |user, role| Member {
        user_id: user,
        role,
        joined_at: conversation.created_at,
        last_read_seq: Seq::ZERO,
        last_delivered_seq: Seq::ZERO,
    };
    let mut members = store.members(id).unwrap();
    members.sort_by_key(|m| m.user_id);
    let mut expected = vec![member(a, Role::Owner), member(b, Role::Admin)];
    expected.sort_by_key(|m| m.user_id);
    assert_eq!(members, expected);
    assert_eq!(
        store.membership(id, b).unwrap(),
        Some(member(b, Role::Admin))
    );
    assert_eq!(store.membership(id, eve).unwrap(), None);
    assert!(store.members(ConversationId::new()).unwrap().is_empty());
    // A group of two is no direct conversation.
    assert_eq!(store.find_direct(a, b).unwrap(), None);
}

/// A second direct conversation for the same pair, whichever of the two starts it, is a
/// conflict and stores nothing; `find_direct` finds the pair's one in either order.
pub fn a_pair_can_have_only_one_direct_conversation_whichever_order<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let first = f.direct(a, b);
    let again = f.conversation(ConversationKind::Direct, b);
    let refused = store.create(&NewConversation {
        conversation: again.clone(),
        members: vec![(b, Role::Member), (a, Role::Member)],
    });
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "a second direct conversation was {refused:?}"
    );
    assert_eq!(ConversationStore::find(store, again.id).unwrap(), None);
    assert!(store.members(again.id).unwrap().is_empty());
    assert_eq!(store.find_direct(b, a).unwrap().unwrap().id, first);
    assert_eq!(store.find_direct(a, b).unwrap().unwrap().id, first);
    assert_eq!(store.find_direct(a, c).unwrap(), None);
    // Other pairs, and groups of the same two, are unaffected.
    f.direct(c, a);
    f.group(&[a, b]);
    assert_eq!(store.find_direct(a, b).unwrap().unwrap().id, first);
}

/// `members` lists a conversation's members in the order they joined.
pub fn members_are_listed_in_the_order_they_joined<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a]);
    let (b_joined, c_joined) = (f.now(), f.now());
    store
        .add_members(g, &[b], Role::Admin, 10, b_joined)
        .unwrap();
    store
        .add_members(g, &[c], Role::Member, 10, c_joined)
        .unwrap();
    let members = store.members(g).unwrap();
    let ids: Vec<UserId> = members.iter().map(|m| m.user_id).collect();
    assert_eq!(ids, [a, b, c]);
    assert_eq!(
        (members[1].role, members[1].joined_at),
        (Role::Admin, b_joined)
    );
    assert_eq!(
        (members[2].role, members[2].joined_at),
        (Role::Member, c_joined)
    );
}

/// `members_of` answers one list per id asked, in the order asked, each as `members` would,
/// and an empty list for a conversation that does not exist.
pub fn members_of_several_conversations_come_back_grouped_in_the_order_asked<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let ab = f.direct(a, b);
    let abc = f.group(&[a, b, c]);
    let grouped = store
        .members_of(&[abc, ab, ConversationId::new(), abc])
        .unwrap();
    assert_eq!(grouped.len(), 4);
    let ids = |members: &Vec<Member>| -> Vec<UserId> {
        sorted(&members.iter().map(|m| m.user_id).collect::<Vec<_>>())
    };
    assert_eq!(ids(&grouped[0]), sorted(&[a, b, c]));
    assert_eq!(ids(&grouped[1]), sorted(&[a, b]));
    assert!(grouped[2].is_empty());
    assert_eq!(ids(&grouped[3]), sorted(&[a, b, c]));
    let by_user = |mut members: Vec<Member>| {
        members.sort_by_key(|m| m.user_id);
        members
    };
    assert_eq!(
        by_user(grouped[0].clone()),
        by_user(store.members(abc).unwrap())
    );
    assert!(store.members_of(&[]).unwrap().is_empty());
}

/// Adding members skips those already in and returns who was added; a change that would take
/// the conversation past `max_members` is a conflict on `members` and adds no one.
pub fn adding_members_skips_existing_ones_and_respects_the_cap<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c, d) = (
        f.user("alice"),
        f.user("bob"),
        f.user("carol"),
        f.user("dave"),
    );
    let g = f.group(&[a]);
    assert_eq!(
        store
            .add_members(g, &[a, b], Role::Member, 10, f.now())
            .unwrap()
            .0,
        vec![b]
    );
    assert!(matches!(
        store.add_members(g, &[c, d], Role::Member, 3, f.now()),
        Err(StoreError::Conflict { field: "members" })
    ));
    assert_eq!(
        store.members(g).unwrap().len(),
        2,
        "a refused add adds no one"
    );
    assert_eq!(store.membership(g, c).unwrap(), None);
    // Reaching the cap exactly is allowed; skipped members do not count towards it.
    assert_eq!(
        store
            .add_members(g, &[b, c], Role::Member, 3, f.now())
            .unwrap()
            .0,
        vec![c]
    );
    assert_eq!(
        store
            .add_members(g, &[a, b, c], Role::Member, 3, f.now())
            .unwrap(),
        (Vec::<UserId>::new(), None),
        "adding no one is no change"
    );
    assert_eq!(store.members(g).unwrap().len(), 3);
}

/// A removed member is no longer one: the conversation leaves their inbox, their catch-up and
/// their highest seq, and they can no longer send to it. Removing a non-member says so.
pub fn removing_a_member_hides_the_conversation_and_its_messages_from_them<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    f.send(g, a, "before");
    assert_eq!(store.since(b, Seq::ZERO, 10).unwrap().len(), 1);
    assert!(store.remove_member(g, b, f.now()).unwrap().is_some());
    assert_eq!(store.remove_member(g, b, f.now()).unwrap(), None);
    assert!(
        store
            .remove_member(ConversationId::new(), b, f.now())
            .unwrap()
            .is_none(),
        "no conversation, no member"
    );
    assert_eq!(store.membership(g, b).unwrap(), None);
    let ids: Vec<UserId> = store
        .members(g)
        .unwrap()
        .iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(ids, [a]);
    assert!(
        store
            .inbox(b, Page::default(), everything())
            .unwrap()
            .is_empty()
    );
    assert!(store.since(b, Seq::ZERO, 10).unwrap().is_empty());
    assert_eq!(store.last_seq_for(b).unwrap(), Seq::ZERO);
    assert!(store.unread_counts(b).unwrap().is_empty());
    assert!(matches!(
        f.append(&f.message(g, b, "late")),
        Err(StoreError::Missing)
    ));
    assert_eq!(
        store.inbox(a, Page::default(), everything()).unwrap().len(),
        1
    );
}

/// `set_role` changes a member's role and `with_role` finds the conversations where a user
/// holds a role; giving a role to a non-member is `Missing`.
pub fn roles_can_be_changed_and_found_by_role<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, eve) = (f.user("alice"), f.user("bob"), f.user("eve"));
    let owned_by_a = f.group(&[a, b]);
    let owned_by_b = f.group(&[b, a]);
    let direct = f.direct(a, b);
    let with_role = |user, role| sorted(&store.with_role(user, role).unwrap());
    assert_eq!(with_role(a, Role::Owner), [owned_by_a]);
    assert_eq!(with_role(b, Role::Owner), [owned_by_b]);
    assert_eq!(with_role(a, Role::Member), sorted(&[owned_by_b, direct]));
    assert!(with_role(a, Role::Admin).is_empty());
    assert!(with_role(eve, Role::Member).is_empty());

    store.set_role(owned_by_a, b, Role::Admin).unwrap();
    assert_eq!(
        store.membership(owned_by_a, b).unwrap().unwrap().role,
        Role::Admin
    );
    assert_eq!(with_role(b, Role::Admin), [owned_by_a]);
    assert_eq!(with_role(b, Role::Member), [direct]);
    assert!(matches!(
        store.set_role(owned_by_a, eve, Role::Owner),
        Err(StoreError::Missing)
    ));
    assert!(matches!(
        store.set_role(ConversationId::new(), a, Role::Owner),
        Err(StoreError::Missing)
    ));
    assert_eq!(store.membership(owned_by_a, eve).unwrap(), None);
}

/// Renaming sets the name and the update time and returns the conversation as it now is;
/// renaming a conversation that does not exist is `Missing`.
pub fn renaming_changes_the_name_and_a_missing_conversation_is_missing<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let a = f.user("alice");
    let g = f.group(&[a]);
    let name = ConversationName::parse("new name").unwrap();
    let at = f.now();
    let (renamed, _) = store.rename(g, &name, at).unwrap();
    assert_eq!(renamed.name, Some(name.clone()));
    assert_eq!(renamed.updated_at, at);
    assert_eq!(renamed.kind, ConversationKind::Group);
    assert_eq!(ConversationStore::find(store, g).unwrap(), Some(renamed));
    assert!(matches!(
        store.rename(ConversationId::new(), &name, f.now()),
        Err(StoreError::Missing)
    ));
}

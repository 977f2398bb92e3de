//! Blocking: a user shuts another out of reaching them (see [`crate::block`]). The list is
//! kept here; the rules that follow from it are checked where each thing is done: starting
//! a conversation and adding members in [`super::ConversationService`], sending into a direct
//! conversation by the store as the message is written ([`crate::StoreError::Blocked`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::ports::{BlockStore, Clock, UserStore};
use crate::user::User;
use crate::{DomainError, Resource, UserId};

use super::Ports;

/// A user someone has blocked, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedUser {
    pub user: User,
    pub blocked_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct BlockService {
    blocks: Arc<dyn BlockStore>,
    users: Arc<dyn UserStore>,
    clock: Arc<dyn Clock>,
}

impl BlockService {
    pub fn new(ports: &Ports) -> Self {
        Self {
            blocks: ports.blocks.clone(),
            users: ports.users.clone(),
            clock: ports.clock.clone(),
        }
    }

    /// `blocker` blocks `target`. Idempotent: returns whether this call made the block.
    /// Blocking yourself is [`DomainError::Unprocessable`]; a user who does not exist is
    /// [`DomainError::NotFound`].
    pub fn block(&self, blocker: UserId, target: UserId) -> Result<bool, DomainError> {
        self.check_target(blocker, target)?;
        Ok(self.blocks.block(blocker, target, self.clock.now())?)
    }

    /// Lifts a block. Idempotent: returns whether there was one. As [`Self::block`] for
    /// yourself or a missing user.
    pub fn unblock(&self, blocker: UserId, target: UserId) -> Result<bool, DomainError> {
        self.check_target(blocker, target)?;
        Ok(self.blocks.unblock(blocker, target)?)
    }

    /// The users `blocker` has blocked, the latest first.
    pub fn blocked(&self, blocker: UserId) -> Result<Vec<BlockedUser>, DomainError> {
        let blocks = self.blocks.blocked_by(blocker)?;
        let ids: Vec<UserId> = blocks.iter().map(|b| b.user_id).collect();
        let users = self.users.find_many(&ids)?;
        Ok(blocks
            .into_iter()
            .filter_map(|block| {
                let user = users.iter().find(|u| u.id == block.user_id)?.clone();
                Some(BlockedUser {
                    user,
                    blocked_at: block.blocked_at,
                })
            })
            .collect())
    }

    fn check_target(&self, blocker: UserId, target: UserId) -> Result<(), DomainError> {
        if blocker == target {
            return Err(DomainError::Unprocessable(
                "you cannot block yourself".into(),
            ));
        }
        if self.users.find(target)?.is_none() {
            return Err(DomainError::not_found(Resource::User, target));
        }
        Ok(())
    }
}

/// Refuses when any of `others` has blocked `actor`: the actor may not pull them into a
/// conversation.
pub(crate) fn refuse_if_blocked(
    blocks: &dyn BlockStore,
    actor: UserId,
    others: &[UserId],
) -> Result<(), DomainError> {
    if others.is_empty() || blocks.blockers_of(actor, others)?.is_empty() {
        Ok(())
    } else {
        Err(DomainError::Blocked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::World;
    use crate::ports::ConversationStore;
    use crate::service::{CreateConversation, SendMessage};

    fn hello() -> SendMessage {
        SendMessage {
            content: "hello".into(),
            ..Default::default()
        }
    }

    fn direct(participant: UserId) -> CreateConversation {
        CreateConversation {
            participant_ids: vec![participant],
            ..Default::default()
        }
    }

    #[test]
    fn blocking_and_unblocking_are_idempotent_and_listed_latest_first() {
        let world = World::new();
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        let blocks = &world.services.blocks;
        assert!(blocks.block(alice, bob).unwrap());
        assert!(!blocks.block(alice, bob).unwrap());
        assert!(blocks.block(alice, carol).unwrap());
        let listed: Vec<UserId> = blocks
            .blocked(alice)
            .unwrap()
            .iter()
            .map(|b| b.user.id)
            .collect();
        assert_eq!(listed, [carol, bob]);
        assert!(blocks.unblock(alice, bob).unwrap());
        assert!(!blocks.unblock(alice, bob).unwrap());
        let listed: Vec<UserId> = blocks
            .blocked(alice)
            .unwrap()
            .iter()
            .map(|b| b.user.id)
            .collect();
        assert_eq!(listed, [carol]);
        assert!(blocks.blocked(bob).unwrap().is_empty());
    }

    #[test]
    fn blocking_yourself_is_unprocessable_and_a_missing_user_is_not_found() {
        let world = World::new();
        let alice = world.user("alice");
        let blocks = &world.services.blocks;
        assert!(matches!(
            blocks.block(alice, alice),
            Err(DomainError::Unprocessable(_))
        ));
        assert!(matches!(
            blocks.unblock(alice, alice),
            Err(DomainError::Unprocessable(_))
        ));
        assert!(matches!(
            blocks.block(alice, UserId::new()),
            Err(DomainError::NotFound {
                resource: Resource::User,
                ..
            })
        ));
    }

    #[test]
    fn a_blocked_user_cannot_start_a_direct_chat_with_the_blocker_but_the_blocker_can() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        world.services.blocks.block(alice, bob).unwrap();
        let refused = world.services.conversations.create(bob, direct(alice));
        assert!(matches!(refused, Err(DomainError::Blocked)), "{refused:?}");
        let through_a_message = world.services.destination(bob, None, Some(alice), &hello());
        assert!(matches!(through_a_message, Err(DomainError::Blocked)));
        assert!(world.store.find_direct(alice, bob).unwrap().is_none());
        let (details, created) = world
            .services
            .conversations
            .create(alice, direct(bob))
            .unwrap();
        assert!(created);
        // The blocker may write; the blocked user may not answer.
        world
            .services
            .messages
            .send(alice, details.conversation.id, hello())
            .unwrap();
        let answer = world
            .services
            .messages
            .send(bob, details.conversation.id, hello());
        assert!(matches!(answer, Err(DomainError::Blocked)), "{answer:?}");
    }

    #[test]
    fn a_blocked_user_cannot_send_into_an_existing_direct_chat_until_unblocked() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let (details, _) = world
            .services
            .conversations
            .create(bob, direct(alice))
            .unwrap();
        let id = details.conversation.id;
        world.services.messages.send(bob, id, hello()).unwrap();
        world.services.blocks.block(alice, bob).unwrap();
        let before = world.store.message_count();
        let refused = world.services.messages.send(bob, id, hello());
        assert!(matches!(refused, Err(DomainError::Blocked)), "{refused:?}");
        let by_recipient = world
            .services
            .destination(bob, None, Some(alice), &hello())
            .and_then(|to| world.services.messages.send(bob, to, hello()));
        assert!(matches!(by_recipient, Err(DomainError::Blocked)));
        assert_eq!(world.store.message_count(), before);
        world.services.blocks.unblock(alice, bob).unwrap();
        world.services.messages.send(bob, id, hello()).unwrap();
    }

    #[test]
    fn a_blocked_user_cannot_put_the_blocker_in_a_group_but_shared_groups_still_carry_messages() {
        let world = World::new();
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        let (shared, _) = world
            .services
            .conversations
            .create(
                carol,
                CreateConversation {
                    participant_ids: vec![alice, bob],
                    name: Some("shared".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        let (own, _) = world
            .services
            .conversations
            .create(
                bob,
                CreateConversation {
                    participant_ids: vec![carol],
                    name: Some("bob's".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        world.services.blocks.block(alice, bob).unwrap();
        let new_group = world.services.conversations.create(
            bob,
            CreateConversation {
                participant_ids: vec![alice, carol],
                name: Some("new".into()),
                ..Default::default()
            },
        );
        assert!(matches!(new_group, Err(DomainError::Blocked)));
        let added = world
            .services
            .conversations
            .add_members(bob, own.conversation.id, vec![alice]);
        assert!(matches!(added, Err(DomainError::Blocked)));
        assert!(
            world
                .store
                .membership(own.conversation.id, alice)
                .unwrap()
                .is_none()
        );
        // Others may still add the blocker; in a shared group the blocked user still writes.
        let (carols, _) = world
            .services
            .conversations
            .create(
                carol,
                CreateConversation {
                    participant_ids: vec![bob],
                    name: Some("carol's".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        world
            .services
            .conversations
            .add_members(carol, carols.conversation.id, vec![alice])
            .unwrap();
        world
            .services
            .messages
            .send(bob, shared.conversation.id, hello())
            .unwrap();
    }
}

//! Reacting to messages with an emoji, and pinning messages in their conversation.
//!
//! Both are marks members put on a message after it was sent: each change takes a seq (the
//! message's `change_seq`) so that it has its place in the one feed, and is announced to every
//! member of the conversation as it stands when the change commits.

use std::sync::Arc;

use crate::conversation::{ConversationKind, Role};
use crate::events::{DomainEvent, PinChanged, ReactionChanged};
use crate::limits::Limits;
use crate::message::{Emoji, Marked, MessageView};
use crate::ports::{Clock, ConversationStore, EventPublisher, MessageStore};
use crate::{ConversationId, DomainError, MessageId, Resource, StoreError, UserId};

use super::{Ports, Throttle, require_member, view_message};

#[derive(Clone)]
pub struct ReactionService {
    throttle: Throttle,
    limits: Limits,
    conversations: Arc<dyn ConversationStore>,
    messages: Arc<dyn MessageStore>,
    events: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
}

impl ReactionService {
    pub fn new(ports: &Ports) -> Self {
        Self {
            throttle: Throttle::new(ports),
            limits: ports.limits,
            conversations: ports.conversations.clone(),
            messages: ports.messages.clone(),
            events: ports.events.clone(),
            clock: ports.clock.clone(),
        }
    }

    /// Adds the user's reaction `emoji` (one emoji, else a validation error on `emoji`) to a
    /// message of one of their conversations and announces it. Idempotent: a reaction the user
    /// already has comes back without a change and announces nothing. Returns the message
    /// as it now stands, from the user's side. A message the user cannot see is
    /// not found; a deleted one is [`DomainError::MessageDeleted`]; a new emoji past the cap
    /// of distinct emoji per message is `too_many_reactions`.
    pub fn react(
        &self,
        user: UserId,
        message_id: MessageId,
        emoji: &str,
    ) -> Result<(MessageView, Option<ReactionChanged>), DomainError> {
        let emoji = Emoji::parse(emoji).map_err(|e| DomainError::Validation(vec![e]))?;
        self.visible(user, message_id)?;
        self.take_budget(user)?;
        let at = self.clock.now();
        let cap = self.limits.max_reactions_per_message;
        let marked = self
            .messages
            .react(message_id, user, &emoji, cap, at)
            .map_err(|e| not_found_if_missing(e, message_id))?;
        let (change, audience) = match marked {
            Marked::Changed {
                seq,
                count,
                conversation_id,
                audience,
            } => (
                ReactionChanged {
                    seq,
                    message_id,
                    conversation_id,
                    emoji,
                    user_id: user,
                    count,
                },
                audience,
            ),
            Marked::Unchanged => return Ok((self.view(user, message_id)?, None)),
            Marked::MessageDeleted => return Err(DomainError::MessageDeleted(message_id)),
            Marked::OverCap => {
                return Err(DomainError::CapReached {
                    code: "too_many_reactions",
                    detail: format!("a message takes at most {cap} different emoji"),
                });
            }
        };
        self.events.publish(DomainEvent::ReactionAdded {
            change: change.clone(),
            audience,
            at,
        });
        Ok((self.view(user, message_id)?, Some(change)))
    }

    /// Takes the user's reaction `emoji` back and announces it. Idempotent: no such reaction
    /// comes back without a change and announces nothing. A message the user cannot see is not found.
    pub fn unreact(
        &self,
        user: UserId,
        message_id: MessageId,
        emoji: &str,
    ) -> Result<(MessageView, Option<ReactionChanged>), DomainError> {
        let emoji = Emoji::parse(emoji).map_err(|e| DomainError::Validation(vec![e]))?;
        self.visible(user, message_id)?;
        self.take_budget(user)?;
        let at = self.clock.now();
        let marked = self
            .messages
            .unreact(message_id, user, &emoji)
            .map_err(|e| not_found_if_missing(e, message_id))?;
        let Marked::Changed {
            seq,
            count,
            conversation_id,
            audience,
        } = marked
        else {
            return Ok((self.view(user, message_id)?, None));
        };
        let change = ReactionChanged {
            seq,
            message_id,
            conversation_id,
            emoji,
            user_id: user,
            count,
        };
        self.events.publish(DomainEvent::ReactionRemoved {
            change: change.clone(),
            audience,
            at,
        });
        Ok((self.view(user, message_id)?, Some(change)))
    }

    /// Pins a message of a conversation for every member and announces it. In a group only an
    /// owner or admin may pin; in a direct conversation either member. Idempotent: an already
    /// pinned message comes back without a change. A message not in the conversation is not found; a
    /// deleted one is [`DomainError::MessageDeleted`]; a conversation at its cap of pins is
    /// `too_many_pins`.
    pub fn pin(
        &self,
        user: UserId,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<(MessageView, Option<PinChanged>), DomainError> {
        self.may_pin(user, conversation_id)?;
        self.take_budget(user)?;
        let at = self.clock.now();
        let cap = self.limits.max_pins_per_conversation;
        let marked = self
            .messages
            .pin(conversation_id, message_id, user, cap, at)
            .map_err(|e| not_found_if_missing(e, message_id))?;
        let (change, audience) = match marked {
            Marked::Changed { seq, audience, .. } => (
                PinChanged {
                    seq,
                    message_id,
                    conversation_id,
                    user_id: user,
                },
                audience,
            ),
            Marked::Unchanged => return Ok((self.view(user, message_id)?, None)),
            Marked::MessageDeleted => return Err(DomainError::MessageDeleted(message_id)),
            Marked::OverCap => {
                return Err(DomainError::CapReached {
                    code: "too_many_pins",
                    detail: format!("a conversation holds at most {cap} pinned messages"),
                });
            }
        };
        self.events.publish(DomainEvent::MessagePinned {
            change: change.clone(),
            audience,
            at,
        });
        Ok((self.view(user, message_id)?, Some(change)))
    }

    /// Unpins a message; who may is as for [`Self::pin`]. Idempotent: a message that is
    /// not pinned comes back without a change.
    pub fn unpin(
        &self,
        user: UserId,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<(MessageView, Option<PinChanged>), DomainError> {
        self.may_pin(user, conversation_id)?;
        self.take_budget(user)?;
        let at = self.clock.now();
        let marked = self
            .messages
            .unpin(conversation_id, message_id, user)
            .map_err(|e| not_found_if_missing(e, message_id))?;
        let Marked::Changed { seq, audience, .. } = marked else {
            return Ok((self.view(user, message_id)?, None));
        };
        let change = PinChanged {
            seq,
            message_id,
            conversation_id,
            user_id: user,
        };
        self.events.publish(DomainEvent::MessageUnpinned {
            change: change.clone(),
            audience,
            at,
        });
        Ok((self.view(user, message_id)?, Some(change)))
    }

    /// The pinned messages of one of the viewer's conversations, the latest pin first,
    /// without those the viewer deleted for themselves: a message hidden by a member is gone
    /// from everything they read (history, pins, their feed), pinned or not.
    pub fn pins(
        &self,
        viewer: UserId,
        conversation_id: ConversationId,
    ) -> Result<Vec<MessageView>, DomainError> {
        let members = self.conversations.members(conversation_id)?;
        if !members.iter().any(|m| m.user_id == viewer) {
            return Err(DomainError::not_found(
                Resource::Conversation,
                conversation_id,
            ));
        }
        let direct = self
            .conversations
            .find(conversation_id)?
            .is_some_and(|c| c.kind == ConversationKind::Direct);
        let mut pins = self.messages.pins(conversation_id)?;
        let ids: Vec<MessageId> = pins.iter().map(|m| m.id).collect();
        let hidden = self.messages.hidden_among(viewer, &ids)?;
        pins.retain(|m| !hidden.contains(&m.id));
        Ok(pins
            .into_iter()
            .map(|m| view_message(m, &members, direct, viewer))
            .collect())
    }

    /// Every reaction and pin change is announced to every member, like a message: it takes
    /// from a budget of the size of the user's message budget, a budget of its own.
    fn take_budget(&self, user: UserId) -> Result<(), DomainError> {
        self.throttle
            .acquire(&format!("mark:{user}"), self.limits.messages_per_user)
    }

    /// The message as it now stands, from the viewer's side.
    fn view(&self, viewer: UserId, message_id: MessageId) -> Result<MessageView, DomainError> {
        let not_found = || DomainError::not_found(Resource::Message, message_id);
        let message = self.messages.find(message_id)?.ok_or_else(not_found)?;
        let members = self.conversations.members(message.conversation_id)?;
        let direct = self
            .conversations
            .find(message.conversation_id)?
            .is_some_and(|c| c.kind == ConversationKind::Direct);
        Ok(view_message(message, &members, direct, viewer))
    }

    /// The message, if the user is a member of its conversation; otherwise not found.
    fn visible(&self, user: UserId, message_id: MessageId) -> Result<(), DomainError> {
        let not_found = || DomainError::not_found(Resource::Message, message_id);
        let message = self.messages.find(message_id)?.ok_or_else(not_found)?;
        self.conversations
            .membership(message.conversation_id, user)?
            .ok_or_else(not_found)?;
        Ok(())
    }

    /// Members of a direct conversation may pin; in a group, owners and admins.
    fn may_pin(&self, user: UserId, conversation_id: ConversationId) -> Result<(), DomainError> {
        let member = require_member(self.conversations.as_ref(), conversation_id, user)?;
        let conversation = self
            .conversations
            .find(conversation_id)?
            .ok_or_else(|| DomainError::not_found(Resource::Conversation, conversation_id))?;
        if conversation.kind == ConversationKind::Group && member.role < Role::Admin {
            return Err(DomainError::Forbidden(
                "only an owner or admin can pin messages in a group".into(),
            ));
        }
        Ok(())
    }
}

/// A message gone, or a member gone, between the checks and the write: as if never there.
fn not_found_if_missing(error: StoreError, message_id: MessageId) -> DomainError {
    match error {
        StoreError::Missing => DomainError::not_found(Resource::Message, message_id),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::World;
    use crate::message::DeleteScope;
    use crate::service::{CreateConversation, SendMessage};

    struct Chat {
        world: World,
        alice: UserId,
        bob: UserId,
        group: ConversationId,
        message: MessageId,
    }

    /// Alice owns a group with Bob (a plain member), where Alice said hello.
    fn chat() -> Chat {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let group = world
            .services
            .conversations
            .create(
                alice,
                CreateConversation {
                    participant_ids: vec![bob],
                    name: Some("team".into()),
                    is_group: Some(true),
                },
            )
            .unwrap()
            .0
            .conversation
            .id;
        let message = send(&world, alice, group);
        world.events.take();
        Chat {
            world,
            alice,
            bob,
            group,
            message,
        }
    }

    fn send(world: &World, from: UserId, to: ConversationId) -> MessageId {
        world
            .services
            .messages
            .send(
                from,
                to,
                SendMessage {
                    content: "hello".into(),
                    client_message_id: None,
                    reply_to_id: None,
                    thread_root_id: None,
                    attachment_ids: Vec::new(),
                },
            )
            .unwrap()
            .0
            .message
            .id
    }

    #[test]
    fn a_reaction_is_announced_once_to_every_member_with_its_count() {
        let chat = chat();
        let reactions = &chat.world.services.reactions;
        let added = reactions
            .react(chat.bob, chat.message, "👍")
            .unwrap()
            .1
            .unwrap();
        assert_eq!((added.count, added.user_id), (1, chat.bob));
        let (view, again) = reactions.react(chat.bob, chat.message, "👍").unwrap();
        assert_eq!(again, None);
        assert_eq!(view.reactions().count(), 1);
        let events = chat.world.events.take();
        let [
            DomainEvent::ReactionAdded {
                change, audience, ..
            },
        ] = events.as_slice()
        else {
            panic!("one announcement: {events:?}");
        };
        assert_eq!(change, &added);
        assert_eq!(audience.len(), 2);
        let removed = reactions
            .unreact(chat.bob, chat.message, "👍")
            .unwrap()
            .1
            .unwrap();
        assert!(removed.seq > added.seq);
        assert_eq!(removed.count, 0);
        assert_eq!(
            reactions.unreact(chat.bob, chat.message, "👍").unwrap().1,
            None
        );
        assert_eq!(chat.world.events.take().len(), 1);
    }

    #[test]
    fn a_reaction_must_be_one_emoji_and_within_the_cap() {
        let chat = chat();
        let reactions = &chat.world.services.reactions;
        for bad in ["", "ok", "👍👍"] {
            let refused = reactions.react(chat.bob, chat.message, bad);
            assert!(
                matches!(&refused, Err(DomainError::Validation(f)) if f[0].field == "emoji"),
                "{bad:?}: {refused:?}"
            );
        }
        let cap = Limits::default().max_reactions_per_message;
        let many = [
            "😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎",
        ];
        let more = [
            "😍", "😘", "🥰", "😗", "😙", "😚", "🙂", "🤗", "🤩", "🤔", "🤨",
        ];
        let all: Vec<&str> = many.iter().chain(more.iter()).copied().collect();
        for e in &all[..cap] {
            reactions.react(chat.alice, chat.message, e).unwrap();
        }
        let refused = reactions.react(chat.bob, chat.message, all[cap]);
        assert!(
            matches!(
                &refused,
                Err(DomainError::CapReached {
                    code: "too_many_reactions",
                    ..
                })
            ),
            "{refused:?}"
        );
        // Joining an emoji already there is always possible.
        reactions
            .react(chat.bob, chat.message, all[0])
            .unwrap()
            .1
            .unwrap();
    }

    #[test]
    fn only_members_may_react_and_see_reactions_as_theirs() {
        let chat = chat();
        let eve = chat.world.user("eve");
        let reactions = &chat.world.services.reactions;
        for refused in [
            reactions.react(eve, chat.message, "👍"),
            reactions.unreact(eve, chat.message, "👍"),
            reactions.react(chat.bob, MessageId::new(), "👍"),
        ] {
            assert!(
                matches!(
                    refused,
                    Err(DomainError::NotFound {
                        resource: Resource::Message,
                        ..
                    })
                ),
                "{refused:?}"
            );
        }
        reactions.react(chat.bob, chat.message, "🎉").unwrap();
        let view = |viewer| {
            chat.world
                .services
                .messages
                .history(viewer, chat.group, crate::message::HistoryCursor::Latest, 1)
                .unwrap()
                .remove(0)
        };
        let mine: Vec<_> = view(chat.bob)
            .reactions()
            .map(|(e, n, me)| (e.as_str().to_owned(), n, me))
            .collect();
        assert_eq!(mine, [("🎉".to_owned(), 1, true)]);
        assert!(!view(chat.alice).reactions().any(|(_, _, me)| me));
    }

    #[test]
    fn in_a_group_only_owners_and_admins_pin_and_in_a_direct_chat_either_member() {
        let chat = chat();
        let reactions = &chat.world.services.reactions;
        let refused = reactions.pin(chat.bob, chat.group, chat.message);
        assert!(
            matches!(refused, Err(DomainError::Forbidden(_))),
            "{refused:?}"
        );
        let refused = reactions.unpin(chat.bob, chat.group, chat.message);
        assert!(
            matches!(refused, Err(DomainError::Forbidden(_))),
            "{refused:?}"
        );
        let (view, pinned) = reactions.pin(chat.alice, chat.group, chat.message).unwrap();
        let pinned = pinned.unwrap();
        assert_eq!(view.message.pin.unwrap().pinned_by, chat.alice);
        assert_eq!(pinned.user_id, chat.alice);
        assert_eq!(
            reactions
                .pin(chat.alice, chat.group, chat.message)
                .unwrap()
                .1,
            None
        );
        let pins = reactions.pins(chat.bob, chat.group).unwrap();
        assert_eq!(pins[0].message.id, chat.message);
        assert_eq!(pins[0].message.pin.as_ref().unwrap().pinned_by, chat.alice);

        let direct = chat
            .world
            .services
            .conversations
            .create(
                chat.alice,
                CreateConversation {
                    participant_ids: vec![chat.bob],
                    ..Default::default()
                },
            )
            .unwrap()
            .0
            .conversation
            .id;
        let in_direct = send(&chat.world, chat.alice, direct);
        reactions
            .pin(chat.bob, direct, in_direct)
            .unwrap()
            .1
            .unwrap();
        // A message of another conversation cannot be pinned here.
        let refused = reactions.pin(chat.bob, direct, chat.message);
        assert!(
            matches!(refused, Err(DomainError::NotFound { .. })),
            "{refused:?}"
        );
        let eve = chat.world.user("eve");
        for refused in [
            reactions.pin(eve, direct, in_direct).map(|_| ()),
            reactions.pins(eve, direct).map(|_| ()),
        ] {
            assert!(
                matches!(
                    refused,
                    Err(DomainError::NotFound {
                        resource: Resource::Conversation,
                        ..
                    })
                ),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn reacting_and_pinning_faster_than_the_message_budget_is_refused() {
        let chat = chat();
        let reactions = &chat.world.services.reactions;
        let burst = Limits::default().messages_per_user.unwrap().burst;
        for i in 0..burst {
            if i % 2 == 0 {
                reactions.react(chat.bob, chat.message, "👍").unwrap();
            } else {
                reactions.unreact(chat.bob, chat.message, "👍").unwrap();
            }
        }
        let refused = reactions.react(chat.bob, chat.message, "🎉");
        assert!(
            matches!(refused, Err(DomainError::RateLimited { .. })),
            "{refused:?}"
        );
        // The budget is the user's own, and apart from their messages.
        reactions.react(chat.alice, chat.message, "🎉").unwrap();
        send(&chat.world, chat.bob, chat.group);
    }

    #[test]
    fn a_pinned_message_deleted_for_oneself_leaves_only_ones_own_pins() {
        let chat = chat();
        let reactions = &chat.world.services.reactions;
        let other = send(&chat.world, chat.alice, chat.group);
        reactions.pin(chat.alice, chat.group, chat.message).unwrap();
        reactions.pin(chat.alice, chat.group, other).unwrap();
        chat.world
            .services
            .messages
            .delete(chat.bob, chat.message, DeleteScope::Me)
            .unwrap();
        let ids = |viewer| -> Vec<MessageId> {
            reactions
                .pins(viewer, chat.group)
                .unwrap()
                .into_iter()
                .map(|v| v.message.id)
                .collect()
        };
        assert_eq!(ids(chat.bob), [other]);
        assert_eq!(ids(chat.alice), [other, chat.message]);
    }

    #[test]
    fn pins_past_the_cap_are_refused() {
        let chat = chat();
        let reactions = &chat.world.services.reactions;
        let cap = Limits::default().max_pins_per_conversation;
        for i in 1..cap {
            // Both send, each within their own message budget.
            let from = if i % 2 == 0 { chat.alice } else { chat.bob };
            let id = send(&chat.world, from, chat.group);
            // Through the store: one admin pinning fifty at once would pass their budget.
            let marked = chat
                .world
                .store
                .pin(chat.group, id, chat.alice, cap, chrono::Utc::now())
                .unwrap();
            assert!(matches!(marked, Marked::Changed { .. }));
        }
        reactions.pin(chat.alice, chat.group, chat.message).unwrap();
        let one_more = send(&chat.world, chat.bob, chat.group);
        let refused = reactions.pin(chat.alice, chat.group, one_more);
        assert!(
            matches!(
                &refused,
                Err(DomainError::CapReached {
                    code: "too_many_pins",
                    ..
                })
            ),
            "{refused:?}"
        );
        assert_eq!(reactions.pins(chat.alice, chat.group).unwrap().len(), cap);
    }
}

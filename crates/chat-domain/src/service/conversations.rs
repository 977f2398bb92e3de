//! Starting conversations, listing a user's inbox, renaming groups and managing members.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::conversation::{
    Conversation, ConversationChange, ConversationDetails, ConversationKind, ConversationName,
    ConversationSummary, InboxFilter, MAX_GROUP_MEMBERS, Member, NewConversation, Participant,
    Role,
};
use crate::events::DomainEvent;
use crate::message::{HistoryCursor, Message, Seq};
use crate::paging::Page;
use crate::ports::{BlockStore, Clock, ConversationStore, EventPublisher, MessageStore, UserStore};
use crate::read_state::{SettingsChanged, SettingsUpdate, delivered_up_to};
use crate::user::PublicProfile;
use crate::{ConversationId, DomainError, MessageId, Resource, StoreError, UserId};

use super::{Ports, Throttle, require_member, view_message};
use crate::limits::Limits;

/// A request to start a conversation. The creator is always a member and need not be listed.
#[derive(Debug, Clone, Default)]
pub struct CreateConversation {
    pub participant_ids: Vec<UserId>,
    pub name: Option<String>,
    pub is_group: Option<bool>,
}

#[derive(Clone)]
pub struct ConversationService {
    throttle: Throttle,
    limits: Limits,
    users: Arc<dyn UserStore>,
    conversations: Arc<dyn ConversationStore>,
    messages: Arc<dyn MessageStore>,
    events: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
    blocks: Arc<dyn BlockStore>,
}

impl ConversationService {
    pub fn new(ports: &Ports) -> Self {
        Self {
            throttle: Throttle::new(ports),
            limits: ports.limits,
            users: ports.users.clone(),
            conversations: ports.conversations.clone(),
            messages: ports.messages.clone(),
            events: ports.events.clone(),
            clock: ports.clock.clone(),
            blocks: ports.blocks.clone(),
        }
    }

    /// Starts a conversation. With exactly one other participant, no name and no `is_group`,
    /// this is the pair's direct conversation: the existing one comes back (`false`) rather than a
    /// second being made (`true` when new). Otherwise it is a group, which needs a name and
    /// whose creator owns it. Nobody who has blocked the creator can be put into a new
    /// conversation by them ([`DomainError::Blocked`]); an existing direct conversation still
    /// comes back (sending into it is refused instead).
    pub fn create(
        &self,
        creator: UserId,
        request: CreateConversation,
    ) -> Result<(ConversationDetails, bool), DomainError> {
        let mut seen = HashSet::from([creator]);
        let others: Vec<UserId> = request
            .participant_ids
            .into_iter()
            .filter(|id| seen.insert(*id))
            .collect();
        // A name, or anything but exactly one other participant, means a group.
        let is_group = request
            .is_group
            .unwrap_or(others.len() != 1 || request.name.is_some());
        let name = match request.name.as_deref() {
            Some(raw) => Some(ConversationName::parse(raw).map_err(one_field)?),
            None => None,
        };
        if !is_group {
            if others.len() != 1 {
                return Err(DomainError::invalid(
                    "participant_ids",
                    "a direct conversation needs exactly one other participant",
                ));
            }
            if name.is_some() {
                return Err(DomainError::invalid(
                    "name",
                    "only a group has a name; set is_group to true",
                ));
            }
        }
        if is_group && others.len() + 1 > MAX_GROUP_MEMBERS {
            return Err(DomainError::invalid(
                "participant_ids",
                format!("a group has at most {MAX_GROUP_MEMBERS} members"),
            ));
        }
        self.require_active_users(&others)?;

        if is_group {
            let name = name.ok_or_else(|| DomainError::invalid("name", "a group needs a name"))?;
            super::blocks::refuse_if_blocked(&*self.blocks, creator, &others)?;
            self.spend_conversation_budget(creator)?;
            let members = std::iter::once((creator, Role::Owner))
                .chain(others.iter().map(|id| (*id, Role::Member)))
                .collect();
            let conversation = self.new_conversation(ConversationKind::Group, Some(name), creator);
            let seq = self.conversations.create(&NewConversation {
                conversation: conversation.clone(),
                members,
            })?;
            return Ok((self.announce_created(conversation, seq, creator)?, true));
        }

        let other = others[0];
        if let Some(existing) = self.conversations.find_direct(creator, other)? {
            return Ok((self.details_of(existing, creator)?, false));
        }
        super::blocks::refuse_if_blocked(&*self.blocks, creator, &others)?;
        // Only a conversation actually made costs budget: reusing the pair's existing one
        // (every `recipient_id` message does) is free.
        self.spend_conversation_budget(creator)?;
        let conversation = self.new_conversation(ConversationKind::Direct, None, creator);
        let created = self.conversations.create(&NewConversation {
            conversation: conversation.clone(),
            members: vec![(creator, Role::Member), (other, Role::Member)],
        });
        match created {
            Ok(seq) => Ok((self.announce_created(conversation, seq, creator)?, true)),
            // Both users started it at the same moment: the other request won.
            Err(StoreError::Conflict { .. }) => {
                let existing = self
                    .conversations
                    .find_direct(creator, other)?
                    .ok_or(StoreError::Missing)?;
                Ok((self.details_of(existing, creator)?, false))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The caller's conversations, most recent activity first: with `archived` `None` all of
    /// them, else only those archived (`Some(true)`) or not (`Some(false)`). A conversation
    /// stays archived until a message newer than the archiving arrives, unless muted. Each
    /// conversation's last message is the newest the caller has not deleted for themselves.
    pub fn inbox(
        &self,
        user: UserId,
        page: Page,
        archived: Option<bool>,
    ) -> Result<Vec<ConversationSummary>, DomainError> {
        let filter = InboxFilter {
            archived,
            now: self.clock.now(),
        };
        let mut entries = self.conversations.inbox(user, page, filter)?;
        let last: Vec<MessageId> = entries
            .iter()
            .filter_map(|e| e.last_message.as_ref().map(|m| m.id))
            .collect();
        let hidden = self.messages.hidden_among(user, &last)?;
        for entry in &mut entries {
            if entry
                .last_message
                .as_ref()
                .is_some_and(|m| hidden.contains(&m.id))
            {
                entry.last_message = self.latest_unhidden(user, entry.conversation.id)?;
            }
        }
        let ids: Vec<ConversationId> = entries.iter().map(|e| e.conversation.id).collect();
        let memberships = self.conversations.members_of(&ids)?;
        let profiles = self.profiles(memberships.iter().flatten())?;
        Ok(entries
            .into_iter()
            .zip(memberships)
            .map(|(entry, members)| ConversationSummary {
                participants: participants(&members, &profiles),
                last_message: entry.last_message.map(|m| {
                    let direct = entry.conversation.kind == ConversationKind::Direct;
                    view_message(m, &members, direct, user)
                }),
                conversation: entry.conversation,
                unread_count: entry.unread_count,
                unread_mentions: entry.unread_mentions,
                last_activity_at: entry.last_activity_at,
                settings: entry.settings,
            })
            .collect())
    }

    /// The newest message of a conversation that `user` has not deleted for themselves.
    fn latest_unhidden(
        &self,
        user: UserId,
        conversation: ConversationId,
    ) -> Result<Option<Message>, DomainError> {
        const CHUNK: u32 = 50;
        let mut cursor = HistoryCursor::Latest;
        loop {
            // Ascending, the newest last.
            let chunk = self.messages.history(conversation, cursor, CHUNK)?;
            let Some(first) = chunk.first() else {
                return Ok(None);
            };
            let ids: Vec<MessageId> = chunk.iter().map(|m| m.id).collect();
            let hidden = self.messages.hidden_among(user, &ids)?;
            let exhausted = chunk.len() < CHUNK as usize;
            cursor = HistoryCursor::Before(first.seq);
            if let Some(newest) = chunk.into_iter().rev().find(|m| !hidden.contains(&m.id)) {
                return Ok(Some(newest));
            }
            if exhausted {
                return Ok(None);
            }
        }
    }

    /// A conversation the caller is a member of, with its participants and their roles.
    pub fn details(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> Result<ConversationDetails, DomainError> {
        require_member(self.conversations.as_ref(), id, user)?;
        let conversation = self.find(id)?;
        self.details_of(conversation, user)
    }

    /// Changes the caller's own settings in a conversation (mute, archive); fields left out
    /// stay as they are, and a mute that has already ended is stored as no mute. Only the
    /// caller's own devices hear of it. A non-member gets "not found".
    pub fn update_settings(
        &self,
        user: UserId,
        id: ConversationId,
        mut update: SettingsUpdate,
    ) -> Result<SettingsChanged, DomainError> {
        let now = self.clock.now();
        if let Some(Some(until)) = update.muted_until
            && until <= now
        {
            update.muted_until = Some(None);
        }
        let change = self
            .conversations
            .update_settings(id, user, &update, now)
            .map_err(|e| match e {
                StoreError::Missing => DomainError::not_found(Resource::Conversation, id),
                other => other.into(),
            })?;
        self.events.publish(DomainEvent::SettingsChanged {
            change: change.clone(),
            audience: vec![user],
            at: now,
        });
        Ok(change)
    }

    /// Renames a group. Owners and admins only; a direct conversation has no name.
    pub fn rename(
        &self,
        actor: UserId,
        id: ConversationId,
        name: &str,
    ) -> Result<ConversationDetails, DomainError> {
        let name = ConversationName::parse(name).map_err(one_field)?;
        let (conversation, _) = self.managed_group(actor, id, "rename")?;
        let (renamed, seq) = self
            .conversations
            .rename(conversation.id, &name, self.clock.now())?;
        let details = self.details_of(renamed, actor)?;
        self.announce(&details, seq, ConversationChange::Renamed { name }, actor);
        Ok(details)
    }

    /// Adds users to a group. Owners and admins only; users already in are skipped. Nobody
    /// who has blocked the actor can be added by them ([`DomainError::Blocked`]).
    pub fn add_members(
        &self,
        actor: UserId,
        id: ConversationId,
        user_ids: Vec<UserId>,
    ) -> Result<ConversationDetails, DomainError> {
        if user_ids.is_empty() {
            return Err(DomainError::invalid(
                "user_ids",
                "must name at least one user",
            ));
        }
        let (conversation, _) = self.managed_group(actor, id, "add members to")?;
        let mut seen = HashSet::new();
        let user_ids: Vec<UserId> = user_ids.into_iter().filter(|u| seen.insert(*u)).collect();
        self.require_active_users(&user_ids)?;
        super::blocks::refuse_if_blocked(&*self.blocks, actor, &user_ids)?;
        self.spend_conversation_budget(actor)?;
        let (added, seq) = self
            .conversations
            .add_members(
                id,
                &user_ids,
                Role::Member,
                MAX_GROUP_MEMBERS,
                self.clock.now(),
            )
            .map_err(|e| match e {
                StoreError::Conflict { .. } => DomainError::invalid(
                    "user_ids",
                    format!("a group has at most {MAX_GROUP_MEMBERS} members"),
                ),
                other => other.into(),
            })?;
        let details = self.details_of(conversation, actor)?;
        if let Some(seq) = seq {
            self.announce(
                &details,
                seq,
                ConversationChange::MembersAdded { user_ids: added },
                actor,
            );
        }
        Ok(details)
    }

    /// Removes `target` from a group: an owner or admin removes someone, or anyone removes
    /// themselves (leaves). An admin cannot remove the owner. When the owner leaves, the
    /// longest-standing active admin (or else member) becomes owner; see [`Self::successor`].
    pub fn remove_member(
        &self,
        actor: UserId,
        id: ConversationId,
        target: UserId,
    ) -> Result<(), DomainError> {
        let actor_member = require_member(self.conversations.as_ref(), id, actor)?;
        let conversation = self.find(id)?;
        if conversation.kind == ConversationKind::Direct {
            return Err(DomainError::Unprocessable(
                "members of a direct conversation cannot be removed".into(),
            ));
        }
        let members = self.conversations.members(id)?;
        let target_member = members
            .iter()
            .find(|m| m.user_id == target)
            .cloned()
            .ok_or_else(|| DomainError::not_found(Resource::User, target))?;
        if actor != target {
            if !actor_member.role.can_manage() {
                return Err(DomainError::Forbidden(
                    "only an owner or admin can remove members".into(),
                ));
            }
            if target_member.role > actor_member.role {
                return Err(DomainError::Forbidden(
                    "an admin cannot remove the owner".into(),
                ));
            }
        }
        let now = self.clock.now();
        let Some(mut seq) = self.conversations.remove_member(id, target, now)? else {
            return Err(DomainError::not_found(Resource::User, target));
        };
        if target_member.role == Role::Owner
            && let Some(successor) = self.successor(&members, target)?
        {
            seq = self.conversations.set_role(id, successor, Role::Owner)?;
        }
        let audience = members.iter().map(|m| m.user_id).collect();
        self.events.publish(DomainEvent::ConversationUpdated {
            conversation,
            seq,
            change: ConversationChange::MemberRemoved { user_id: target },
            actor,
            audience,
            at: now,
        });
        Ok(())
    }

    /// Gives a group member another role. Only the owner does this. Making someone the owner
    /// hands ownership over: the previous owner becomes an admin.
    pub fn set_role(
        &self,
        actor: UserId,
        id: ConversationId,
        target: UserId,
        role: Role,
    ) -> Result<ConversationDetails, DomainError> {
        let (conversation, member) = self.managed_group(actor, id, "change roles in")?;
        if member.role != Role::Owner {
            return Err(DomainError::Forbidden(
                "only the owner can change roles".into(),
            ));
        }
        let target_member = self
            .conversations
            .membership(id, target)?
            .ok_or_else(|| DomainError::not_found(Resource::User, target))?;
        if target == actor {
            return Err(DomainError::Unprocessable(
                "the owner hands ownership over by making another member owner".into(),
            ));
        }
        if target_member.role != role {
            let mut seq = self.conversations.set_role(id, target, role)?;
            if role == Role::Owner {
                seq = self.conversations.set_role(id, actor, Role::Admin)?;
            }
            let details = self.details_of(conversation, actor)?;
            self.announce(
                &details,
                seq,
                ConversationChange::RoleChanged {
                    user_id: target,
                    role,
                },
                actor,
            );
            return Ok(details);
        }
        self.details_of(conversation, actor)
    }

    /// Passes on the ownership of every group `departing` owns, as when an owner leaves, to
    /// the longest-standing active admin (or else member). Called when an account is
    /// deactivated: the deactivated user stays a member (their messages and their name in
    /// the member list remain), demoted to a plain member, so that every group keeps an
    /// owner who can act. A group with no other active member keeps its owner: there is no
    /// one left to manage it. Each handover is announced to the group as two role changes:
    /// the successor's, then the departing user's.
    pub fn hand_over_groups_of(&self, departing: UserId) -> Result<(), DomainError> {
        for id in self.conversations.with_role(departing, Role::Owner)? {
            let members = self.conversations.members(id)?;
            let Some(successor) = self.successor(&members, departing)? else {
                continue;
            };
            let Some(conversation) = self.conversations.find(id)? else {
                continue;
            };
            let promoted = self.conversations.set_role(id, successor, Role::Owner)?;
            let demoted = self.conversations.set_role(id, departing, Role::Member)?;
            let details = self.details_of(conversation, departing)?;
            for (user_id, role, seq) in [
                (successor, Role::Owner, promoted),
                (departing, Role::Member, demoted),
            ] {
                self.announce(
                    &details,
                    seq,
                    ConversationChange::RoleChanged { user_id, role },
                    departing,
                );
            }
        }
        Ok(())
    }

    /// Tells the other members that `user` is (or stopped) typing. Nothing is stored.
    pub fn typing(
        &self,
        user: UserId,
        id: ConversationId,
        is_typing: bool,
    ) -> Result<(), DomainError> {
        require_member(self.conversations.as_ref(), id, user)?;
        self.throttle
            .acquire(&format!("typing:{user}"), self.limits.typing_per_user)?;
        let audience = self
            .conversations
            .members(id)?
            .into_iter()
            .map(|m| m.user_id)
            .filter(|u| *u != user)
            .collect();
        self.events.publish(DomainEvent::Typing {
            conversation_id: id,
            user_id: user,
            is_typing,
            audience,
            at: self.clock.now(),
        });
        Ok(())
    }

    fn new_conversation(
        &self,
        kind: ConversationKind,
        name: Option<ConversationName>,
        creator: UserId,
    ) -> Conversation {
        let now = self.clock.now();
        Conversation {
            id: ConversationId::new(),
            kind,
            name,
            created_by: creator,
            created_at: now,
            updated_at: now,
        }
    }

    fn find(&self, id: ConversationId) -> Result<Conversation, DomainError> {
        self.conversations
            .find(id)?
            .ok_or_else(|| DomainError::not_found(Resource::Conversation, id))
    }

    /// The group and the actor's membership, if the actor may manage it.
    fn managed_group(
        &self,
        actor: UserId,
        id: ConversationId,
        action: &str,
    ) -> Result<(Conversation, Member), DomainError> {
        let member = require_member(self.conversations.as_ref(), id, actor)?;
        let conversation = self.find(id)?;
        if conversation.kind == ConversationKind::Direct {
            return Err(DomainError::Unprocessable(format!(
                "cannot {action} a direct conversation"
            )));
        }
        if !member.role.can_manage() {
            return Err(DomainError::Forbidden(format!(
                "only an owner or admin can {action} this group"
            )));
        }
        Ok((conversation, member))
    }

    /// Every id names an active user. The first that does not is "not found", a deactivated
    /// account exactly like an id nobody has: it cannot be messaged, added to a group or put
    /// into a new conversation.
    fn require_active_users(&self, ids: &[UserId]) -> Result<(), DomainError> {
        let active = self.active_users(ids)?;
        match ids.iter().find(|id| !active.contains(id)) {
            Some(missing) => Err(DomainError::not_found(Resource::User, missing)),
            None => Ok(()),
        }
    }

    fn active_users(&self, ids: &[UserId]) -> Result<HashSet<UserId>, DomainError> {
        Ok(self
            .users
            .find_many(ids)?
            .iter()
            .filter(|u| u.is_active)
            .map(|u| u.id)
            .collect())
    }

    /// Who takes a group over when its owner goes (leaves or is deactivated): the
    /// highest-ranking, then longest-standing, active member other than `departing`. `None`
    /// when no active member is left.
    fn successor(
        &self,
        members: &[Member],
        departing: UserId,
    ) -> Result<Option<UserId>, DomainError> {
        let others: Vec<&Member> = members.iter().filter(|m| m.user_id != departing).collect();
        let ids: Vec<UserId> = others.iter().map(|m| m.user_id).collect();
        let active = self.active_users(&ids)?;
        Ok(others
            .into_iter()
            .filter(|m| active.contains(&m.user_id))
            // Members who joined at the same instant are told apart by id, so the choice
            // does not depend on the order the store lists them in.
            .min_by_key(|m| (std::cmp::Reverse(m.role), m.joined_at, m.user_id))
            .map(|m| m.user_id))
    }

    /// Creating a conversation or adding members pulls other users in: one action from the
    /// actor's budget, so nobody is dragged into a hundred groups in a second.
    fn spend_conversation_budget(&self, actor: UserId) -> Result<(), DomainError> {
        self.throttle.acquire(
            &format!("conversations:{actor}"),
            self.limits.conversations_per_user,
        )
    }

    /// The conversation in full, with `viewer`'s own settings (the defaults if they are not
    /// a member).
    pub(super) fn details_of(
        &self,
        conversation: Conversation,
        viewer: UserId,
    ) -> Result<ConversationDetails, DomainError> {
        let members = self.conversations.members(conversation.id)?;
        let profiles = self.profiles(members.iter())?;
        let settings = self
            .conversations
            .settings(conversation.id, viewer, self.clock.now())?
            .unwrap_or_default();
        Ok(ConversationDetails {
            participants: participants(&members, &profiles),
            conversation,
            settings,
        })
    }

    /// The public profiles of members: what one member may see of another.
    fn profiles<'a>(
        &self,
        members: impl Iterator<Item = &'a Member>,
    ) -> Result<HashMap<UserId, PublicProfile>, DomainError> {
        let ids: Vec<UserId> = members
            .map(|m| m.user_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        Ok(self
            .users
            .find_many(&ids)?
            .into_iter()
            .map(|u| (u.id, PublicProfile::from(u)))
            .collect())
    }

    fn announce_created(
        &self,
        conversation: Conversation,
        seq: Seq,
        creator: UserId,
    ) -> Result<ConversationDetails, DomainError> {
        let details = self.details_of(conversation, creator)?;
        self.announce(&details, seq, ConversationChange::Created, creator);
        Ok(details)
    }

    fn announce(
        &self,
        details: &ConversationDetails,
        seq: Seq,
        change: ConversationChange,
        actor: UserId,
    ) {
        let audience = details.participants.iter().map(|p| p.user.id).collect();
        self.events.publish(DomainEvent::ConversationUpdated {
            conversation: details.conversation.clone(),
            seq,
            change,
            actor,
            audience,
            at: self.clock.now(),
        });
    }
}

fn participants(members: &[Member], profiles: &HashMap<UserId, PublicProfile>) -> Vec<Participant> {
    members
        .iter()
        .filter_map(|m| {
            profiles.get(&m.user_id).map(|user| Participant {
                user: user.clone(),
                role: m.role,
                joined_at: m.joined_at,
                last_read_seq: m.last_read_seq,
                last_delivered_seq: delivered_up_to(m.last_delivered_seq, m.last_read_seq),
            })
        })
        .collect()
}

fn one_field(error: crate::validation::FieldError) -> DomainError {
    DomainError::Validation(vec![error])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::World;

    fn group(world: &World, owner: UserId, others: &[UserId]) -> ConversationId {
        world
            .services
            .conversations
            .create(
                owner,
                CreateConversation {
                    participant_ids: others.to_vec(),
                    name: Some("team".into()),
                    is_group: Some(true),
                },
            )
            .unwrap()
            .0
            .conversation
            .id
    }

    fn direct(world: &World, a: UserId, b: UserId) -> (ConversationDetails, bool) {
        world
            .services
            .conversations
            .create(
                a,
                CreateConversation {
                    participant_ids: vec![b, b, a],
                    ..Default::default()
                },
            )
            .unwrap()
    }

    #[test]
    fn a_pair_of_users_has_at_most_one_direct_conversation() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let (first, created) = direct(&world, alice, bob);
        assert!(created);
        assert_eq!(first.conversation.kind, ConversationKind::Direct);
        assert_eq!(first.participants.len(), 2);
        let (again, created_again) = direct(&world, bob, alice);
        assert!(!created_again);
        assert_eq!(again.conversation.id, first.conversation.id);
    }

    #[test]
    fn a_group_needs_a_name_and_its_creator_owns_it() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let unnamed = world.services.conversations.create(
            alice,
            CreateConversation {
                participant_ids: vec![bob],
                is_group: Some(true),
                ..Default::default()
            },
        );
        assert!(matches!(unnamed, Err(DomainError::Validation(_))));
        let id = group(&world, alice, &[bob]);
        let details = world.services.conversations.details(bob, id).unwrap();
        let owner = details
            .participants
            .iter()
            .find(|p| p.user.id == alice)
            .unwrap();
        assert_eq!(owner.role, Role::Owner);
    }

    #[test]
    fn a_named_conversation_with_one_other_participant_is_a_group() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let (details, created) = world
            .services
            .conversations
            .create(
                alice,
                CreateConversation {
                    participant_ids: vec![bob],
                    name: Some("pair project".into()),
                    is_group: None,
                },
            )
            .unwrap();
        assert!(created);
        assert_eq!(details.conversation.kind, ConversationKind::Group);
        let explicit_direct = world.services.conversations.create(
            alice,
            CreateConversation {
                participant_ids: vec![bob],
                name: Some("x".into()),
                is_group: Some(false),
            },
        );
        assert!(matches!(explicit_direct, Err(DomainError::Validation(_))));
    }

    #[test]
    fn an_unknown_participant_is_not_found_by_id() {
        let world = World::new();
        let alice = world.user("alice");
        let ghost = UserId::new();
        let err = world
            .services
            .conversations
            .create(
                alice,
                CreateConversation {
                    participant_ids: vec![ghost],
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(
            matches!(err, DomainError::NotFound { resource: Resource::User, ref id } if *id == ghost.to_string())
        );
    }

    #[test]
    fn a_conversation_is_invisible_to_non_members() {
        let world = World::new();
        let (alice, bob, eve) = (world.user("alice"), world.user("bob"), world.user("eve"));
        let id = group(&world, alice, &[bob]);
        assert!(matches!(
            world.services.conversations.details(eve, id),
            Err(DomainError::NotFound {
                resource: Resource::Conversation,
                ..
            })
        ));
        assert!(matches!(
            world.services.conversations.rename(eve, id, "mine"),
            Err(DomainError::NotFound { .. })
        ));
    }

    #[test]
    fn only_owners_and_admins_rename_and_direct_conversations_have_no_name() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let id = group(&world, alice, &[bob]);
        assert!(matches!(
            world.services.conversations.rename(bob, id, "bob's"),
            Err(DomainError::Forbidden(_))
        ));
        let renamed = world
            .services
            .conversations
            .rename(alice, id, "renamed")
            .unwrap();
        assert_eq!(renamed.conversation.name.unwrap().as_str(), "renamed");
        let (dm, _) = direct(&world, alice, bob);
        assert!(matches!(
            world
                .services
                .conversations
                .rename(alice, dm.conversation.id, "x"),
            Err(DomainError::Unprocessable(_))
        ));
    }

    #[test]
    fn every_change_is_announced_to_the_members_of_the_moment() {
        let world = World::new();
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        let id = group(&world, alice, &[bob]);
        world
            .services
            .conversations
            .add_members(alice, id, vec![carol])
            .unwrap();
        world
            .services
            .conversations
            .remove_member(alice, id, bob)
            .unwrap();
        world
            .services
            .conversations
            .rename(alice, id, "after")
            .unwrap();
        let events = world.events.take();
        let changes: Vec<_> = events
            .iter()
            .map(|e| match e {
                DomainEvent::ConversationUpdated {
                    change, audience, ..
                } => (change.clone(), audience.len()),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert!(matches!(changes[0], (ConversationChange::Created, 2)));
        assert!(matches!(
            changes[1],
            (ConversationChange::MembersAdded { .. }, 3)
        ));
        // The removed member hears of their own removal, and of nothing after it.
        assert!(matches!(
            changes[2],
            (ConversationChange::MemberRemoved { .. }, 3)
        ));
        assert!(matches!(
            changes[3],
            (ConversationChange::Renamed { .. }, 2)
        ));
        assert!(!events[3].audience().contains(&bob));
    }

    #[test]
    fn members_cannot_remove_others_but_anyone_can_leave() {
        let world = World::new();
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        let id = group(&world, alice, &[bob, carol]);
        assert!(matches!(
            world.services.conversations.remove_member(bob, id, carol),
            Err(DomainError::Forbidden(_))
        ));
        world
            .services
            .conversations
            .remove_member(bob, id, bob)
            .unwrap();
        assert!(world.services.conversations.details(bob, id).is_err());
    }

    #[test]
    fn when_the_owner_leaves_the_longest_standing_member_takes_over() {
        let world = World::new();
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        let id = group(&world, alice, &[bob]);
        world
            .services
            .conversations
            .add_members(alice, id, vec![carol])
            .unwrap();
        world
            .services
            .conversations
            .remove_member(alice, id, alice)
            .unwrap();
        let details = world.services.conversations.details(bob, id).unwrap();
        let bob_role = details
            .participants
            .iter()
            .find(|p| p.user.id == bob)
            .unwrap()
            .role;
        assert_eq!(bob_role, Role::Owner);
    }

    #[test]
    fn only_the_owner_changes_roles_and_handing_over_ownership_demotes_to_admin() {
        let world = World::new();
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        let id = group(&world, alice, &[bob, carol]);
        let conversations = &world.services.conversations;
        conversations.set_role(alice, id, bob, Role::Admin).unwrap();
        // An admin manages members but does not change roles.
        assert!(matches!(
            conversations.set_role(bob, id, carol, Role::Admin),
            Err(DomainError::Forbidden(_))
        ));
        conversations.rename(bob, id, "by the admin").unwrap();
        let details = conversations
            .set_role(alice, id, carol, Role::Owner)
            .unwrap();
        let role_of = |user| {
            details
                .participants
                .iter()
                .find(|p| p.user.id == user)
                .unwrap()
                .role
        };
        assert_eq!(
            (role_of(alice), role_of(bob), role_of(carol)),
            (Role::Admin, Role::Admin, Role::Owner)
        );
    }

    fn role_in(world: &World, viewer: UserId, id: ConversationId, user: UserId) -> Role {
        world
            .services
            .conversations
            .details(viewer, id)
            .unwrap()
            .participants
            .iter()
            .find(|p| p.user.id == user)
            .unwrap()
            .role
    }

    #[test]
    fn a_deactivated_owner_hands_each_group_to_the_longest_standing_active_member() {
        let world = World::new();
        let [alice, bob, carol, dave] = ["alice", "bob", "carol", "dave"].map(|n| world.user(n));
        let id = group(&world, alice, &[bob]);
        let conversations = &world.services.conversations;
        conversations.add_members(alice, id, vec![carol]).unwrap();
        conversations.add_members(alice, id, vec![dave]).unwrap();
        conversations
            .set_role(alice, id, carol, Role::Admin)
            .unwrap();
        // Carol, the admin, would be next; she is deactivated first, so she is passed over.
        world
            .services
            .accounts
            .deactivate(carol, "correct horse")
            .unwrap();
        let other = group(&world, alice, &[dave]);
        world.events.take();
        world
            .services
            .accounts
            .deactivate(alice, "correct horse")
            .unwrap();

        assert_eq!(role_in(&world, bob, id, bob), Role::Owner);
        assert_eq!(role_in(&world, dave, other, dave), Role::Owner);
        // Alice stays a member, as a plain member.
        assert_eq!(role_in(&world, bob, id, alice), Role::Member);
        assert_eq!(role_in(&world, bob, id, carol), Role::Admin);
        // The new owner can manage the group.
        conversations.rename(bob, id, "bob's now").unwrap();
        let handovers = world
            .events
            .take()
            .into_iter()
            .filter_map(|e| match e {
                DomainEvent::ConversationUpdated {
                    change: ConversationChange::RoleChanged { user_id, role },
                    ..
                } => Some((user_id, role)),
                _ => None,
            })
            .collect::<Vec<_>>();
        assert_eq!(handovers.len(), 4, "{handovers:?}");
        assert!(handovers.contains(&(bob, Role::Owner)));
        assert!(handovers.contains(&(dave, Role::Owner)));
        assert!(handovers.contains(&(alice, Role::Member)));
    }

    #[test]
    fn a_group_whose_other_members_are_all_deactivated_keeps_its_owner() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let id = group(&world, alice, &[bob]);
        world
            .services
            .accounts
            .deactivate(bob, "correct horse")
            .unwrap();
        world
            .services
            .accounts
            .deactivate(alice, "correct horse")
            .unwrap();
        let members = world.store.members(id).unwrap();
        let owner = members.iter().find(|m| m.role == Role::Owner).unwrap();
        assert_eq!(owner.user_id, alice);
    }

    #[test]
    fn a_deactivated_user_cannot_be_put_into_a_conversation_or_added_to_one() {
        let world = World::new();
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        let id = group(&world, alice, &[bob]);
        world
            .services
            .accounts
            .deactivate(carol, "correct horse")
            .unwrap();
        let is_carol_not_found = |result: Result<_, DomainError>| {
            matches!(
                result,
                Err(DomainError::NotFound { resource: Resource::User, id }) if id == carol.to_string()
            )
        };
        let conversations = &world.services.conversations;
        let direct = conversations.create(
            alice,
            CreateConversation {
                participant_ids: vec![carol],
                ..Default::default()
            },
        );
        assert!(is_carol_not_found(direct.map(|_| ())));
        let new_group = conversations.create(
            alice,
            CreateConversation {
                participant_ids: vec![bob, carol],
                name: Some("new".into()),
                is_group: Some(true),
            },
        );
        assert!(is_carol_not_found(new_group.map(|_| ())));
        let added = conversations.add_members(alice, id, vec![carol]);
        assert!(is_carol_not_found(added.map(|_| ())));
    }

    #[test]
    fn creating_conversations_and_adding_members_share_one_budget_per_user() {
        let world = World::new();
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        let conversations = &world.services.conversations;
        let budget = Limits::default().conversations_per_user.unwrap().burst;
        // The direct conversation is made once; asking for it again costs nothing.
        direct(&world, alice, bob);
        for _ in 0..budget {
            direct(&world, alice, bob);
        }
        let id = group(&world, alice, &[bob]);
        for _ in 2..budget {
            group(&world, alice, &[bob]);
        }
        assert!(matches!(
            conversations.add_members(alice, id, vec![carol]),
            Err(DomainError::RateLimited { .. })
        ));
        let refused = conversations.create(
            alice,
            CreateConversation {
                participant_ids: vec![carol],
                ..Default::default()
            },
        );
        assert!(matches!(refused, Err(DomainError::RateLimited { .. })));
        // Nobody was pulled in by the refused requests, and another user has their own budget.
        assert!(conversations.details(carol, id).is_err());
        group(&world, bob, &[carol]);
    }

    #[test]
    fn typing_reaches_the_other_members_only() {
        let world = World::new();
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        let id = group(&world, alice, &[bob, carol]);
        world.events.take();
        world.services.conversations.typing(bob, id, true).unwrap();
        let events = world.events.take();
        let mut audience = events[0].audience().to_vec();
        audience.sort();
        let mut expected = vec![alice, carol];
        expected.sort();
        assert_eq!(audience, expected);
    }

    #[test]
    fn the_inbox_shows_as_last_message_the_newest_one_the_caller_did_not_delete_for_themselves() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let g = group(&world, alice, &[bob]);
        let messages = &world.services.messages;
        let send = |text: &str| {
            messages
                .send(
                    alice,
                    g,
                    crate::service::SendMessage {
                        content: text.into(),
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
        };
        let (first, second, third) = (send("one"), send("two"), send("three"));
        for hidden in [third, second] {
            messages
                .delete(bob, hidden, crate::message::DeleteScope::Me)
                .unwrap();
        }
        let last = |user| {
            let inbox = world
                .services
                .conversations
                .inbox(user, Page::default(), None)
                .unwrap();
            inbox[0].last_message.as_ref().map(|m| m.message.id)
        };
        assert_eq!(last(bob), Some(first));
        assert_eq!(last(alice), Some(third), "hiding is bob's business alone");
        messages
            .delete(bob, first, crate::message::DeleteScope::Me)
            .unwrap();
        assert_eq!(last(bob), None);
    }
}

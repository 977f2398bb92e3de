//! The use cases, one file per group. Each service holds the ports it needs and nothing else.

mod accounts;
mod admin;
mod attachments;
mod blocks;
mod conversations;
mod delivery;
mod messages;
mod presence;
mod reactions;
mod reports;
mod search;
mod sessions;
mod sync;
mod webhooks;

use std::sync::Arc;

pub use accounts::{
    AccountService, Authenticated, LoggedIn, LoginFrom, ProfileChanges, SignupRequest,
};
pub use attachments::{AttachmentService, Served, Swept, Variant};
pub use conversations::{ConversationService, CreateConversation};
pub use delivery::DeliveryService;
pub use messages::{Deleted, MessageService, SendMessage};
pub use presence::{MAX_PRESENCE_QUERY, PresenceService};
pub use reactions::ReactionService;
pub use search::{SearchPage, SearchRequest, SearchResult, SearchService};
pub use sessions::{RefreshGrant, Refreshed, SessionService, SessionView};
pub use sync::{FeedEvent, FeedPage, FeedQuery, SyncService};
pub use webhooks::{EventData, Notification, Outgoing, WebhookPorts, WebhookService};

pub use admin::{AdminService, Granted, grant_admin};
pub use blocks::{BlockService, BlockedUser};
pub use reports::{ReportRequest, ReportService};

use crate::attachment::{BlobKey, UploadLimits};
use crate::conversation::Member;
use crate::limits::{Limits, Quota};
use crate::message::{Message, MessageView};
use crate::ports::{
    AdminStore, AttachmentStore, BlobStore, BlockStore, Clock, ConversationStore, DeviceTokens,
    EventPublisher, FeedStore, MediaInspector, MessageStore, PasswordHasher, PresenceDirectory,
    PresenceStore, RateLimiter, ReadReceiptStore, ReportStore, SearchStore, TokenIssuer,
    TokenRevocations, UserStore,
};
use crate::ports::{RefreshTokens, SessionStore};
use crate::{ConversationId, DomainError, Resource, UserId};

/// Every adapter the services need, and the abuse limits they enforce, handed over once by
/// the composition root.
#[derive(Clone)]
pub struct Ports {
    pub limiter: Arc<dyn RateLimiter>,
    pub limits: Limits,
    pub users: Arc<dyn UserStore>,
    pub conversations: Arc<dyn ConversationStore>,
    pub messages: Arc<dyn MessageStore>,
    pub feed: Arc<dyn FeedStore>,
    pub read_receipts: Arc<dyn ReadReceiptStore>,
    pub search: Arc<dyn SearchStore>,
    pub revocations: Arc<dyn TokenRevocations>,
    pub blocks: Arc<dyn BlockStore>,
    /// Server admins and the audit log.
    pub admins: Arc<dyn AdminStore>,
    /// Who has a socket open on any node.
    pub presence: Arc<dyn PresenceDirectory>,
    /// Reports for the server admins.
    pub reports: Arc<dyn ReportStore>,
    pub events: Arc<dyn EventPublisher>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub tokens: Arc<dyn TokenIssuer>,
    pub devices: Arc<dyn DeviceTokens>,
    pub clock: Arc<dyn Clock>,
    /// Login sessions and their refresh tokens.
    pub sessions: Arc<dyn SessionStore>,
    pub refresh_tokens: Arc<dyn RefreshTokens>,
    /// What is stored of presence: last seen, its privacy, who shares a conversation.
    pub presence_store: Arc<dyn PresenceStore>,
    /// Presence events go out at most once per user per this window (zero: every change).
    pub presence_window: chrono::Duration,
    /// A user gone offline is announced only once offline this long (a reconnect within it
    /// announces nothing).
    pub presence_offline_after: chrono::Duration,
}

/// What uploads ([`AttachmentService`]) need besides the common ports.
#[derive(Clone)]
pub struct UploadPorts {
    pub attachments: Arc<dyn AttachmentStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub media: Arc<dyn MediaInspector>,
    pub limits: UploadLimits,
    /// The SHA-256 of some bytes as a blob key (for thumbnails): the domain does no hashing
    /// of its own.
    pub digest: fn(&[u8]) -> BlobKey,
}

/// All use cases, cheap to clone and share between request handlers.
#[derive(Clone)]
pub struct ChatServices {
    pub accounts: AccountService,
    pub conversations: ConversationService,
    pub messages: MessageService,
    /// Reactions and pins.
    pub reactions: ReactionService,
    pub sync: SyncService,
    /// Delivered receipts.
    pub delivery: DeliveryService,
    /// Full-text search over messages.
    pub search: SearchService,
    /// Login sessions: refresh tokens, signed-in devices.
    pub sessions: SessionService,
    /// Blocking other users.
    pub blocks: BlockService,
    /// Reporting messages and users to the server admins.
    pub reports: ReportService,
    /// What server admins do.
    pub admin: AdminService,
    /// Who is online, and their presence events.
    pub presence: PresenceService,
}

impl ChatServices {
    pub fn new(ports: Ports) -> Self {
        let conversations = ConversationService::new(&ports);
        let messages = MessageService::new(&ports);
        let accounts = AccountService::new(&ports);
        let admin = AdminService::new(&ports, accounts.clone(), messages.clone());
        Self {
            blocks: BlockService::new(&ports),
            reports: ReportService::new(&ports),
            admin,
            accounts,
            sync: SyncService::new(&ports, conversations.clone(), messages.clone()),
            conversations,
            messages,
            reactions: ReactionService::new(&ports),
            delivery: DeliveryService::new(&ports),
            search: SearchService::new(&ports),
            sessions: SessionService::new(&ports),
            presence: PresenceService::new(&ports),
        }
    }

    /// The conversation a message goes to: the one the sender names, or else the direct
    /// conversation with `recipient`, created on first use (as starting it by hand would
    /// be: the recipient must be an active user other than the sender). The message is
    /// checked first, so nothing is created for one that [`MessageService::send`] would
    /// refuse as invalid. Membership of a named conversation is the send's to check.
    pub fn destination(
        &self,
        sender: UserId,
        conversation: Option<ConversationId>,
        recipient: Option<UserId>,
        request: &SendMessage,
    ) -> Result<ConversationId, DomainError> {
        if let Some(conversation) = conversation {
            return Ok(conversation);
        }
        MessageService::validate(request)?;
        let recipient = match recipient {
            Some(recipient) if recipient == sender => {
                return Err(DomainError::invalid("recipient_id", "must be another user"));
            }
            Some(recipient) => recipient,
            None => {
                return Err(DomainError::invalid(
                    "conversation_id",
                    "give conversation_id, or recipient_id for a direct message",
                ));
            }
        };
        let (details, _) = self.conversations.create(
            sender,
            CreateConversation {
                participant_ids: vec![recipient],
                ..Default::default()
            },
        )?;
        Ok(details.conversation.id)
    }
}

/// Applies one limit to one key through the rate-limiter port.
#[derive(Clone)]
struct Throttle {
    limiter: Arc<dyn RateLimiter>,
}

impl Throttle {
    fn new(ports: &Ports) -> Self {
        Self {
            limiter: ports.limiter.clone(),
        }
    }

    /// Takes one action from the budget, or refuses.
    fn acquire(&self, key: &str, quota: Option<Quota>) -> Result<(), DomainError> {
        match quota {
            Some(quota) => self
                .limiter
                .acquire(key, quota)
                .map_err(|retry_after| DomainError::RateLimited { retry_after }),
            None => Ok(()),
        }
    }

    /// Whether the budgets live in another process, so a call may wait on it.
    fn is_remote(&self) -> bool {
        self.limiter.is_remote()
    }

    /// Refuses when the budget is spent, without taking from it.
    fn check(&self, key: &str, quota: Option<Quota>) -> Result<(), DomainError> {
        match quota {
            Some(quota) => self
                .limiter
                .check(key, quota)
                .map_err(|retry_after| DomainError::RateLimited { retry_after }),
            None => Ok(()),
        }
    }
}

/// Refuses anyone but a server admin.
pub(crate) fn require_admin(admins: &dyn AdminStore, user: UserId) -> Result<(), DomainError> {
    if admins.is_admin(user)? {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "only a server admin may do this".into(),
        ))
    }
}

/// The caller's membership, or "not found": a conversation the caller is not in is
/// indistinguishable from one that does not exist.
fn require_member(
    store: &dyn ConversationStore,
    conversation: ConversationId,
    user: UserId,
) -> Result<Member, DomainError> {
    store
        .membership(conversation, user)?
        .ok_or_else(|| DomainError::not_found(Resource::Conversation, conversation))
}

/// Shows a message from `viewer`'s side, given the conversation's current members.
fn view_message(message: Message, members: &[Member], direct: bool, viewer: UserId) -> MessageView {
    let recipient_id = if direct {
        members
            .iter()
            .map(|m| m.user_id)
            .find(|id| *id != message.sender_id)
    } else {
        None
    };
    let is_read = if message.sender_id == viewer {
        members
            .iter()
            .filter(|m| m.user_id != viewer)
            .all(|m| m.last_read_seq >= message.seq)
    } else {
        members
            .iter()
            .find(|m| m.user_id == viewer)
            .is_some_and(|m| m.last_read_seq >= message.seq)
    };
    MessageView {
        message,
        recipient_id,
        is_read,
        viewer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::World;

    fn hello() -> SendMessage {
        SendMessage {
            content: "hello".into(),
            ..Default::default()
        }
    }

    fn field_of(error: DomainError) -> &'static str {
        match error {
            DomainError::Validation(fields) => fields[0].field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_named_conversation_is_the_destination_whatever_the_recipient() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let named = ConversationId::new();
        let to = world
            .services
            .destination(alice, Some(named), Some(bob), &hello())
            .unwrap();
        assert_eq!(to, named);
        assert!(world.store.find_direct(alice, bob).unwrap().is_none());
    }

    #[test]
    fn a_recipient_gets_one_direct_conversation_made_on_first_use_and_reused_after() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let first = world
            .services
            .destination(alice, None, Some(bob), &hello())
            .unwrap();
        let again = world
            .services
            .destination(alice, None, Some(bob), &hello())
            .unwrap();
        let back = world
            .services
            .destination(bob, None, Some(alice), &hello())
            .unwrap();
        assert_eq!((first, first), (again, back));
        let direct = world.store.find_direct(bob, alice).unwrap().unwrap();
        assert_eq!(direct.id, first);
    }

    #[test]
    fn a_message_to_yourself_is_refused_on_recipient_id() {
        let world = World::new();
        let alice = world.user("alice");
        let error = world
            .services
            .destination(alice, None, Some(alice), &hello())
            .unwrap_err();
        assert_eq!(field_of(error), "recipient_id");
    }

    #[test]
    fn a_message_with_neither_conversation_nor_recipient_is_refused_on_conversation_id() {
        let world = World::new();
        let alice = world.user("alice");
        let error = world
            .services
            .destination(alice, None, None, &hello())
            .unwrap_err();
        assert_eq!(field_of(error), "conversation_id");
    }

    #[test]
    fn an_invalid_message_creates_no_conversation() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let empty = SendMessage {
            content: "   ".into(),
            ..Default::default()
        };
        let error = world
            .services
            .destination(alice, None, Some(bob), &empty)
            .unwrap_err();
        assert_eq!(field_of(error), "content");
        assert!(world.store.find_direct(alice, bob).unwrap().is_none());
    }

    #[test]
    fn an_unknown_or_deactivated_recipient_is_not_found() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        world
            .services
            .accounts
            .deactivate(bob, "correct horse")
            .unwrap();
        for recipient in [bob, UserId::new()] {
            let error = world
                .services
                .destination(alice, None, Some(recipient), &hello())
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    DomainError::NotFound {
                        resource: Resource::User,
                        ..
                    }
                ),
                "{error:?}"
            );
        }
        assert!(world.store.find_direct(alice, bob).unwrap().is_none());
    }
}

//! The use cases, one file per group. Each service holds the ports it needs and nothing else.

mod accounts;
mod conversations;
mod messages;
mod reactions;
mod sync;

use std::sync::Arc;

pub use accounts::{AccountService, Authenticated, LoggedIn, ProfileChanges, SignupRequest};
pub use conversations::{ConversationService, CreateConversation};
pub use messages::{Deleted, MessageService, SendMessage};
pub use reactions::ReactionService;
pub use sync::{FeedEvent, FeedPage, FeedQuery, SyncService};

use crate::conversation::Member;
use crate::limits::{Limits, Quota};
use crate::message::{Message, MessageView};
use crate::ports::{
    Clock, ConversationStore, DeviceTokens, EventPublisher, FeedStore, MessageStore,
    PasswordHasher, RateLimiter, ReadReceiptStore, TokenIssuer, TokenRevocations, UserStore,
};
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
    pub revocations: Arc<dyn TokenRevocations>,
    pub events: Arc<dyn EventPublisher>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub tokens: Arc<dyn TokenIssuer>,
    pub devices: Arc<dyn DeviceTokens>,
    pub clock: Arc<dyn Clock>,
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
}

impl ChatServices {
    pub fn new(ports: Ports) -> Self {
        let conversations = ConversationService::new(&ports);
        let messages = MessageService::new(&ports);
        Self {
            accounts: AccountService::new(&ports),
            sync: SyncService::new(&ports, conversations.clone(), messages.clone()),
            conversations,
            messages,
            reactions: ReactionService::new(&ports),
        }
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

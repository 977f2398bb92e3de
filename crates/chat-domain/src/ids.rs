//! Identifier newtypes, so a user id can never be passed where a conversation id is expected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $fresh:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh identifier.
            pub fn new() -> Self {
                Self($fresh())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies a user account.
    UserId,
    Uuid::new_v4
);
uuid_id!(
    /// Identifies a direct or group conversation.
    ConversationId,
    Uuid::new_v4
);
uuid_id!(
    /// Identifies a message. Ordering between messages is by [`crate::message::Seq`], not by
    /// id; ids are time-ordered (UUID v7) only so that new ones land at the end of an index
    /// instead of on a random page of it, which keeps each commit's writes small.
    MessageId,
    Uuid::now_v7
);
uuid_id!(
    /// Identifies an uploaded file (see [`crate::attachment::Attachment`]).
    AttachmentId,
    Uuid::now_v7
);
uuid_id!(
    /// Identifies a login session (see [`crate::session::Session`]): every access and refresh
    /// token handed out since one login, and the refresh tokens rotated from it.
    SessionId,
    Uuid::now_v7
);
uuid_id!(
    /// Identifies a report of a message or a user (see [`crate::report::Report`]).
    ReportId,
    Uuid::now_v7
);

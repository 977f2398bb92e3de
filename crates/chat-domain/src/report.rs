//! Reports: a user flags a message or another user to the server admins, who resolve it.

use chrono::{DateTime, Utc};

use crate::validation::FieldError;
use crate::{MessageId, ReportId, UserId};

/// Why a report was made: free text of 1..=[`ReportReason::MAX_CHARS`] characters once
/// trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportReason(String);

impl ReportReason {
    pub const MAX_CHARS: usize = 1000;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new("reason", "must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                "reason",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An admin's note on resolving a report: at most [`ResolutionNote::MAX_CHARS`] characters,
/// trimmed; empty is no note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolutionNote(String);

impl ResolutionNote {
    pub const MAX_CHARS: usize = 1000;

    pub fn parse(raw: &str) -> Result<Option<Self>, FieldError> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                "note",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        Ok((!trimmed.is_empty()).then(|| Self(trimmed.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether an admin has dealt with a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportStatus {
    Open,
    Resolved,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Open => "open",
            ReportStatus::Resolved => "resolved",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "open" => Some(ReportStatus::Open),
            "resolved" => Some(ReportStatus::Resolved),
            _ => None,
        }
    }
}

/// A report as it is first stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    pub id: ReportId,
    pub reporter_id: UserId,
    /// The reported message, for a report of a message.
    pub message_id: Option<MessageId>,
    /// Whom the report is about: the reported user, or the reported message's sender.
    pub subject_id: UserId,
    pub reason: ReportReason,
    pub created_at: DateTime<Utc>,
}

/// How a report was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub resolved_by: UserId,
    pub resolved_at: DateTime<Utc>,
    pub note: Option<String>,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub id: ReportId,
    pub reporter_id: UserId,
    pub message_id: Option<MessageId>,
    pub subject_id: UserId,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    /// `None` while the report is open.
    pub resolution: Option<Resolution>,
}

impl Report {
    pub fn status(&self) -> ReportStatus {
        if self.resolution.is_some() {
            ReportStatus::Resolved
        } else {
            ReportStatus::Open
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_trimmed_and_must_hold_one_to_a_thousand_characters() {
        assert_eq!(ReportReason::parse("  spam ").unwrap().as_str(), "spam");
        assert!(ReportReason::parse("   ").is_err());
        assert!(ReportReason::parse(&"x".repeat(1000)).is_ok());
        assert!(ReportReason::parse(&"x".repeat(1001)).is_err());
    }

    #[test]
    fn an_empty_note_is_no_note_and_a_long_one_is_refused() {
        assert_eq!(ResolutionNote::parse("  ").unwrap(), None);
        assert_eq!(
            ResolutionNote::parse(" done ").unwrap().unwrap().as_str(),
            "done"
        );
        assert!(ResolutionNote::parse(&"x".repeat(1001)).is_err());
    }

    #[test]
    fn statuses_read_back_as_written_and_nothing_else_parses() {
        for status in [ReportStatus::Open, ReportStatus::Resolved] {
            assert_eq!(ReportStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ReportStatus::parse("Open"), None);
    }
}

//! Reporting a message or a user to the server admins. Resolving reports is the admins'
//! ([`super::AdminService`]).

use std::sync::Arc;

use crate::limits::Limits;
use crate::ports::{Clock, ConversationStore, MessageStore, ReportStore, UserStore};
use crate::report::{NewReport, Report, ReportReason};
use crate::{DomainError, MessageId, ReportId, Resource, UserId};

use super::{Ports, Throttle};

/// What a report is about, as a client names it: exactly one of the two.
#[derive(Debug, Clone, Default)]
pub struct ReportRequest {
    pub message_id: Option<MessageId>,
    pub user_id: Option<UserId>,
    pub reason: String,
}

#[derive(Clone)]
pub struct ReportService {
    throttle: Throttle,
    limits: Limits,
    reports: Arc<dyn ReportStore>,
    users: Arc<dyn UserStore>,
    conversations: Arc<dyn ConversationStore>,
    messages: Arc<dyn MessageStore>,
    clock: Arc<dyn Clock>,
}

impl ReportService {
    pub fn new(ports: &Ports) -> Self {
        Self {
            throttle: Throttle::new(ports),
            limits: ports.limits,
            reports: ports.reports.clone(),
            users: ports.users.clone(),
            conversations: ports.conversations.clone(),
            messages: ports.messages.clone(),
            clock: ports.clock.clone(),
        }
    }

    /// Files a report, open, for the server admins. Exactly one target (else a validation
    /// error on `message_id`); a message must be one the reporter can read and a user must
    /// exist (else [`DomainError::NotFound`], as for anything the reporter cannot see);
    /// reporting yourself or your own message is [`DomainError::Unprocessable`]. Each report
    /// takes one from the reporter's report budget ([`Limits::reports_per_user`]).
    pub fn report(&self, reporter: UserId, request: ReportRequest) -> Result<Report, DomainError> {
        let reason =
            ReportReason::parse(&request.reason).map_err(|e| DomainError::Validation(vec![e]))?;
        let (message_id, subject_id) = match (request.message_id, request.user_id) {
            (Some(message_id), None) => {
                let not_found = || DomainError::not_found(Resource::Message, message_id);
                let message = self.messages.find(message_id)?.ok_or_else(not_found)?;
                self.conversations
                    .membership(message.conversation_id, reporter)?
                    .ok_or_else(not_found)?;
                (Some(message_id), message.sender_id)
            }
            (None, Some(user)) => {
                if self.users.find(user)?.is_none() {
                    return Err(DomainError::not_found(Resource::User, user));
                }
                (None, user)
            }
            _ => {
                return Err(DomainError::invalid(
                    "message_id",
                    "give exactly one of message_id and user_id",
                ));
            }
        };
        if subject_id == reporter {
            return Err(DomainError::Unprocessable(
                "you cannot report yourself or your own message".into(),
            ));
        }
        self.throttle
            .acquire(&format!("report:{reporter}"), self.limits.reports_per_user)?;
        Ok(self.reports.insert_report(&NewReport {
            id: ReportId::new(),
            reporter_id: reporter,
            message_id,
            subject_id,
            reason,
            created_at: self.clock.now(),
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::World;
    use crate::report::ReportStatus;
    use crate::service::{CreateConversation, SendMessage};

    fn about_message(message_id: MessageId) -> ReportRequest {
        ReportRequest {
            message_id: Some(message_id),
            reason: "spam".into(),
            ..Default::default()
        }
    }

    fn about_user(user: UserId) -> ReportRequest {
        ReportRequest {
            user_id: Some(user),
            reason: "abuse".into(),
            ..Default::default()
        }
    }

    /// Alice and Bob in a direct conversation, Bob's message in it; Carol outside.
    fn setup(world: &World) -> (UserId, UserId, UserId, MessageId) {
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        let (details, _) = world
            .services
            .conversations
            .create(
                alice,
                CreateConversation {
                    participant_ids: vec![bob],
                    ..Default::default()
                },
            )
            .unwrap();
        let (sent, _) = world
            .services
            .messages
            .send(
                bob,
                details.conversation.id,
                SendMessage {
                    content: "buy now".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        (alice, bob, carol, sent.message.id)
    }

    #[test]
    fn a_member_reports_a_message_about_its_sender_and_it_is_stored_open() {
        let world = World::new();
        let (alice, bob, _, message) = setup(&world);
        let report = world
            .services
            .reports
            .report(alice, about_message(message))
            .unwrap();
        assert_eq!(report.reporter_id, alice);
        assert_eq!(report.message_id, Some(message));
        assert_eq!(report.subject_id, bob);
        assert_eq!(report.status(), ReportStatus::Open);
        assert_eq!(
            world.store.find_report(report.id).unwrap(),
            Some(report.clone())
        );
    }

    #[test]
    fn a_message_the_reporter_cannot_read_is_not_found_and_nothing_is_stored() {
        let world = World::new();
        let (_, _, carol, message) = setup(&world);
        for target in [message, MessageId::new()] {
            let refused = world.services.reports.report(carol, about_message(target));
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
        assert!(world.store.reports(None, 10).unwrap().is_empty());
    }

    #[test]
    fn a_report_names_exactly_one_target_with_a_reason_and_never_the_reporter() {
        let world = World::new();
        let (alice, bob, carol, message) = setup(&world);
        let reports = &world.services.reports;
        let both = ReportRequest {
            message_id: Some(message),
            user_id: Some(bob),
            reason: "spam".into(),
        };
        for request in [both, ReportRequest::default()] {
            let refused = reports.report(alice, request);
            assert!(
                matches!(refused, Err(DomainError::Validation(_))),
                "{refused:?}"
            );
        }
        let no_reason = ReportRequest {
            reason: " ".into(),
            ..about_user(bob)
        };
        assert!(matches!(
            reports.report(alice, no_reason),
            Err(DomainError::Validation(_))
        ));
        assert!(matches!(
            reports.report(alice, about_user(alice)),
            Err(DomainError::Unprocessable(_))
        ));
        assert!(matches!(
            reports.report(bob, about_message(message)),
            Err(DomainError::Unprocessable(_))
        ));
        assert!(matches!(
            reports.report(alice, about_user(UserId::new())),
            Err(DomainError::NotFound {
                resource: Resource::User,
                ..
            })
        ));
        // Anyone may report any user, conversation or not.
        reports.report(carol, about_user(bob)).unwrap();
        assert_eq!(world.store.reports(None, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_reporter_past_the_report_budget_is_refused_and_nothing_is_stored() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let reports = &world.services.reports;
        let burst = Limits::default().reports_per_user.unwrap().burst;
        for _ in 0..burst {
            reports.report(alice, about_user(bob)).unwrap();
        }
        assert!(matches!(
            reports.report(alice, about_user(bob)),
            Err(DomainError::RateLimited { .. })
        ));
        // The budget is the reporter's own.
        reports.report(bob, about_user(alice)).unwrap();
        let stored = world.store.reports(None, 100).unwrap();
        assert_eq!(stored.len(), burst as usize + 1);
    }
}

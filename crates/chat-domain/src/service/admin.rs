//! What server admins do: list and search users (with their emails), deactivate and
//! reactivate accounts, resolve reports, delete any message for everyone, and read the audit
//! log; and granting or revoking admin from the command line.
//!
//! Every method but [`AdminService::grant`] refuses a caller who is not a server admin
//! ([`DomainError::Forbidden`]). Every action that changes something is written to the audit
//! log ([`AdminStore::record`]) after it succeeded, in a write of its own: an action whose
//! process dies between the two is done but not logged. (Joining the action's transaction
//! would need every port the actions touch to take the audit entry; the log is for
//! accountability, not for recovery.)

use std::sync::Arc;

use crate::admin::{AuditEntry, AuditRecord};
use crate::message::MessageView;
use crate::paging::Page;
use crate::ports::{AdminStore, Clock, ReportStore, UserStore};
use crate::report::{Report, ReportStatus, Resolution, ResolutionNote};
use crate::user::{User, UserQuery};
use crate::{DomainError, MessageId, ReportId, Resource, StoreError, UserId};

use super::{AccountService, MessageService, Ports, require_admin};

/// Whether a grant or revocation changed anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub user: User,
    /// `false`: the user already stood so.
    pub changed: bool,
}

#[derive(Clone)]
pub struct AdminService {
    admins: Arc<dyn AdminStore>,
    users: Arc<dyn UserStore>,
    reports: Arc<dyn ReportStore>,
    clock: Arc<dyn Clock>,
    accounts: AccountService,
    messages: MessageService,
}

impl AdminService {
    /// The most audit entries or reports one page holds.
    pub const MAX_PAGE: u32 = Page::MAX_LIMIT;

    pub fn new(ports: &Ports, accounts: AccountService, messages: MessageService) -> Self {
        Self {
            admins: ports.admins.clone(),
            users: ports.users.clone(),
            reports: ports.reports.clone(),
            clock: ports.clock.clone(),
            accounts,
            messages,
        }
    }

    /// Whether the user is a server admin.
    pub fn is_admin(&self, user: UserId) -> Result<bool, DomainError> {
        Ok(self.admins.is_admin(user)?)
    }

    /// [`grant_admin`] through this service's ports.
    pub fn grant(&self, username: &str, admin: bool) -> Result<Granted, DomainError> {
        grant_admin(&*self.users, &*self.admins, &*self.clock, username, admin)
    }

    /// Users whose username, full name or whole email matches `text` (every user without
    /// text), ranked as [`UserStore::search`] ranks them, deactivated ones included, with
    /// their emails.
    pub fn users(
        &self,
        admin: UserId,
        text: Option<String>,
        page: Page,
    ) -> Result<Vec<User>, DomainError> {
        require_admin(&*self.admins, admin)?;
        let text = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        Ok(self.users.search(&UserQuery { text, page })?)
    }

    /// Deactivates an account as its owner can ([`super::AccountService::deactivate`]),
    /// without the password: its tokens die, its sockets close, the groups it owns pass on.
    /// An admin cannot deactivate themselves here (so a server never loses its last admin by
    /// a slip): [`DomainError::Unprocessable`].
    pub fn deactivate(&self, admin: UserId, user: UserId) -> Result<User, DomainError> {
        require_admin(&*self.admins, admin)?;
        if user == admin {
            return Err(DomainError::Unprocessable(
                "an admin cannot deactivate themselves here; use DELETE /api/v1/users/me".into(),
            ));
        }
        let found = self
            .users
            .find(user)?
            .ok_or_else(|| DomainError::not_found(Resource::User, user))?;
        if !found.is_active {
            return Ok(found);
        }
        let deactivated = self
            .users
            .deactivate(user, self.clock.now())
            .map_err(|e| missing_user(e, user))?;
        self.accounts.withdraw(user)?;
        self.audit(
            Some(admin),
            "user.deactivate",
            user.to_string(),
            deactivated.username.as_str(),
        )?;
        Ok(deactivated)
    }

    /// Reactivates a deactivated account. Tokens issued before the deactivation stay dead;
    /// the user logs in again. Groups handed over when it was deactivated stay handed over.
    pub fn reactivate(&self, admin: UserId, user: UserId) -> Result<User, DomainError> {
        require_admin(&*self.admins, admin)?;
        let (reactivated, changed) = self
            .admins
            .reactivate(user, self.clock.now())
            .map_err(|e| missing_user(e, user))?;
        if changed {
            self.audit(
                Some(admin),
                "user.reactivate",
                user.to_string(),
                reactivated.username.as_str(),
            )?;
        }
        Ok(reactivated)
    }

    /// Reports with `status` (every one when `None`), newest first, at most `limit`.
    pub fn reports(
        &self,
        admin: UserId,
        status: Option<ReportStatus>,
        limit: u32,
    ) -> Result<Vec<Report>, DomainError> {
        require_admin(&*self.admins, admin)?;
        Ok(self.reports.reports(status, limit)?)
    }

    /// Resolves a report, with an optional note. Resolving one already resolved changes
    /// nothing and returns it as it was.
    pub fn resolve_report(
        &self,
        admin: UserId,
        id: ReportId,
        note: Option<&str>,
    ) -> Result<Report, DomainError> {
        require_admin(&*self.admins, admin)?;
        let note = match note {
            Some(raw) => {
                ResolutionNote::parse(raw).map_err(|e| DomainError::Validation(vec![e]))?
            }
            None => None,
        };
        let resolution = Resolution {
            resolved_by: admin,
            resolved_at: self.clock.now(),
            note: note.map(|n| n.as_str().to_owned()),
        };
        let (report, changed) =
            self.reports
                .resolve_report(id, &resolution)
                .map_err(|e| match e {
                    StoreError::Missing => DomainError::not_found(Resource::Report, id),
                    other => other.into(),
                })?;
        if changed {
            let detail = resolution.note.unwrap_or_default();
            self.audit(Some(admin), "report.resolve", id.to_string(), &detail)?;
        }
        Ok(report)
    }

    /// Deletes any message for everyone, whichever conversation it is in; its members hear
    /// of it as of any delete. Returns the tombstone; deleting again changes nothing.
    pub fn delete_message(
        &self,
        admin: UserId,
        message: MessageId,
    ) -> Result<MessageView, DomainError> {
        require_admin(&*self.admins, admin)?;
        let (tombstone, changed) = self.messages.moderate_delete(admin, message)?;
        if changed {
            let detail = format!("in conversation {}", tombstone.message.conversation_id);
            self.audit(Some(admin), "message.delete", message.to_string(), &detail)?;
        }
        Ok(tombstone)
    }

    /// The audit log, newest first: entries with an id below `before` (all when `None`), at
    /// most `limit`.
    pub fn audit_log(
        &self,
        admin: UserId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, DomainError> {
        require_admin(&*self.admins, admin)?;
        Ok(self.admins.audit_log(before, limit)?)
    }

    fn audit(
        &self,
        actor: Option<UserId>,
        action: &'static str,
        target: String,
        detail: &str,
    ) -> Result<AuditRecord, DomainError> {
        Ok(self.admins.record(&AuditEntry {
            actor,
            action,
            target,
            detail: detail.to_owned(),
            at: self.clock.now(),
        })?)
    }
}

/// Makes the user named `username` (ignoring case) a server admin, or takes it away: the
/// command line's `admin grant` / `admin revoke`, which has no other service to hand. A
/// change is audited with no actor; a repeat changes and logs nothing. An unknown username
/// is [`DomainError::NotFound`].
pub fn grant_admin(
    users: &dyn UserStore,
    admins: &dyn AdminStore,
    clock: &dyn Clock,
    username: &str,
    admin: bool,
) -> Result<Granted, DomainError> {
    let user = users
        .find_credentials(username)?
        .map(|(user, _)| user)
        .filter(|user| user.username.as_str().eq_ignore_ascii_case(username))
        .ok_or_else(|| DomainError::not_found(Resource::User, username))?;
    let changed = admins
        .set_admin(user.id, admin)
        .map_err(|e| missing_user(e, user.id))?;
    if changed {
        admins.record(&AuditEntry {
            actor: None,
            action: if admin { "admin.grant" } else { "admin.revoke" },
            target: user.id.to_string(),
            detail: user.username.as_str().to_owned(),
            at: clock.now(),
        })?;
    }
    Ok(Granted { user, changed })
}

fn missing_user(error: StoreError, user: UserId) -> DomainError {
    match error {
        StoreError::Missing => DomainError::not_found(Resource::User, user),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::DomainEvent;
    use crate::fakes::World;
    use crate::ports::{ConversationStore, MessageStore, UserStore};
    use crate::report::ReportStatus;
    use crate::service::{CreateConversation, ReportRequest, SendMessage};

    struct Admin {
        world: World,
        root: UserId,
        alice: UserId,
        bob: UserId,
    }

    fn setup() -> Admin {
        let world = World::new();
        let (root, alice, bob) = (world.user("root"), world.user("alice"), world.user("bob"));
        world.services.admin.grant("ROOT", true).unwrap();
        Admin {
            world,
            root,
            alice,
            bob,
        }
    }

    fn group_message(admin: &Admin) -> (crate::ConversationId, MessageId) {
        let services = &admin.world.services;
        let (details, _) = services
            .conversations
            .create(
                admin.alice,
                CreateConversation {
                    participant_ids: vec![admin.bob],
                    name: Some("team".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        let (sent, _) = services
            .messages
            .send(
                admin.bob,
                details.conversation.id,
                SendMessage {
                    content: "offensive".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        (details.conversation.id, sent.message.id)
    }

    fn actions(admin: &Admin) -> Vec<(Option<UserId>, String)> {
        admin
            .world
            .store
            .audit_log(None, 100)
            .unwrap()
            .into_iter()
            .rev()
            .map(|r| (r.actor, r.action))
            .collect()
    }

    #[test]
    fn a_non_admin_is_refused_every_admin_action_and_nothing_changes() {
        let admin = setup();
        let (_, message) = group_message(&admin);
        let service = &admin.world.services.admin;
        let alice = admin.alice;
        let forbidden = |result: Result<(), DomainError>| {
            assert!(
                matches!(result, Err(DomainError::Forbidden(_))),
                "{result:?}"
            );
        };
        forbidden(service.users(alice, None, Page::default()).map(drop));
        forbidden(service.deactivate(alice, admin.bob).map(drop));
        forbidden(service.reactivate(alice, admin.bob).map(drop));
        forbidden(service.reports(alice, None, 10).map(drop));
        forbidden(
            service
                .resolve_report(alice, ReportId::new(), None)
                .map(drop),
        );
        forbidden(service.delete_message(alice, message).map(drop));
        forbidden(service.audit_log(alice, None, 10).map(drop));
        let stored = MessageStore::find(&*admin.world.store, message)
            .unwrap()
            .unwrap();
        assert!(!stored.is_deleted());
        assert!(
            UserStore::find(&*admin.world.store, admin.bob)
                .unwrap()
                .unwrap()
                .is_active
        );
        assert_eq!(actions(&admin), [(None, "admin.grant".to_owned())]);
    }

    #[test]
    fn granting_and_revoking_by_username_is_audited_once_per_change() {
        let admin = setup();
        let service = &admin.world.services.admin;
        assert!(service.is_admin(admin.root).unwrap());
        assert!(!service.grant("root", true).unwrap().changed);
        assert!(service.grant("alice", true).unwrap().changed);
        assert!(service.grant("alice", false).unwrap().changed);
        assert!(!service.is_admin(admin.alice).unwrap());
        assert!(matches!(
            service.grant("nobody", true),
            Err(DomainError::NotFound { .. })
        ));
        // A login by email is no username.
        assert!(matches!(
            service.grant("bob@example.com", true),
            Err(DomainError::NotFound { .. })
        ));
        let logged: Vec<String> = actions(&admin).into_iter().map(|(_, a)| a).collect();
        assert_eq!(logged, ["admin.grant", "admin.grant", "admin.revoke"]);
        assert!(actions(&admin).iter().all(|(actor, _)| actor.is_none()));
    }

    #[test]
    fn admins_list_and_search_users_with_emails_deactivated_ones_included() {
        let admin = setup();
        let service = &admin.world.services.admin;
        service.deactivate(admin.root, admin.bob).unwrap();
        let all = service.users(admin.root, None, Page::default()).unwrap();
        let names: Vec<&str> = all.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "root"]);
        assert_eq!(all[1].email.as_str(), "bob@example.com");
        let found = service
            .users(admin.root, Some("ali".into()), Page::default())
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, admin.alice);
    }

    #[test]
    fn deactivation_ends_the_users_tokens_and_reactivation_lets_them_log_in_again() {
        let admin = setup();
        let services = &admin.world.services;
        let token = services
            .accounts
            .log_in("bob", "correct horse", None, None)
            .unwrap()
            .access
            .token;
        services.admin.deactivate(admin.root, admin.bob).unwrap();
        assert!(services.accounts.authenticate(&token).is_err());
        assert!(
            services
                .accounts
                .log_in("bob", "correct horse", None, None)
                .is_err()
        );
        let again = services.admin.reactivate(admin.root, admin.bob).unwrap();
        assert!(again.is_active);
        assert!(services.accounts.authenticate(&token).is_err());
        services
            .accounts
            .log_in("bob", "correct horse", None, None)
            .unwrap();
        // Repeats change nothing and log nothing more.
        services.admin.reactivate(admin.root, admin.bob).unwrap();
        let logged: Vec<String> = actions(&admin).into_iter().map(|(_, a)| a).collect();
        assert_eq!(
            logged,
            ["admin.grant", "user.deactivate", "user.reactivate"]
        );
        assert!(matches!(
            services.admin.deactivate(admin.root, admin.root),
            Err(DomainError::Unprocessable(_))
        ));
        assert!(matches!(
            services.admin.reactivate(admin.root, UserId::new()),
            Err(DomainError::NotFound { .. })
        ));
    }

    #[test]
    fn an_admin_deletes_any_message_for_everyone_and_its_members_hear_of_it() {
        let admin = setup();
        let (conversation, message) = group_message(&admin);
        assert!(
            admin
                .world
                .store
                .membership(conversation, admin.root)
                .unwrap()
                .is_none()
        );
        let tombstone = admin
            .world
            .services
            .admin
            .delete_message(admin.root, message)
            .unwrap();
        assert!(tombstone.message.is_deleted());
        let stored = MessageStore::find(&*admin.world.store, message)
            .unwrap()
            .unwrap();
        assert_eq!(stored.content, None);
        assert_eq!(stored.deletion.unwrap().by, admin.root);
        let heard = admin.world.events.take();
        let audience = heard
            .iter()
            .find_map(|e| match e {
                DomainEvent::MessageDeleted { audience, .. } => Some(audience.clone()),
                _ => None,
            })
            .expect("the delete is announced");
        assert_eq!(
            crate::contract::sorted(&audience),
            crate::contract::sorted(&[admin.alice, admin.bob])
        );
        // Again: nothing changes, nothing more is logged.
        admin
            .world
            .services
            .admin
            .delete_message(admin.root, message)
            .unwrap();
        assert!(matches!(
            admin
                .world
                .services
                .admin
                .delete_message(admin.root, MessageId::new()),
            Err(DomainError::NotFound { .. })
        ));
        let logged: Vec<String> = actions(&admin).into_iter().map(|(_, a)| a).collect();
        assert_eq!(logged, ["admin.grant", "message.delete"]);
    }

    #[test]
    fn reports_are_listed_by_status_and_resolved_once_with_the_note() {
        let admin = setup();
        let services = &admin.world.services;
        let (_, message) = group_message(&admin);
        let first = services
            .reports
            .report(
                admin.alice,
                ReportRequest {
                    message_id: Some(message),
                    reason: "rude".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        let second = services
            .reports
            .report(
                admin.bob,
                ReportRequest {
                    user_id: Some(admin.alice),
                    reason: "spam".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        let all = services.admin.reports(admin.root, None, 10).unwrap();
        assert_eq!(
            all.iter().map(|r| r.id).collect::<Vec<_>>(),
            [second.id, first.id]
        );
        let resolved = services
            .admin
            .resolve_report(admin.root, first.id, Some(" warned "))
            .unwrap();
        assert_eq!(resolved.status(), ReportStatus::Resolved);
        let resolution = resolved.resolution.clone().unwrap();
        assert_eq!(resolution.resolved_by, admin.root);
        assert_eq!(resolution.note.as_deref(), Some("warned"));
        let again = services
            .admin
            .resolve_report(admin.root, first.id, Some("other"))
            .unwrap();
        assert_eq!(again, resolved);
        let open = services
            .admin
            .reports(admin.root, Some(ReportStatus::Open), 10)
            .unwrap();
        assert_eq!(open.iter().map(|r| r.id).collect::<Vec<_>>(), [second.id]);
        assert!(matches!(
            services
                .admin
                .resolve_report(admin.root, ReportId::new(), None),
            Err(DomainError::NotFound {
                resource: Resource::Report,
                ..
            })
        ));
        let logged: Vec<String> = actions(&admin).into_iter().map(|(_, a)| a).collect();
        assert_eq!(logged, ["admin.grant", "report.resolve"]);
    }

    #[test]
    fn the_audit_log_pages_newest_first_by_id() {
        let admin = setup();
        let service = &admin.world.services.admin;
        service.deactivate(admin.root, admin.alice).unwrap();
        service.deactivate(admin.root, admin.bob).unwrap();
        let page = service.audit_log(admin.root, None, 2).unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].action, "user.deactivate");
        assert_eq!(page[0].target, admin.bob.to_string());
        assert_eq!(page[0].actor, Some(admin.root));
        let rest = service.audit_log(admin.root, Some(page[1].id), 10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].action, "admin.grant");
    }
}

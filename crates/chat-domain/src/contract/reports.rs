//! The rules of [`ReportStore`](crate::ports::ReportStore).

use crate::contract::{Fixture, Stores};
use crate::conversation::ConversationKind;
use crate::report::{NewReport, ReportReason, ReportStatus, Resolution};
use crate::webhook::EventKind;
use crate::{MessageId, ReportId, StoreError, UserId};

fn new_report<S: Stores + ?Sized>(
    fx: &Fixture<'_, S>,
    reporter: UserId,
    message_id: Option<MessageId>,
    subject_id: UserId,
) -> NewReport {
    NewReport {
        id: ReportId::new(),
        reporter_id: reporter,
        message_id,
        subject_id,
        reason: ReportReason::parse("spam").unwrap(),
        created_at: fx.now(),
    }
}

/// A report reads back open as written, and the list is newest first, filtered by status;
/// each report is in the outbox, written with it.
pub fn a_report_reads_back_open_and_lists_newest_first_by_status<S: Stores + ?Sized>(store: &S) {
    let fx = Fixture::new(store);
    let (alice, bob) = (fx.user("alice"), fx.user("bob"));
    let group = fx.create(ConversationKind::Group, &[alice, bob]).unwrap();
    let message = fx.send(group, bob, "buy now");
    let first = store
        .insert_report(&new_report(&fx, alice, Some(message.id), bob))
        .unwrap();
    let second = store
        .insert_report(&new_report(&fx, bob, None, alice))
        .unwrap();
    assert_eq!(first.message_id, Some(message.id));
    assert_eq!(first.subject_id, bob);
    assert_eq!(first.reason, "spam");
    assert_eq!(first.status(), ReportStatus::Open);
    assert_eq!(store.find_report(first.id).unwrap(), Some(first.clone()));
    assert_eq!(store.find_report(ReportId::new()).unwrap(), None);
    assert_eq!(
        store.reports(None, 10).unwrap(),
        [second.clone(), first.clone()]
    );
    assert_eq!(
        store.reports(None, 1).unwrap(),
        std::slice::from_ref(&second)
    );
    assert_eq!(
        store.reports(Some(ReportStatus::Open), 10).unwrap().len(),
        2
    );
    assert_eq!(store.reports(Some(ReportStatus::Resolved), 10).unwrap(), []);
    // Each report is announced to the webhooks by its own write.
    let announced: Vec<Option<uuid::Uuid>> = store
        .pending_events(1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::ReportCreated)
        .map(|e| e.refs.report_id)
        .collect();
    assert_eq!(announced, [Some(first.id.into()), Some(second.id.into())]);
}

/// Resolving keeps the resolution; a second resolution changes nothing; a missing report is
/// missing.
pub fn a_report_is_resolved_once_and_a_missing_one_is_missing<S: Stores + ?Sized>(store: &S) {
    let fx = Fixture::new(store);
    let (alice, bob, root) = (fx.user("alice"), fx.user("bob"), fx.user("root"));
    let report = store
        .insert_report(&new_report(&fx, alice, None, bob))
        .unwrap();
    let other = store
        .insert_report(&new_report(&fx, bob, None, alice))
        .unwrap();
    let resolution = Resolution {
        resolved_by: root,
        resolved_at: fx.now(),
        note: Some("warned".into()),
    };
    let (resolved, changed) = store.resolve_report(report.id, &resolution).unwrap();
    assert!(changed);
    assert_eq!(resolved.resolution, Some(resolution.clone()));
    let later = Resolution {
        resolved_by: alice,
        resolved_at: fx.now(),
        note: None,
    };
    let (again, changed) = store.resolve_report(report.id, &later).unwrap();
    assert!(!changed);
    assert_eq!(again, resolved);
    assert_eq!(
        store.find_report(report.id).unwrap(),
        Some(resolved.clone())
    );
    assert_eq!(
        store.reports(Some(ReportStatus::Resolved), 10).unwrap(),
        [resolved]
    );
    assert_eq!(
        store.reports(Some(ReportStatus::Open), 10).unwrap(),
        [other]
    );
    assert!(matches!(
        store.resolve_report(ReportId::new(), &later),
        Err(StoreError::Missing)
    ));
}

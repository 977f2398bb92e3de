//! [`ReportStore`] over the `reports` table.

use chat_domain::ports::{ReportStore, StoreResult};
use chat_domain::report::{NewReport, Report, ReportStatus, Resolution};
use chat_domain::webhook::{EventKind, EventRefs};
use chat_domain::{MessageId, ReportId, StoreError};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

use crate::PgStore;
use crate::error::StorageResult;
use crate::schema::reports;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = reports, check_for_backend(diesel::pg::Pg))]
struct ReportRow {
    id: Uuid,
    reporter_id: Uuid,
    message_id: Option<Uuid>,
    subject_id: Uuid,
    reason: String,
    status: String,
    created_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<Uuid>,
    note: Option<String>,
}

impl From<ReportRow> for Report {
    fn from(row: ReportRow) -> Self {
        let resolution = match (row.resolved_by, row.resolved_at) {
            (Some(by), Some(at)) => Some(Resolution {
                resolved_by: by.into(),
                resolved_at: at,
                note: row.note,
            }),
            _ => None,
        };
        Report {
            id: row.id.into(),
            reporter_id: row.reporter_id.into(),
            message_id: row.message_id.map(MessageId::from),
            subject_id: row.subject_id.into(),
            reason: row.reason,
            created_at: row.created_at,
            resolution,
        }
    }
}

impl ReportStore for PgStore {
    fn insert_report(&self, new: &NewReport) -> StoreResult<Report> {
        let row = ReportRow {
            id: new.id.into(),
            reporter_id: new.reporter_id.into(),
            message_id: new.message_id.map(Uuid::from),
            subject_id: new.subject_id.into(),
            reason: new.reason.as_str().to_owned(),
            status: ReportStatus::Open.as_str().to_owned(),
            created_at: new.created_at,
            resolved_at: None,
            resolved_by: None,
            note: None,
        };
        self.write(|conn| {
            let report: Report = diesel::insert_into(reports::table)
                .values(&row)
                .returning(ReportRow::as_returning())
                .get_result::<ReportRow>(conn)?
                .into();
            // Announced to the webhooks in the report's own transaction.
            crate::outbox::record(
                conn,
                EventKind::ReportCreated,
                &report_refs(&report),
                new.created_at,
            )?;
            Ok(report)
        })
    }

    fn find_report(&self, report: ReportId) -> StoreResult<Option<Report>> {
        self.read(|conn| find(conn, report))
    }

    fn reports(&self, status: Option<ReportStatus>, limit: u32) -> StoreResult<Vec<Report>> {
        self.read(|conn| {
            let mut query = reports::table
                .order((reports::created_at.desc(), reports::id.desc()))
                .limit(i64::from(limit))
                .select(ReportRow::as_select())
                .into_boxed();
            if let Some(status) = status {
                query = query.filter(reports::status.eq(status.as_str()));
            }
            Ok(query.load(conn)?.into_iter().map(Report::from).collect())
        })
    }

    fn resolve_report(
        &self,
        report: ReportId,
        resolution: &Resolution,
    ) -> StoreResult<(Report, bool)> {
        self.write(|conn| {
            let changed = diesel::update(
                reports::table
                    .find(Uuid::from(report))
                    .filter(reports::status.eq(ReportStatus::Open.as_str())),
            )
            .set((
                reports::status.eq(ReportStatus::Resolved.as_str()),
                reports::resolved_at.eq(resolution.resolved_at),
                reports::resolved_by.eq(Uuid::from(resolution.resolved_by)),
                reports::note.eq(resolution.note.as_deref()),
            ))
            .execute(conn)?;
            Ok(find(conn, report)?
                .map(|found| (found, changed > 0))
                .ok_or(StoreError::Missing))
        })?
    }
}

fn find(conn: &mut PgConnection, report: ReportId) -> StorageResult<Option<Report>> {
    Ok(reports::table
        .find(Uuid::from(report))
        .select(ReportRow::as_select())
        .first(conn)
        .optional()?
        .map(Report::from))
}

/// What the outbox keeps of a new report.
fn report_refs(report: &Report) -> EventRefs {
    EventRefs {
        conversation_id: None,
        message_id: None,
        user_id: None,
        report_id: Some(report.id.into()),
        seq: None,
    }
}

//! [`ReportStore`] over the `reports` table.

use chat_domain::ports::{ReportStore, StoreResult};
use chat_domain::report::{NewReport, Report, ReportStatus, Resolution};
use chat_domain::webhook::{EventKind, EventRefs};
use chat_domain::{ReportId, StoreError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::SqliteStore;
use crate::error::{StorageError, StorageResult};
use crate::models::{id, ts, utc};
use crate::schema::reports;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = reports, check_for_backend(diesel::sqlite::Sqlite))]
struct ReportRow {
    id: String,
    reporter_id: String,
    message_id: Option<String>,
    subject_id: String,
    reason: String,
    status: String,
    created_at: NaiveDateTime,
    resolved_at: Option<NaiveDateTime>,
    resolved_by: Option<String>,
    note: Option<String>,
}

impl TryFrom<ReportRow> for Report {
    type Error = StorageError;

    fn try_from(row: ReportRow) -> StorageResult<Self> {
        let resolution = match (row.resolved_by, row.resolved_at) {
            (Some(by), Some(at)) => Some(Resolution {
                resolved_by: id("report resolver", &by)?,
                resolved_at: utc(at),
                note: row.note,
            }),
            _ => None,
        };
        Ok(Report {
            id: id("report id", &row.id)?,
            reporter_id: id("reporter id", &row.reporter_id)?,
            message_id: row
                .message_id
                .map(|m| id("reported message id", &m))
                .transpose()?,
            subject_id: id("reported user id", &row.subject_id)?,
            reason: row.reason,
            created_at: utc(row.created_at),
            resolution,
        })
    }
}

impl ReportStore for SqliteStore {
    fn insert_report(&self, new: &NewReport) -> StoreResult<Report> {
        let row = ReportRow {
            id: new.id.to_string(),
            reporter_id: new.reporter_id.to_string(),
            message_id: new.message_id.map(|m| m.to_string()),
            subject_id: new.subject_id.to_string(),
            reason: new.reason.as_str().to_owned(),
            status: ReportStatus::Open.as_str().to_owned(),
            created_at: ts(new.created_at),
            resolved_at: None,
            resolved_by: None,
            note: None,
        };
        self.write(|conn| {
            let report: Report = diesel::insert_into(reports::table)
                .values(&row)
                .returning(ReportRow::as_returning())
                .get_result(conn)?
                .try_into()?;
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
            query
                .load(conn)?
                .into_iter()
                .map(Report::try_from)
                .collect()
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
                    .find(report.to_string())
                    .filter(reports::status.eq(ReportStatus::Open.as_str())),
            )
            .set((
                reports::status.eq(ReportStatus::Resolved.as_str()),
                reports::resolved_at.eq(ts(resolution.resolved_at)),
                reports::resolved_by.eq(resolution.resolved_by.to_string()),
                reports::note.eq(resolution.note.as_deref()),
            ))
            .execute(conn)?;
            Ok(find(conn, report)?
                .map(|found| (found, changed > 0))
                .ok_or(StoreError::Missing))
        })?
    }
}

fn find(conn: &mut SqliteConnection, report: ReportId) -> StorageResult<Option<Report>> {
    reports::table
        .find(report.to_string())
        .select(ReportRow::as_select())
        .first(conn)
        .optional()?
        .map(Report::try_from)
        .transpose()
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

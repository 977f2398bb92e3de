//! A scenario's figures, printed as a table or as JSON.

use serde::Serialize;

use crate::scenario::presence::PresenceReport;
use crate::scenario::webhooks::WebhooksReport;
use crate::scenario::{
    bus::BusReport, catchup::CatchupReport, chat::ChatReport, connections::ConnectionsReport,
    fanout::FanoutReport, files::FilesReport, login::LoginReport, rest::RestReport,
    search::SearchReport,
};

/// One line of a report table: what was measured and its value.
pub type Row = (&'static str, String);

/// The figures of one scenario run. As JSON it is the scenario's report with a `scenario`
/// field naming it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "scenario", rename_all = "snake_case")]
pub enum Report {
    Rest(RestReport),
    Chat(ChatReport),
    Fanout(FanoutReport),
    Catchup(CatchupReport),
    Connections(ConnectionsReport),
    Login(LoginReport),
    Files(FilesReport),
    Bus(BusReport),
    Search(SearchReport),
    Presence(PresenceReport),
    Webhooks(WebhooksReport),
}

impl Report {
    /// Everything that went wrong: errors, timeouts, lost and duplicated deliveries.
    /// Non-zero makes `chat-bench` exit with a failure.
    pub fn failures(&self) -> u64 {
        match self {
            Report::Rest(r) => r.failures.total(),
            Report::Chat(r) => r.failure_count(),
            Report::Fanout(r) => r.failure_count(),
            Report::Catchup(r) => r.failures.total(),
            Report::Connections(r) => r.failures.total(),
            Report::Login(r) => r.failures.total(),
            Report::Files(r) => r.failures.total(),
            Report::Bus(r) => r.failure_count(),
            Report::Search(r) => r.failures.total(),
            Report::Webhooks(r) => r.failure_count(),
            Report::Presence(r) => r.failures.total(),
        }
    }

    pub fn title(&self) -> String {
        match self {
            Report::Rest(r) => r.title(),
            Report::Chat(r) => r.title(),
            Report::Fanout(r) => r.title(),
            Report::Catchup(r) => r.title(),
            Report::Connections(r) => r.title(),
            Report::Login(r) => r.title(),
            Report::Files(r) => r.title(),
            Report::Bus(r) => r.title(),
            Report::Search(r) => r.title(),
            Report::Webhooks(r) => r.title(),
            Report::Presence(r) => r.title(),
        }
    }

    pub fn rows(&self) -> Vec<Row> {
        match self {
            Report::Rest(r) => r.rows(),
            Report::Chat(r) => r.rows(),
            Report::Fanout(r) => r.rows(),
            Report::Catchup(r) => r.rows(),
            Report::Connections(r) => r.rows(),
            Report::Login(r) => r.rows(),
            Report::Files(r) => r.rows(),
            Report::Bus(r) => r.rows(),
            Report::Search(r) => r.rows(),
            Report::Webhooks(r) => r.rows(),
            Report::Presence(r) => r.rows(),
        }
    }

    /// The report as an aligned two-column table, title first.
    pub fn table(&self) -> String {
        let rows = self.rows();
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = format!("{}\n", self.title());
        for (key, value) in rows {
            out.push_str(&format!("  {key:<width$}  {value}\n"));
        }
        let verdict = match self.failures() {
            0 => "ok: no errors, nothing lost".to_owned(),
            n => format!("FAILED: {n} errors, lost or duplicated deliveries"),
        };
        out.push_str(&format!("  {:<width$}  {verdict}\n", "result"));
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// A count with its rate, e.g. `12000 (3998.7/s)`.
pub(crate) fn count_rate(count: u64, per_second: f64) -> String {
    format!("{count} ({per_second:.1}/s)")
}

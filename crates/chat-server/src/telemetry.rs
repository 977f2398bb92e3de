//! Structured logs through `tracing`; `RUST_LOG` sets the level, `CHAT_LOG_FORMAT` the shape.
//!
//! Lines carry ANSI colours only when they go to a terminal: a file or a log collector gets
//! plain text, or one JSON object a line with `CHAT_LOG_FORMAT=json`.
//!
//! A log line at `error` should mean the server needs someone's attention. actix-http logs
//! some failures a client causes at `error` (a request head over its buffer, a malformed
//! request, a bad WebSocket fragment): those are dropped here. The client gets its 4xx or
//! close code, and an operator cannot act on them anyway.

use std::io::IsTerminal;

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// Installs the global subscriber, writing to standard output. Also forwards the `log`
/// records of actix-web's request logger, so each request is one line with its status and
/// duration.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stdout().is_terminal();
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer(format, ansi, std::io::stdout))
        .try_init();
}

/// The formatting layer: text (coloured when `ansi`) or JSON lines, without the events a
/// client causes that libraries log at `error`.
pub fn layer<S, W>(format: LogFormat, ansi: bool, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(writer);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    fmt.with_filter(filter_fn(|meta| !client_caused(meta)))
        .boxed()
}

/// actix-http modules whose `error` events are all about a peer's input or its connection:
/// the HTTP/1 parser and dispatcher ("stream error: ...", "MAX_BUFFER_SIZE unprocessed data
/// reached") and the WebSocket codec ("Unfinished fragment").
const CLIENT_CAUSED: &[&str] = &[
    "actix_http::h1::decoder",
    "actix_http::h1::dispatcher",
    "actix_http::ws",
];

fn client_caused(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::ERROR
        && CLIENT_CAUSED
            .iter()
            .any(|prefix| meta.target().starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn capture(format: LogFormat, ansi: bool, emit: impl FnOnce()) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::registry().with(layer(format, ansi, out.clone()));
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn text_without_a_terminal_has_no_colour_codes() {
        let out = capture(LogFormat::Text, false, || {
            tracing::warn!(user = "alice", "something happened");
        });
        assert!(out.contains("something happened"), "{out}");
        assert!(!out.contains('\x1b'), "{out:?}");
    }

    #[test]
    fn json_format_writes_one_object_a_line() {
        let out = capture(LogFormat::Json, false, || {
            tracing::info!(user = "alice", "first");
            tracing::warn!("second");
        });
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(lines[0]["fields"]["message"], "first");
        assert_eq!(lines[0]["fields"]["user"], "alice");
        assert_eq!(lines[1]["level"], "WARN");
    }

    #[test]
    fn errors_a_client_causes_in_actix_http_are_not_logged_as_errors() {
        let out = capture(LogFormat::Text, false, || {
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: Parse error");
            tracing::error!(target: "actix_http::h1::decoder", "MAX_BUFFER_SIZE unprocessed data reached, closing");
            tracing::error!(target: "actix_http::ws::codec", "Unfinished fragment Text");
            tracing::warn!(target: "actix_http::h1::dispatcher", "kept below error");
            tracing::error!(target: "chat_sqlite::error", "storage failure");
        });
        assert!(!out.contains("stream error"), "{out}");
        assert!(!out.contains("MAX_BUFFER_SIZE"), "{out}");
        assert!(!out.contains("Unfinished fragment"), "{out}");
        assert!(out.contains("kept below error"), "{out}");
        assert!(out.contains("storage failure"), "{out}");
    }
}

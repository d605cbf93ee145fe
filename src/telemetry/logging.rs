//! The process-wide log subscriber: `LOG_FORMAT=text` (the default; colour only on a
//! terminal) or `json` (one object per line), filtered by `LOG_LEVEL`.

use clap::ValueEnum;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init(filter: &str, format: LogFormat) -> Result<(), String> {
    let targets: tracing_subscriber::filter::Targets = filter
        .parse()
        .map_err(|e| format!("LOG_LEVEL {filter:?} is not a valid filter: {e}"))?;
    let (text, json) = match format {
        LogFormat::Text => {
            // Colour only for a person at a terminal: escape codes garble files and pipes.
            let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
            let layer = tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_ansi(colour);
            (Some(layer), None)
        }
        LogFormat::Json => {
            // The event's fields at the top level beside `timestamp` and `level`; the
            // request span (request id, method, route) under `span`.
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_target(false)
                .with_ansi(false);
            (None, Some(layer))
        }
    };
    tracing_subscriber::registry()
        .with(text)
        .with(json)
        .with(targets)
        .try_init()
        .map_err(|e| e.to_string())
}

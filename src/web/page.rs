//! What every page shares: the navigation context, rendering, and safe redirects.

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::WebError;
use crate::domain::roles::Role;

/// The sections of the Account navigation, to mark the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    PersonalTokens,
    Security,
    EventLog,
    Other,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::PersonalTokens => "personal-tokens",
            Section::Security => "security",
            Section::EventLog => "event-log",
            Section::Other => "other",
        }
    }
}

/// The signed-in context the base template draws the header and navigation from.
#[derive(Debug, Clone)]
pub struct Nav {
    pub user_name: String,
    pub account_name: String,
    pub role: Role,
    pub csrf: String,
    pub section: Section,
}

impl Nav {
    /// For templates: is `name` (e.g. "personal-tokens") the current section?
    pub fn is(&self, name: &str) -> bool {
        self.section.name() == name
    }
}

/// Renders a template as an HTML response with the given status.
pub fn render_with(status: StatusCode, page: &impl Template) -> Result<Response, WebError> {
    let body = page.render().map_err(WebError::internal)?;
    Ok((
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response())
}

pub fn render(page: &impl Template) -> Result<Response, WebError> {
    render_with(StatusCode::OK, page)
}

/// Only same-origin absolute paths are followed after sign-in or re-authentication.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(next)
}

pub fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn is_htmx(headers: &axum::http::HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_safe() {
        assert_eq!(
            safe_next("/account/tokens/new"),
            Some("/account/tokens/new")
        );
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "evil",
            "/a\nb",
            "",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}

/// `2026-11-28`
pub fn date(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), t.month() as u8, t.day()),
        Err(_) => "—".to_owned(),
    }
}

/// `2026-11-28 14:05 UTC`
pub fn date_time(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!("{} {:02}:{:02} UTC", date(unix), t.hour(), t.minute()),
        Err(_) => "—".to_owned(),
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn dates_are_iso_like() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date_time(1_800_000_000), "2027-01-15 08:00 UTC");
    }
}

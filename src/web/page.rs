//! What every page shares: the navigation context, rendering, and safe redirects.

use std::fmt;

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::WebError;
use crate::domain::ids::AccountId;
use crate::domain::roles::Role;

/// The sections of the Account navigation, to mark the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    PersonalTokens,
    Security,
    EventLog,
    AccountTokens,
    Users,
    Services,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::PersonalTokens => "personal-tokens",
            Section::Security => "security",
            Section::EventLog => "event-log",
            Section::AccountTokens => "account-tokens",
            Section::Users => "users",
            Section::Services => "services",
        }
    }

    /// The section's first page: where the account switcher returns to.
    pub fn home(self) -> &'static str {
        match self {
            Section::AccountTokens => "/account/account-tokens",
            Section::Users => "/account/users",
            Section::Services => "/account/services",
            Section::Security => "/account/security",
            Section::EventLog => "/account/events",
            Section::PersonalTokens => "/account/tokens",
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
    /// Minutes of sudo mode left (rounded up), shown in the header while it lasts.
    pub sudo_minutes_left: Option<i64>,
    /// The current account's id, and every account of the user for the switcher.
    pub account_id: AccountId,
    pub accounts: Vec<(AccountId, String)>,
    /// The parts of the panel the member may open (the same `domain::access` rule the
    /// handlers enforce, so a hidden entry is also a refused one).
    pub opens: Opens,
    /// The banner of tokens expiring within a week (own; superusers also automation).
    pub expiring: Vec<ExpiringToken>,
    /// More expiring tokens than the banner names.
    pub expiring_more: bool,
    /// The member's notices (e.g. a token of theirs reported exposed), until dismissed.
    pub notices: Vec<NoticeView>,
    /// Where the page was asked at, for the notices' Dismiss to come back to.
    pub here: String,
}

/// One dismissable notice.
#[derive(Debug, Clone)]
pub struct NoticeView {
    pub id: String,
    pub message: String,
    pub link: Option<String>,
    pub when: When,
}

/// One token in the expiry banner.
#[derive(Debug, Clone)]
pub struct ExpiringToken {
    pub name: String,
    pub automation: bool,
    pub when: When,
}

/// A moment as the pages print it: relative words ("in 3 days", "2 hours ago") in a
/// `<time datetime>` with the exact time as its title. It keeps the two instants and
/// its parts are written straight into the page when it renders: a list of a hundred
/// tokens prints some three hundred of these, and a `String` for each part was most of
/// the list's time.
#[derive(Debug, Clone, Copy)]
pub struct When {
    at: i64,
    now: i64,
}

impl When {
    pub fn new(unix: i64, now: i64) -> When {
        When { at: unix, now }
    }

    /// "in 3 days": see `relative`.
    pub fn relative(&self) -> Relative {
        Relative {
            at: self.at,
            now: self.now,
        }
    }

    /// `2027-01-15T08:00:00Z`, for the `datetime` attribute.
    pub fn datetime(&self) -> Timestamp {
        Timestamp(self.at)
    }

    /// `2027-01-15 08:00 UTC`, as `date_time` writes it.
    pub fn exact(&self) -> DateTime {
        DateTime(self.at)
    }
}

/// The distance from `now` to `at` in words, the largest whole unit of it: "in 3 days",
/// "2 hours ago", "just now". Written where it is displayed.
#[derive(Debug, Clone, Copy)]
pub struct Relative {
    at: i64,
    now: i64,
}

impl fmt::Display for Relative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let delta = self.at - self.now;
        let span = delta.abs();
        if span < 60 {
            return f.write_str("just now");
        }
        let (n, unit) = if span < 3_600 {
            (span / 60, "minute")
        } else if span < 86_400 {
            (span / 3_600, "hour")
        } else if span < 30 * 86_400 {
            (span / 86_400, "day")
        } else if span < 365 * 86_400 {
            (span / (30 * 86_400), "month")
        } else {
            (span / (365 * 86_400), "year")
        };
        let plural = if n == 1 { "" } else { "s" };
        if delta > 0 {
            write!(f, "in {n} {unit}{plural}")
        } else {
            write!(f, "{n} {unit}{plural} ago")
        }
    }
}

/// Letters, digits, spaces: nothing to escape.
impl askama::filters::HtmlSafe for Relative {}

/// An instant as RFC 3339 in UTC (`2027-01-15T08:00:00Z`), written where it is displayed.
#[derive(Debug, Clone, Copy)]
pub struct Timestamp(i64);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match rfc3339_seconds(self.0) {
            Some(text) => f.write_str(&text),
            // Before 1970 or after 9999: rare enough for the general formatter.
            None => f.write_str(&crate::api::timestamp(self.0)),
        }
    }
}

/// Digits and separators: nothing to escape.
impl askama::filters::HtmlSafe for Timestamp {}

/// A day, `2026-11-28`, written where it is displayed.
#[derive(Debug, Clone, Copy)]
pub struct Date(pub i64);

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = rfc3339_seconds(self.0) {
            return f.write_str(&text[..10]);
        }
        match time::OffsetDateTime::from_unix_timestamp(self.0) {
            Ok(t) => write!(f, "{:04}-{:02}-{:02}", t.year(), t.month() as u8, t.day()),
            Err(_) => f.write_str("—"),
        }
    }
}

impl askama::filters::HtmlSafe for Date {}

/// A minute, `2026-11-28 14:05 UTC`, written where it is displayed.
#[derive(Debug, Clone, Copy)]
pub struct DateTime(pub i64);

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = rfc3339_seconds(self.0) {
            f.write_str(&text[..10])?;
            f.write_str(" ")?;
            f.write_str(&text[11..16])?;
            return f.write_str(" UTC");
        }
        match time::OffsetDateTime::from_unix_timestamp(self.0) {
            Ok(t) => write!(f, "{} {:02}:{:02} UTC", Date(self.0), t.hour(), t.minute()),
            Err(_) => f.write_str("—"),
        }
    }
}

impl askama::filters::HtmlSafe for DateTime {}

/// `telemetry::text::rfc3339_seconds` as text; None before 1970 or after 9999.
fn rfc3339_seconds(unix: i64) -> Option<ShortStamp> {
    crate::telemetry::text::rfc3339_seconds(unix).map(ShortStamp)
}

/// The 20 ASCII bytes of an RFC 3339 time, readable as a `str`.
struct ShortStamp([u8; 20]);

impl std::ops::Deref for ShortStamp {
    type Target = str;

    fn deref(&self) -> &str {
        // Digits and ASCII separators only (`rfc3339_seconds`).
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// Which administrative pages the navigation offers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Opens {
    pub account_tokens: bool,
    pub users: bool,
    pub services: bool,
}

impl Nav {
    /// For templates: is `name` (e.g. "personal-tokens") the current section?
    pub fn is(&self, name: &str) -> bool {
        self.section.name() == name
    }

    /// For templates: may the member open this part of the panel?
    pub fn shows(&self, part: &str) -> bool {
        match part {
            "account-tokens" => self.opens.account_tokens,
            "users" => self.opens.users,
            "services" => self.opens.services,
            _ => false,
        }
    }
}

/// What base.html draws around every page: the title, and for a signed-in member the
/// header and the Account navigation. Built by `SignedIn::layout` or `Layout::anonymous`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub nav: Option<Nav>,
}

impl Layout {
    /// For the pages of someone not signed in: sign-in, setup, set-password, errors.
    pub fn anonymous(title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            nav: None,
        }
    }

    /// For templates: the session's CSRF token, which every form of a signed-in page
    /// carries. Anonymous pages have none here; their forms get theirs from the handler.
    pub fn csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |nav| nav.csrf.as_str())
    }
}

/// The messages of a rejected form, each for the field (or group of fields) it is about,
/// in the order found. Templates show them with the macros in templates/macros.html.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn one(field: &'static str, message: impl Into<String>) -> FieldErrors {
        FieldErrors(vec![(field, message.into())])
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The message about `field`, the first one when there are several.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

impl FromIterator<(&'static str, String)> for FieldErrors {
    fn from_iter<I: IntoIterator<Item = (&'static str, String)>>(iter: I) -> Self {
        FieldErrors(iter.into_iter().collect())
    }
}

/// The "no error" default of the field macros (templates/macros.html): a bare `None`
/// there would leave the message type unknown.
pub const NO_ERROR: Option<&str> = None;

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

/// Tells the client when to try again (after a 429), in seconds.
pub fn with_retry_after(mut response: Response, seconds: i64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, seconds.max(1).into());
    response
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

/// A date typed as `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<time::Date> {
    let mut parts = s.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

/// `2026-11-28`
pub fn date(unix: i64) -> String {
    Date(unix).to_string()
}

/// `2026-11-28 14:05 UTC`
pub fn date_time(unix: i64) -> String {
    DateTime(unix).to_string()
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn relative_times() {
        let now = 1_800_000_000;
        let relative = |at, now| When::new(at, now).relative().to_string();
        assert_eq!(relative(now + 3 * 86_400 + 5, now), "in 3 days");
        assert_eq!(relative(now - 2 * 3_600 - 59, now), "2 hours ago");
        assert_eq!(relative(now + 61, now), "in 1 minute");
        assert_eq!(relative(now - 30, now), "just now");
        assert_eq!(relative(now - 400 * 86_400, now), "1 year ago");
        assert_eq!(relative(now + 60 * 86_400, now), "in 2 months");
        let when = When::new(now, now);
        assert_eq!(when.datetime().to_string(), "2027-01-15T08:00:00Z");
        assert_eq!(when.exact().to_string(), "2027-01-15 08:00 UTC");
        assert_eq!(when.relative().to_string(), "just now");
    }

    #[test]
    fn dates_are_iso_like() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date_time(1_800_000_000), "2027-01-15 08:00 UTC");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date_time(-61), "1969-12-31 23:58 UTC");
        assert_eq!(date(i64::MAX), "—");
        assert_eq!(date_time(253_402_300_800), "—", "after 9999");
    }

    /// The fast path (`rfc3339_seconds`) writes what the general formatter writes, at
    /// the edges of its range and in between.
    #[test]
    fn written_times_agree_with_the_general_formatter() {
        let general = |unix: i64| {
            let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
            (
                format!("{:04}-{:02}-{:02}", t.year(), t.month() as u8, t.day()),
                format!(
                    "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                    t.year(),
                    t.month() as u8,
                    t.day(),
                    t.hour(),
                    t.minute()
                ),
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    t.year(),
                    t.month() as u8,
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                ),
            )
        };
        let last_four_digit_second = 253_402_300_799;
        let mut moments = vec![
            -86_401,
            -1,
            0,
            59,
            951_782_400, // 2000-02-29
            4_107_542_399,
            last_four_digit_second,
        ];
        let mut x: i64 = 88_172_645_463_325_252;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            moments.push(x.rem_euclid(last_four_digit_second + 1));
        }
        for unix in moments {
            let (day, minute, second) = general(unix);
            assert_eq!(Date(unix).to_string(), day, "{unix}");
            assert_eq!(DateTime(unix).to_string(), minute, "{unix}");
            assert_eq!(When::new(unix, 0).datetime().to_string(), second, "{unix}");
        }
    }

    #[test]
    fn any_date_text_parses_or_not_without_panic() {
        let mut inputs = crate::domain::fuzz::Inputs::new(19);
        for i in 0..20_000 {
            let text = if i % 2 == 0 {
                inputs.time_text()[..10].to_owned()
            } else {
                inputs.text(8)
            };
            if let Some(day) = parse_date(&text) {
                let printed = format!(
                    "{:04}-{:02}-{:02}",
                    day.year(),
                    day.month() as u8,
                    day.day()
                );
                if (0..=9999).contains(&day.year()) {
                    assert_eq!(parse_date(&printed), Some(day));
                }
            }
        }
    }
}

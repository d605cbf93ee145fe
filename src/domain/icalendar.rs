//! A token-expiry calendar in iCalendar (RFC 5545): CRLF line ends, text escaped
//! (backslash, semicolon, comma, newline), lines folded at 75 octets, one event per
//! expiring token with a reminder a week before.

use std::fmt::Write as _;

/// One event: a token's expiry.
#[derive(Debug, Clone)]
pub struct ExpiryEvent<'a> {
    /// Unique and stable for the token, e.g. its id.
    pub uid: &'a str,
    pub summary: &'a str,
    pub description: &'a str,
    pub at: i64,
}

/// `20270115T080000Z`
fn utc(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "19700101T000000Z".to_owned(),
    }
}

/// TEXT value escaping (RFC 5545 3.3.11).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line, folded so no line exceeds 75 octets (never inside a
/// UTF-8 character), ended by CRLF.
fn line(out: &mut String, content: &str) {
    let mut width = 0;
    for c in content.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

pub fn calendar(name: &str, events: &[ExpiryEvent<'_>], now: i64) -> String {
    let mut out = String::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, "PRODID:-//tokenpanel//token expiry//EN");
    line(&mut out, "CALSCALE:GREGORIAN");
    line(&mut out, "METHOD:PUBLISH");
    line(&mut out, &format!("X-WR-CALNAME:{}", escape(name)));
    let stamp = utc(now);
    for event in events {
        line(&mut out, "BEGIN:VEVENT");
        line(&mut out, &format!("UID:{}@tokenpanel", escape(event.uid)));
        line(&mut out, &format!("DTSTAMP:{stamp}"));
        line(&mut out, &format!("DTSTART:{}", utc(event.at)));
        line(&mut out, &format!("DTEND:{}", utc(event.at + 15 * 60)));
        line(&mut out, &format!("SUMMARY:{}", escape(event.summary)));
        line(
            &mut out,
            &format!("DESCRIPTION:{}", escape(event.description)),
        );
        line(&mut out, "TRANSP:TRANSPARENT");
        line(&mut out, "BEGIN:VALARM");
        line(&mut out, "ACTION:DISPLAY");
        line(&mut out, "TRIGGER:-P7D");
        let mut alarm = String::new();
        let _ = write!(alarm, "DESCRIPTION:{}", escape(event.summary));
        line(&mut out, &alarm);
        line(&mut out, "END:VALARM");
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a,b;c\\d\ne\r"), "a\\,b\\;c\\\\d\\ne");
    }

    #[test]
    fn a_calendar_is_crlf_folded_and_complete() {
        let long = "é".repeat(60);
        let events = [ExpiryEvent {
            uid: "tok1",
            summary: "Token \"deploy, prod\" expires",
            description: &long,
            at: 1_800_000_000,
        }];
        let ics = calendar("Token expiry", &events, 1_700_000_000);
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert!(
            !ics.replace("\r\n", "").contains('\n'),
            "only CRLF line ends"
        );
        for l in ics.split("\r\n") {
            assert!(l.len() <= 75, "{l:?} is {} octets", l.len());
        }
        assert!(ics.contains("SUMMARY:Token \"deploy\\, prod\" expires\r\n"));
        assert!(ics.contains("DTSTART:20270115T080000Z\r\n"));
        assert!(ics.contains("DTSTAMP:20231114T221320Z\r\n"));
        assert!(ics.contains("UID:tok1@tokenpanel\r\n"));
        // Unfolding gives the description back whole.
        let unfolded = ics.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("DESCRIPTION:{long}\r\n")));
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 1);
    }
}

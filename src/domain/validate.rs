//! Field rules shared by the pages and the API.

/// Token and service names: 1–255 characters after trimming.
pub fn name(raw: &str, field: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(format!("{field} is required."));
    }
    if trimmed.chars().count() > 255 {
        return Err(format!("{field} must be at most 255 characters."));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(format!("{field} cannot contain control characters."));
    }
    Ok(trimmed.to_owned())
}

/// The longest description a token may carry, in characters.
pub const MAX_DESCRIPTION: usize = 500;

/// A token's optional description: trimmed, at most `MAX_DESCRIPTION` characters, no
/// control characters but line breaks and tabs; empty is none.
pub fn description(raw: &str) -> Result<Option<String>, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > MAX_DESCRIPTION {
        return Err(format!(
            "The description must be at most {MAX_DESCRIPTION} characters."
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err("The description cannot contain control characters.".to_owned());
    }
    // Line ends are stored as `\n` whatever the browser sent.
    Ok(Some(trimmed.replace("\r\n", "\n").replace('\r', "\n")))
}

/// Emails are compared case-insensitively, so they are stored lower-cased.
pub fn email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err("Enter a valid email address.".to_owned());
    }
    // `.invalid` is reserved (RFC 2606): no mail is ever delivered there, and the
    // synthetic legacy-key users live in it, so no person may take such an address.
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    if domain == "invalid" || domain.ends_with(".invalid") {
        return Err(
            "Addresses ending in .invalid are reserved. Enter a real email address.".to_owned(),
        );
    }
    Ok(email)
}

/// The latest moment a token may expire: the end of year 9999, the last a date field
/// (and the API's timestamps) can write.
pub const LATEST_EXPIRY: i64 = 253_402_300_799;

/// An expiry time chosen for a new token: after `now`, and no later than `LATEST_EXPIRY`.
pub fn expiry(at: i64, now: i64) -> Result<i64, &'static str> {
    if at <= now {
        return Err("The expiration must be in the future.");
    }
    if at > LATEST_EXPIRY {
        return Err("The expiration must be no later than 9999-12-31T23:59:59Z.");
    }
    Ok(at)
}

pub const MIN_PASSWORD_LEN: usize = 12;

pub fn new_password(password: &str, confirmation: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!("Use at least {MIN_PASSWORD_LEN} characters."));
    }
    if password.len() > 1024 {
        return Err("Use at most 1024 bytes.".to_owned());
    }
    if password != confirmation {
        return Err("The two passwords do not match.".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  ci deploy ", "Name").unwrap(), "ci deploy");
        assert!(name("   ", "Name").is_err());
        assert!(name(&"x".repeat(255), "Name").is_ok());
        assert!(name(&"x".repeat(256), "Name").is_err());
        assert!(name("a\u{0}b", "Name").is_err());
    }

    #[test]
    fn descriptions_are_optional_trimmed_and_bounded() {
        assert_eq!(description("   "), Ok(None));
        assert_eq!(
            description(" deploys\r\nthe site ").unwrap().as_deref(),
            Some("deploys\nthe site")
        );
        assert!(description(&"é".repeat(500)).is_ok());
        assert!(description(&"é".repeat(501)).is_err());
        assert!(description("a\u{7}b").is_err());
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(email(" Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a da@example.com",
            "ada@.com",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reserved_invalid_addresses_belong_to_nobody() {
        for reserved in [
            "global-api-token@acc123.legacy.invalid",
            "Someone@Example.INVALID",
            "x@invalid",
        ] {
            let refused = email(reserved).expect_err(reserved);
            assert!(refused.contains("reserved"), "{refused}");
        }
        assert!(email("ada@invalid.example.com").is_ok());
    }

    #[test]
    fn new_passwords_need_length_and_confirmation() {
        assert!(new_password("correct horse battery", "correct horse battery").is_ok());
        assert!(new_password("short", "short").is_err());
        assert!(new_password("correct horse battery", "correct horse batterx").is_err());
    }

    #[test]
    fn expiries_lie_between_now_and_the_end_of_9999() {
        assert_eq!(expiry(101, 100), Ok(101));
        assert!(expiry(100, 100).is_err());
        assert_eq!(expiry(LATEST_EXPIRY, 100), Ok(LATEST_EXPIRY));
        assert!(expiry(LATEST_EXPIRY + 1, 100).is_err());
        // 9999-12-31T23:59:59-23:59 is a day into year 10000.
        assert!(expiry(LATEST_EXPIRY + 23 * 3600 + 59 * 60, 100).is_err());
    }
}

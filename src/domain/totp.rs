//! Time-based one-time passwords (RFC 6238: SHA-1, 6 digits, 30-second steps) and
//! recovery codes. The previous and next step are accepted for clock drift; the caller
//! refuses a step at or before the last one accepted (replay).

use totp_rs::{Algorithm, Secret, TOTP};

use super::random;

pub const STEP_SECONDS: i64 = 30;
pub const RECOVERY_CODES: usize = 10;

/// A fresh 160-bit secret, base32-encoded as authenticator apps expect.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 20];
    random::fill(&mut bytes);
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

fn totp(secret_base32: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_base32.to_owned()).to_bytes().ok()?;
    TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECONDS as u64, bytes).ok()
}

pub fn step_of(unix: i64) -> i64 {
    unix.div_euclid(STEP_SECONDS)
}

/// The code for a step (tests and enrolment checks).
#[cfg(any(test, feature = "testkit"))]
pub fn code_at(secret_base32: &str, unix: i64) -> Option<String> {
    Some(totp(secret_base32)?.generate(u64::try_from(unix).ok()?))
}

/// The step a valid `code` belongs to, among the previous, current and next step.
pub fn matching_step(secret_base32: &str, code: &str, now: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret_base32)?;
    let current = step_of(now);
    let mut found = None;
    // Check every candidate so the time taken does not depend on which one matched.
    for step in [current - 1, current, current + 1] {
        let Ok(at) = u64::try_from(step * STEP_SECONDS) else {
            continue;
        };
        let expected = totp.generate(at);
        if bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            code.as_bytes(),
        )) {
            found = Some(step);
        }
    }
    found
}

/// `otpauth://` URI for authenticator apps.
pub fn otpauth_uri(secret_base32: &str, issuer: &str, account: &str) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_base32}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// The URI as a QR code, an inline SVG (no script, allowed by the CSP).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Drop the XML declaration: the SVG goes inline into an HTML page.
    let start = svg.find("<svg")?;
    Some(svg[start..].to_owned())
}

/// Ten recovery codes like `k3f9-x2pq-7hd4`.
pub fn recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let raw = random::base62(12).to_lowercase();
            format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12])
        })
        .collect()
}

/// Recovery codes are compared without case, spaces or dashes.
pub fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_test_vector() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", T = 59 → 94287082 (8 digits).
        let secret = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        assert_eq!(code_at(&secret, 59).unwrap(), "287082");
        assert_eq!(code_at(&secret, 1_111_111_109).unwrap(), "081804");
    }

    #[test]
    fn window_is_one_step_each_way() {
        let secret = generate_secret();
        let now = 1_800_000_015;
        let step = step_of(now);
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_at(&secret, (step + offset) * STEP_SECONDS).unwrap();
            let found = matching_step(&secret, &code, now);
            assert_eq!(found.is_some(), accepted, "offset {offset}");
            if accepted {
                assert_eq!(found, Some(step + offset));
            }
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn uri_qr_and_recovery_codes() {
        let secret = generate_secret();
        let uri = otpauth_uri(&secret, "tokenpanel", "ada@example.com");
        assert!(uri.starts_with("otpauth://totp/tokenpanel:ada%40example%2Ecom?secret="));
        assert!(qr_svg(&uri).unwrap().starts_with("<svg"));
        let codes = recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(normalise_recovery_code(&codes[0].to_uppercase()).len(), 12);
    }
}

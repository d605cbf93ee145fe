//! Token strings: a prefix that names the kind, a random body and a checksum, in the
//! style of GitHub's tokens, so leaked tokens are easy to scan for and a malformed key
//! is refused before any database work. Only a SHA-256 digest is ever stored.

use std::fmt;

use sha2::{Digest, Sha256};

use super::random;

const BODY_LEN: usize = 36;
const CHECKSUM_LEN: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    User,
    Automation,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::User => "user",
            TokenKind::Automation => "automation",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            TokenKind::User => "tpu_",
            TokenKind::Automation => "tpa_",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(TokenKind::User),
            "automation" => Some(TokenKind::Automation),
            _ => None,
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TokenKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TokenKind::parse(s).ok_or_else(|| format!("unknown token kind {s:?}"))
    }
}

/// A token string in clear. Its `Debug` never shows it; only `expose` does, on the one
/// response that hands it to its owner.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

impl TokenSecret {
    pub fn generate(kind: TokenKind) -> Self {
        let prefix = kind.prefix();
        let body = random::base62(BODY_LEN);
        let check = checksum(prefix, &body);
        let check = std::str::from_utf8(&check).unwrap_or_default();
        TokenSecret(format!("{prefix}{body}{check}"))
    }

    /// An imported legacy API key, when it has the shape of one.
    pub fn from_legacy_key(key: &str) -> Option<Self> {
        is_legacy_shape(key).then(|| TokenSecret(key.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> String {
        digest(&self.0)
    }
}

/// Hex SHA-256 of a presented key: the only form a token is stored in.
pub fn digest(key: &str) -> String {
    hex(&digest_bytes(key))
}

/// The SHA-256 of a presented key, raw: the key of the verified-token cache.
pub fn digest_bytes(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Lower-case hex of a digest, as stored.
pub fn hex(digest: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// Checks the shape of a presented key without touching the database. Keys without our
/// prefix are accepted only in the shape of imported legacy API keys.
pub fn check_shape(key: &str) -> Result<(), Malformed> {
    for kind in [TokenKind::User, TokenKind::Automation] {
        if let Some(rest) = key.strip_prefix(kind.prefix()) {
            if rest.len() != BODY_LEN + CHECKSUM_LEN || !random::is_base62(rest) {
                return Err(Malformed);
            }
            let (body, check) = rest.split_at(BODY_LEN);
            return if checksum(kind.prefix(), body) == check.as_bytes() {
                Ok(())
            } else {
                Err(Malformed)
            };
        }
    }
    if is_legacy_shape(key) {
        Ok(())
    } else {
        Err(Malformed)
    }
}

/// Legacy API keys are opaque strings; we accept 16–128 characters of `[A-Za-z0-9_-]`.
pub fn is_legacy_shape(key: &str) -> bool {
    (16..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The base62 check characters of a key's prefix and body (CRC-32, big-endian digits).
fn checksum(prefix: &str, body: &str) -> [u8; CHECKSUM_LEN] {
    let mut crc = crc32(prefix.as_bytes(), 0);
    crc = crc32(body.as_bytes(), crc);
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut value = crc as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = alphabet[(value % 62) as usize];
        value /= 62;
    }
    out
}

/// CRC-32 (IEEE) of every byte value, built at compile time: every API request checks
/// a key's checksum, and a byte at a time from the table is eight times fewer steps
/// than bit by bit.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut crc = n as u32;
        let mut bit = 0;
        while bit < 8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            bit += 1;
        }
        table[n] = crc;
        n += 1;
    }
    table
};

/// CRC-32 (IEEE), continuing from a previous value.
fn crc32(bytes: &[u8], previous: u32) -> u32 {
    let mut crc = !previous;
    for &byte in bytes {
        crc = (crc >> 8) ^ CRC_TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize];
    }
    !crc
}

#[cfg(test)]
mod tests {

    #[test]
    fn digests_are_lower_case_hex_sha256() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&digest_bytes("abc")), digest("abc"));
    }

    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789", 0), 0xCBF4_3926);
    }

    #[test]
    fn generated_tokens_pass_their_own_check() {
        for kind in [TokenKind::User, TokenKind::Automation] {
            let secret = TokenSecret::generate(kind);
            assert!(secret.expose().starts_with(kind.prefix()));
            assert_eq!(secret.expose().len(), 4 + BODY_LEN + CHECKSUM_LEN);
            assert_eq!(check_shape(secret.expose()), Ok(()));
        }
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let secret = TokenSecret::generate(TokenKind::User);
        let mut chars: Vec<char> = secret.expose().chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let tampered: String = chars.into_iter().collect();
        assert_eq!(check_shape(&tampered), Err(Malformed));
        assert_eq!(check_shape("tpu_short"), Err(Malformed));
        assert_eq!(check_shape("not a key!"), Err(Malformed));
        assert_eq!(check_shape(""), Err(Malformed));
    }

    #[test]
    fn legacy_keys_have_their_own_shape() {
        assert_eq!(check_shape("0123456789abcdef0123456789abcdef"), Ok(()));
        assert_eq!(check_shape("short"), Err(Malformed));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = TokenSecret::generate(TokenKind::User);
        assert!(!format!("{secret:?}").contains(secret.expose()));
        assert_eq!(secret.digest().len(), 64);
        assert_eq!(secret.digest(), digest(secret.expose()));
    }

    #[test]
    fn any_string_is_checked_without_panic_and_one_changed_character_fails() {
        let mut inputs = super::super::fuzz::Inputs::new(13);
        for _ in 0..20_000 {
            let _ = check_shape(&inputs.text(40));
        }
        for kind in [TokenKind::User, TokenKind::Automation] {
            for _ in 0..200 {
                let secret = TokenSecret::generate(kind);
                let key = secret.expose();
                assert_eq!(check_shape(key), Ok(()));
                // Change one character of the body or checksum: the checksum catches it.
                let at =
                    4 + (inputs.bytes(1).first().copied().unwrap_or(0) as usize % (key.len() - 4));
                let mut changed: Vec<u8> = key.bytes().collect();
                changed[at] = if changed[at] == b'a' { b'b' } else { b'a' };
                let changed = String::from_utf8(changed).unwrap();
                assert_eq!(check_shape(&changed), Err(Malformed), "{at}");
            }
        }
    }
}

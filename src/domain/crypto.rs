//! The server key and authenticated encryption of secrets at rest (TOTP secrets), so a
//! copy of the database alone reveals none of them.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use super::random;

const VERSION: &str = "v1";

/// 32 bytes from the configuration or the key file. `Debug` never shows them.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct CryptoError;

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the value cannot be decrypted with this server key")
    }
}

impl std::error::Error for CryptoError {}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl SecretKey {
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        random::fill(&mut key);
        SecretKey(key)
    }

    /// An HMAC-SHA256 of `message` under a key derived from this one for `purpose`, so
    /// values signed for one use are worth nothing for another.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        type HmacSha256 = Hmac<sha2::Sha256>;
        let derive = |key: &[u8], data: &[u8]| -> [u8; 32] {
            // Any key length is accepted by HMAC, so this cannot fail.
            let mut mac =
                <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
            mac.update(data);
            mac.finalize().into_bytes().into()
        };
        let purpose_key = derive(&self.0, purpose.as_bytes());
        derive(&purpose_key, message)
    }

    /// 64 hexadecimal characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = from_hex(s.trim())?;
        Some(SecretKey(bytes.try_into().ok()?))
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// Encrypts `plain`, bound to `context` (e.g. the user id) so a ciphertext moved to
    /// another row does not decrypt.
    pub fn encrypt(&self, plain: &[u8], context: &str) -> String {
        let mut nonce = [0u8; 12];
        random::fill(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encryption of a short value cannot fail");
        format!("{VERSION}:{}{}", to_hex(&nonce), to_hex(&sealed))
    }

    pub fn decrypt(&self, stored: &str, context: &str) -> Result<Vec<u8>, CryptoError> {
        let hex = stored.strip_prefix("v1:").ok_or(CryptoError)?;
        let bytes = from_hex(hex).ok_or(CryptoError)?;
        if bytes.len() < 12 + 16 {
            return Err(CryptoError);
        }
        let (nonce, sealed) = bytes.split_at(12);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CryptoError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let key = SecretKey::generate();
        let sealed = key.encrypt(b"JBSWY3DPEHPK3PXP", "user-1");
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(key.decrypt(&sealed, "user-1").unwrap(), b"JBSWY3DPEHPK3PXP");
        assert_eq!(
            key.decrypt(&sealed, "user-2"),
            Err(CryptoError),
            "bound to its row"
        );
        assert_eq!(
            SecretKey::generate().decrypt(&sealed, "user-1"),
            Err(CryptoError),
            "another key"
        );
        assert_eq!(key.decrypt("v1:zz", "user-1"), Err(CryptoError));
        assert_eq!(key.decrypt("plain", "user-1"), Err(CryptoError));
    }

    #[test]
    fn keys_parse_from_hex_only_at_full_length() {
        let key = SecretKey::generate();
        assert_eq!(SecretKey::from_hex(&key.to_hex()).unwrap().0, key.0);
        assert!(SecretKey::from_hex("abcd").is_none());
        assert!(SecretKey::from_hex(&"g".repeat(64)).is_none());
        assert!(!format!("{key:?}").contains(&key.to_hex()));
    }
}

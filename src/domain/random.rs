//! Random identifiers and secrets, always from the operating system's CSPRNG.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` base62 characters, each drawn without modulo bias.
pub fn base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill(&mut buf);
        for &byte in &buf {
            // 248 = 4 * 62: values at or above it would favour the first characters.
            if byte < 248 {
                out.push(BASE62[(byte % 62) as usize] as char);
                if out.len() == len {
                    break;
                }
            }
        }
    }
    out
}

pub fn fill(buf: &mut [u8]) {
    // The OS RNG failing leaves no safe way to go on: no secret may be made without it.
    getrandom::getrandom(buf).expect("the operating system's random number generator failed");
}

/// A public identifier: 22 base62 characters (about 131 bits), like Fastly's ids.
pub fn id() -> String {
    base62(22)
}

pub fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_22_base62_chars_and_differ() {
        let a = id();
        let b = id();
        assert_eq!(a.len(), 22);
        assert!(is_base62(&a));
        assert_ne!(a, b);
    }
}

//! The rules of the product, free of HTTP and SQL so they can be unit-tested.

pub mod crypto;
pub mod grant;
pub mod password;
pub mod policy;
pub mod random;
pub mod roles;
pub mod secret;
pub mod totp;
pub mod validate;

//! The rules of the product, free of HTTP and SQL so they can be unit-tested.

pub mod admin;
pub mod grant;
pub mod password;
pub mod random;
pub mod roles;
pub mod secret;
pub mod validate;

//! The rules of the product, free of HTTP and SQL so they can be unit-tested.

pub mod access;
pub mod cidr;
pub mod crypto;
pub mod event_type;
#[cfg(test)]
pub mod fuzz;
pub mod grant;
pub mod icalendar;
pub mod ids;
pub mod member_rules;
pub mod password;
pub mod random;
pub mod roles;
pub mod secret;
pub mod token_policy;
pub mod totp;
pub mod user_agent;
pub mod validate;

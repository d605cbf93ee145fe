//! Integration tests: the real server on a random port, on SQLite and (with
//! TEST_DATABASE_URL) on PostgreSQL, set up through `tokenpanel::testkit`. One binary,
//! so it links once.

mod api;
mod cli;
mod event_log;
mod expiry_warnings;
mod fastly_clients;
mod foundation;
mod hardening;
mod invitations;
mod leaked_tokens;
mod lifecycle;
mod operations;
mod personal_tokens;
mod sessions;
mod superusers;
mod token_cache;
mod token_policy;
mod token_roll;
mod two_factor;

//! tokenpanel: a control panel for API tokens with a Fastly-compatible JSON API.
//!
//! `cli` parses the command line, `app` wires state and routers together, `web` serves
//! HTML pages, `api` the token-authenticated JSON API, `db` holds every SQL statement,
//! and `domain` holds the rules (roles, scopes, token secrets, passwords) with their
//! unit tests.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tokens;
pub mod web;

pub use app::{AppState, Server};

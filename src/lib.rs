//! tokenpanel: a control panel for API tokens with a Fastly-compatible JSON API.
//!
//! `cli` parses the command line and `app` serves one router made of `web` (the HTML
//! pages) and `api` (the token-authenticated JSON API), which share `http`. Both turn
//! requests into calls of `ops` (every change, with its transaction and event) and reads
//! of `db` (every SQL statement), deciding who may do what with `domain::access`.
//! `domain` holds the rules, free of HTTP and SQL, with their unit tests.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod http;
pub mod ops;
pub mod state;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod web;

pub use app::Server;
pub use state::AppState;

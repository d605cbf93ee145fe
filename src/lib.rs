//! tokenpanel: a control panel for API tokens with a Fastly-compatible JSON API.
//!
//! `cli` parses the command line and `app` serves one router made of `web` (the HTML
//! pages) and `api` (the token-authenticated JSON API), which share `http`. Both turn
//! requests into calls of `ops` (every change, with its transaction and event) and reads
//! of `db` (every SQL statement), deciding who may do what with `domain::access`.
//! `domain` holds the rules, free of HTTP and SQL, with their unit tests.

pub mod allocator;
mod api;
mod app;
pub mod cli;
mod clock;
mod config;
mod db;
mod domain;
mod http;
mod ops;
mod state;
mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
mod web;

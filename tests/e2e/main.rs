//! Browser end-to-end tests: headless Chromium, driven through chromedriver, uses the
//! panel as a person does: elements are found by label, role and accessible name in
//! the seed's wording, and each page is checked with axe-core.
//!
//! One module per flow. A new flow: a module with `#[tokio::test]`s that open a
//! `Browser`, start a `tokenpanel::testkit::TestApp` (the integration tests' kit), and
//! `b.run(async { ... })` the steps (see steps.rs for the shared ones). Failures leave a
//! screenshot and the HTML in target/e2e-artifacts/.

mod browser;
mod steps;

mod account_tokens;
mod automation;
mod event_log;
mod harness;
mod invitations;
mod no_javascript;
mod own_security;
mod personal_tokens;
mod setup;
mod sign_in;
mod switch_account;
mod token_policy;
mod token_roll;
mod two_factor;

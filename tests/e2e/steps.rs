//! Steps that several flows share, written as a person does them (the seed's words).

use tokenpanel::testkit::{Persona, TestApp};

use crate::browser::{fail, Browser, Result};

/// Signs in on the sign-in page and lands on Personal tokens.
pub async fn sign_in(b: &Browser, app: &TestApp, persona: &Persona) -> Result {
    b.goto(&app.url("/login")).await?;
    b.heading("Sign in").await?;
    b.fill("Email", &persona.email).await?;
    b.fill("Password", &persona.password).await?;
    b.click_button("Sign in").await?;
    b.wait_for_path("/account/tokens").await?;
    b.heading("Personal tokens").await?;
    Ok(())
}

/// From Personal tokens: "Create token", re-authenticate with the password when
/// prompted, and arrive on the "Create a Token" form.
pub async fn open_create_form(b: &Browser, persona: &Persona, check_a11y: bool) -> Result {
    b.click_link("Create token").await?;
    if b.path().await?.starts_with("/account/sudo") {
        b.heading("Re-authenticate").await?;
        if check_a11y {
            b.check_accessibility().await?;
        }
        b.fill("Password", &persona.password).await?;
        b.click_button("Confirm").await?;
    }
    b.wait_for_path("/account/tokens/new").await?;
    b.heading("Create a Token").await?;
    Ok(())
}

/// Clicks "Create Token" and returns the token string shown on "Token created".
pub async fn submit_and_read_token(b: &Browser) -> Result<String> {
    b.click_button("Create Token").await?;
    b.heading("Token created").await?;
    let secret = b.value_of("API token").await?;
    if !secret.starts_with("tpu_") || secret.len() < 30 {
        fail!("the API token field holds {secret:?}, not a user token string");
    }
    Ok(secret)
}

/// Whether any trace of `secret` is in the current page's HTML (attributes included).
pub async fn page_holds(b: &Browser, secret: &str) -> Result<bool> {
    Ok(b.html().await?.contains(secret))
}

/// If the panel asks to re-authenticate, gives the password and confirms.
pub async fn reauthenticate_if_asked(b: &Browser, persona: &Persona) -> Result {
    if b.path().await?.starts_with("/account/sudo") {
        b.heading("Re-authenticate").await?;
        b.fill("Password", &persona.password).await?;
        b.click_button("Confirm").await?;
    }
    Ok(())
}

/// Waits until the table's rows name every one of `shown` and none of `hidden`
/// (one row per name in `shown`).
pub async fn wait_for_rows(b: &Browser, shown: &[&str], hidden: &[&str]) -> Result {
    let mut rows = Vec::new();
    let matched = b
        .wait(async || {
            rows = b.table_rows().await?;
            Ok(rows.len() == shown.len()
                && shown.iter().all(|s| rows.iter().any(|r| r.contains(s)))
                && !hidden.iter().any(|h| rows.iter().any(|r| r.contains(h))))
        })
        .await?;
    if !matched {
        fail!("expected rows naming {shown:?} and none of {hidden:?}, the table shows {rows:#?}");
    }
    Ok(())
}

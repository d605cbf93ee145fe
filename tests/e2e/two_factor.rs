//! Signing in with a TOTP code: enrol on Account > Security with the secret shown on
//! the page (as an authenticator app would), sign out, and sign in with the password
//! and then the code.

use tokenpanel::testkit::{totp_code, Role, TestApp};

use crate::browser::{fail, Browser, Js};
use crate::steps::{reauthenticate_if_asked, sign_in};

/// The secret printed after "Enter this secret in the app instead:".
fn secret_in(text: &str) -> Option<String> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.contains("Enter this secret in the app"));
    lines.next()?;
    let secret = lines.next()?.trim().to_owned();
    (!secret.is_empty() && secret.chars().all(|c| c.is_ascii_alphanumeric())).then_some(secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_a_totp_code() {
    let app = TestApp::sqlite().await;
    let ada = app.persona(Role::Engineer).await;
    let Some(b) = Browser::open("sign_in_with_a_totp_code", Js::On).await else {
        return;
    };
    b.run(async {
        sign_in(&b, &app, &ada).await?;
        b.click_link("Security").await?;
        b.wait_for_path("/account/security").await?;
        b.heading("Security").await?;
        b.check_accessibility().await?;
        b.click_link("Set up two-factor authentication").await?;
        reauthenticate_if_asked(&b, &ada).await?;
        b.heading("Set up two-factor authentication").await?;
        b.check_accessibility().await?;

        let Some(secret) = secret_in(&b.text().await?) else {
            fail!("the setup page shows no secret to type into an app");
        };
        let Some(code) = totp_code(&secret, app.now()) else {
            fail!("the secret shown, {secret:?}, is not a TOTP secret");
        };
        b.fill("Authentication code", &code).await?;
        b.click_button("Turn on two-factor authentication").await?;
        b.heading("Recovery codes").await?;
        b.wait_for_text("Two-factor authentication is on.").await?;
        let recovery = b
            .text()
            .await?
            .lines()
            .skip_while(|l| !l.contains("They will not be shown again."))
            .skip(1)
            .take_while(|l| l.trim() != "Done")
            .count();
        if recovery != 10 {
            fail!("the page lists {recovery} recovery codes, not 10");
        }
        b.check_accessibility().await?;
        b.click_link("Done").await?;
        b.heading("Security").await?;
        b.wait_for_text("Two-factor authentication is on.").await?;

        b.click_button("Sign out").await?;
        b.wait_for_path("/login").await?;
        // The code used to enrol belongs to this step; the next sign-in is a step later.
        app.clock.advance(30);
        b.fill("Email", &ada.email).await?;
        b.fill("Password", &ada.password).await?;
        b.click_button("Sign in").await?;
        b.wait_for_path("/login/two-factor").await?;
        b.heading("Two-factor authentication").await?;
        b.check_accessibility().await?;

        // A code that is valid in none of the accepted steps.
        let now = app.now();
        let valid: Vec<String> = [now - 30, now, now + 30]
            .iter()
            .filter_map(|t| totp_code(&secret, *t))
            .collect();
        let Some(wrong) = ["000000", "111111", "222222", "333333"]
            .into_iter()
            .find(|c| !valid.iter().any(|v| v == c))
        else {
            fail!("no wrong code to try");
        };
        b.fill("Authentication code", wrong).await?;
        b.click_button("Verify").await?;
        b.wait_for_text("Incorrect code.").await?;
        if b.path().await? != "/login/two-factor" {
            fail!("a wrong code left the two-factor page");
        }
        b.heading("Two-factor authentication").await?;
        b.check_accessibility().await?;

        let Some(right) = totp_code(&secret, app.now()) else {
            fail!("no code for now");
        };
        b.fill("Authentication code", &right).await?;
        b.click_button("Verify").await?;
        b.wait_for_path("/account/tokens").await?;
        b.heading("Personal tokens").await?;
        Ok(())
    })
    .await;
    let events = app.event_types().await;
    for wanted in ["two_factor_auth.enable", "user.login_failure"] {
        assert!(
            events.iter().any(|e| e == wanted),
            "no {wanted} in {events:?}"
        );
    }
    assert_eq!(
        events.iter().filter(|e| *e == "user.login").count(),
        2,
        "two sign-ins: {events:?}"
    );
}

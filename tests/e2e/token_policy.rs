//! The account token policy as a superuser sets it (Security > Token policy), what the
//! create form then offers, and the pages at a phone's width (390 px): nothing wider
//! than the screen, every page axe-clean, with the expiry banner and a notice showing.

use serde_json::json;
use tokenpanel::testkit::{Role, TestApp, TokenSpec};

use crate::browser::{fail, Browser, Js};
use crate::steps::{open_create_form, reauthenticate_if_asked, sign_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_policy_form_shapes_the_create_form() {
    let app = TestApp::sqlite().await;
    let root = app.persona(Role::Superuser).await;
    let Some(b) = Browser::open("token_policy_form_shapes_the_create_form", Js::On).await else {
        return;
    };
    b.run(async {
        sign_in(&b, &app, &root).await?;
        b.click_link("Security").await?;
        b.heading("Token policy").await?;
        b.click_link("Edit token policy").await?;
        reauthenticate_if_asked(&b, &root).await?;
        b.wait_for_path("/account/security/token-policy").await?;
        b.heading("Token policy").await?;
        b.check_accessibility().await?;
        b.fill("Maximum lifetime of new tokens (days)", "0").await?;
        b.click_button("Save token policy").await?;
        b.wait_for_text("The policy was not saved.").await?;
        b.check_accessibility().await?;
        b.fill("Maximum lifetime of new tokens (days)", "30")
            .await?;
        b.choose("Rules", "Tokens must expire").await?;
        b.choose("Rules", "No global scope on user tokens").await?;
        b.click_button("Save token policy").await?;
        b.wait_for_text("The token policy was saved.").await?;
        b.wait_for_text(
            "maximum lifetime 30 days, tokens must expire, no global scope on user tokens",
        )
        .await?;

        b.click_link("Personal tokens").await?;
        open_create_form(&b, &root, false).await?;
        b.wait_for_text("Tokens last at most 30 days.").await?;
        if b.text().await?.contains("Never expire") {
            fail!("the form offers Never expire against the policy");
        }
        b.check_accessibility().await?;
        // A user token cannot take the global scope; an automation token can.
        let global = b.option("Scope", "Global API access").await?;
        if global.is_enabled().await? {
            fail!("global is selectable on a user token");
        }
        b.choose("Type", "Automation token").await?;
        b.choose("Role", "Engineer").await?;
        if !b
            .option("Scope", "Global API access")
            .await?
            .is_enabled()
            .await?
        {
            fail!("global is not selectable on an automation token");
        }
        b.choose("Type", "User token").await?;
        b.fill("Name", "within the policy").await?;
        b.choose("Scope", "Read-only access").await?;
        b.click_button("Create Token").await?;
        b.heading("Token created").await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_fit_a_phone_and_stay_accessible() {
    let app = TestApp::sqlite().await;
    let root = app.persona(Role::Superuser).await;
    for i in 0..3 {
        app.issue_token(
            TokenSpec::user(&root)
                .named(&format!(
                    "a rather long token name for the deploy pipeline {i}"
                ))
                .expires_at(app.now() + (i + 2) * 86_400),
        )
        .await;
    }
    let leaked = app
        .issue_token(TokenSpec::user(&root).named("leaked"))
        .await;
    app.api()
        .post_json(
            "/tokens/revoke-leaked",
            None,
            json!({"tokens": [leaked.key], "url": "https://paste.example/very/long/path/to/the/paste/where/it/was/found"}),
        )
        .await
        .expect(202);
    for _ in 0..100 {
        if !app.token_exists(&leaked.id).await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let Some(b) = Browser::open("pages_fit_a_phone_and_stay_accessible", Js::On).await else {
        return;
    };
    b.run(async {
        b.set_window_size(390, 844).await?;
        sign_in(&b, &app, &root).await?;
        b.wait_for_text("within 7 days.").await?;
        b.wait_for_text("was reported exposed").await?;
        for path in [
            "/account/tokens",
            "/account/account-tokens",
            "/account/account-tokens/policy",
            "/account/tokens/exposed",
            "/account/security",
            "/account/events",
            "/account/users",
        ] {
            b.goto(&app.url(path)).await?;
            let (page, viewport) = b.page_and_viewport_width().await?;
            if !(300..=400).contains(&viewport) {
                fail!("{path}: the viewport is {viewport} px wide, not a phone's");
            }
            if page > viewport {
                fail!(
                    "{path}: the page is {page} px wide on a {viewport} px screen: {}",
                    b.too_wide().await?
                );
            }
            b.check_accessibility().await?;
        }
        b.goto(&app.url("/account/tokens")).await?;
        open_create_form(&b, &root, false).await?;
        let (page, viewport) = b.page_and_viewport_width().await?;
        if page > viewport {
            fail!("the create form is {page} px wide on a {viewport} px screen");
        }
        b.check_accessibility().await?;
        // The notice can be dismissed.
        b.click_button("Dismiss this notice").await?;
        if !b
            .wait(async || Ok(!b.text().await?.contains("was reported exposed")))
            .await?
        {
            fail!("the notice is still shown after Dismiss");
        }
        Ok(())
    })
    .await;
}

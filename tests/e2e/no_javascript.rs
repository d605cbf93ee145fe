//! The same flows with JavaScript off: every page works as plain HTML forms and links.

use tokenpanel::testkit::{digest, Role, TestApp};

use crate::browser::{fail, Browser, Js, Result, Role as Aria};
use crate::steps::{open_create_form, page_holds, sign_in, submit_and_read_token};

/// The session really has JavaScript off (else these tests would prove nothing).
async fn scripts_are_off(b: &Browser) -> Result {
    if b.scripts_ran().await? {
        fail!("JavaScript is running in the JavaScript-off browser");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_create_a_token_without_javascript() {
    let app = TestApp::sqlite().await;
    let account = app.account("Acme").await;
    for service in ["Production site", "Docs"] {
        app.service(&account, service).await;
    }
    let ada = app.member(&account, Role::User).await;
    let Some(b) = Browser::open("create_a_token_without_javascript", Js::Off).await else {
        return;
    };
    b.run(async {
        b.goto(&app.url("/login")).await?;
        scripts_are_off(&b).await?;
        b.check_accessibility().await?;
        sign_in(&b, &app, &ada).await?;
        b.check_accessibility().await?;

        open_create_form(&b, &ada, true).await?;
        scripts_are_off(&b).await?;
        b.check_accessibility().await?;
        b.fill("Name", "Cron job").await?;
        b.choose("Scope", "Read-only access").await?;
        b.untick("Scope", "Global API access").await?;
        b.choose("Access", "Selected services").await?;
        b.pick("Search or select service", "Docs").await?;
        let secret = submit_and_read_token(&b).await?;
        b.check_accessibility().await?;

        b.click_link("Okay").await?;
        b.wait_for_path("/account/tokens").await?;
        let list = b.text().await?;
        for wanted in ["Cron job", "Read-only access", "Docs"] {
            if !list.contains(wanted) {
                fail!("the token list lacks {wanted:?}:\n{list}");
            }
        }
        if page_holds(&b, &secret).await? {
            fail!("the token list shows the token string");
        }
        let stored: Option<String> =
            sqlx::query_scalar("SELECT name FROM tokens WHERE secret_digest = $1")
                .bind(digest(&secret))
                .fetch_optional(app.pool())
                .await?;
        if stored.as_deref() != Some("Cron job") {
            fail!("the string shown is not the stored token");
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_a_token_without_javascript() {
    let app = TestApp::sqlite().await;
    let ada = app.persona(Role::User).await;
    let Some(b) = Browser::open("delete_a_token_without_javascript", Js::Off).await else {
        return;
    };
    b.run(async {
        sign_in(&b, &app, &ada).await?;
        scripts_are_off(&b).await?;
        // Make the token in this browser too, so both tokens are the user's own.
        for name in ["Old laptop", "Build server"] {
            b.goto(&app.url("/account/tokens")).await?;
            open_create_form(&b, &ada, false).await?;
            b.fill("Name", name).await?;
            submit_and_read_token(&b).await?;
        }
        b.goto(&app.url("/account/tokens")).await?;

        // The trash link is a real link to a confirmation page.
        b.click_link("Delete token Old laptop").await?;
        b.heading("Delete token").await?;
        if !b.path().await?.ends_with("/delete") {
            fail!("the delete link did not lead to the confirmation page");
        }
        b.by_role(Aria::Dialog, "Delete token “Old laptop”?")
            .await?;
        b.check_accessibility().await?;
        b.click_button("Delete").await?;
        b.wait_for_path("/account/tokens").await?;
        b.heading("Personal tokens").await?;
        if b.has(Aria::Link, "Delete token Old laptop").await? {
            fail!("the deleted token is still listed");
        }
        b.link("Delete token Build server").await?;
        let names = app.token_names().await;
        if names != ["Build server"] {
            fail!("the database holds {names:?}");
        }
        Ok(())
    })
    .await;
}

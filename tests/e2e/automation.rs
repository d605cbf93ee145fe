//! Creating an automation token as a superuser: the Type choice reveals Role and TLS
//! management (JavaScript on), the string is shown once, and the token is listed on
//! Account tokens as owned by "Automation".

use tokenpanel::testkit::{digest, Role, TestApp};

use crate::browser::{fail, Browser, Js};
use crate::steps::{open_create_form, page_holds, sign_in, wait_for_rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_an_automation_token() {
    let app = TestApp::sqlite().await;
    let ada = app.persona(Role::Superuser).await;
    let Some(b) = Browser::open("create_an_automation_token", Js::On).await else {
        return;
    };
    b.run(async {
        sign_in(&b, &app, &ada).await?;
        open_create_form(&b, &ada, false).await?;

        // Role and TLS management belong to automation tokens only.
        if b.group_shown("Role").await? {
            fail!("the Role choice shows for a user token");
        }
        if b.text().await?.contains("TLS management") {
            fail!("TLS management shows for a user token");
        }
        b.choose("Type", "Automation token").await?;
        if !b.wait(async || b.group_shown("Role").await).await? {
            fail!("choosing Automation token did not reveal the Role choice");
        }
        b.wait_for_text("TLS management").await?;
        b.check_accessibility().await?;

        b.fill("Name", "Release bot").await?;
        b.choose("Role", "Engineer").await?;
        b.untick("Scope", "Global API access").await?;
        b.choose("Scope", "Read-only access").await?;
        b.click_button("Create Token").await?;
        b.heading("Token created").await?;
        let secret = b.value_of("API token").await?;
        if !secret.starts_with("tpa_") || secret.len() < 30 {
            fail!("the API token field holds {secret:?}, not an automation token string");
        }
        b.check_accessibility().await?;
        let stored: Option<(String, String, Option<String>, String)> =
            sqlx::query_as("SELECT name, kind, role, scope FROM tokens WHERE secret_digest = $1")
                .bind(digest(&secret))
                .fetch_optional(app.pool())
                .await?;
        let Some((name, kind, role, scope)) = stored else {
            fail!("the string shown is not the token that was stored");
        };
        if (
            name.as_str(),
            kind.as_str(),
            role.as_deref(),
            scope.as_str(),
        ) != ("Release bot", "automation", Some("engineer"), "global:read")
        {
            fail!("stored {name:?} {kind:?} {role:?} {scope:?}");
        }

        b.click_link("Okay").await?;
        b.wait(async || Ok(!b.path().await?.starts_with("/account/tokens/")))
            .await?;
        if page_holds(&b, &secret).await? {
            fail!("the page after Okay shows the token string");
        }
        b.click_link("Account tokens").await?;
        b.heading("Account tokens").await?;
        wait_for_rows(&b, &["Release bot"], &[]).await?;
        let row = b.table_rows().await?.remove(0);
        for wanted in ["Automation", "Engineer", "Read-only access"] {
            if !row.contains(wanted) {
                fail!("the Account tokens row lacks {wanted:?}: {row}");
            }
        }
        if page_holds(&b, &secret).await? {
            fail!("Account tokens shows the token string");
        }
        Ok(())
    })
    .await;
}

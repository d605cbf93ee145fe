//! Account > API tokens > Personal tokens with JavaScript on: create a token (sudo
//! prompt, the form, the htmx service search), the string shown once with the copy
//! button, and deletion confirmed in the htmx dialog.

use time::{Duration, OffsetDateTime};
use tokenpanel::testkit::{digest, Role, ScopeSet, TestApp, TokenSpec};

use crate::browser::{fail, Browser, Js, Role as Aria};
use crate::steps::{open_create_form, page_holds, sign_in, submit_and_read_token};

/// What the database holds for the token with this string.
async fn stored(app: &TestApp, secret: &str) -> Option<(String, String, Option<i64>, Vec<String>)> {
    let (id, name, scope, expires_at): (String, String, String, Option<i64>) =
        sqlx::query_as("SELECT id, name, scope, expires_at FROM tokens WHERE secret_digest = $1")
            .bind(digest(secret))
            .fetch_optional(app.pool())
            .await
            .unwrap()?;
    let services: Vec<String> = sqlx::query_scalar(
        "SELECT s.name FROM token_services ts JOIN services s ON s.id = ts.service_id \
         WHERE ts.token_id = $1 ORDER BY s.name",
    )
    .bind(&id)
    .fetch_all(app.pool())
    .await
    .unwrap();
    Some((name, scope, expires_at, services))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_token_and_see_the_string_once() {
    let app = TestApp::sqlite().await;
    let account = app.account("Acme").await;
    for service in ["Production site", "Staging site", "Staging API", "Docs"] {
        app.service(&account, service).await;
    }
    let ada = app.member(&account, Role::Engineer).await;
    let expires =
        (OffsetDateTime::from_unix_timestamp(app.now()).unwrap() + Duration::days(200)).date();
    let Some(b) = Browser::open("create_token_and_see_the_string_once", Js::On).await else {
        return;
    };
    b.run(async {
        sign_in(&b, &app, &ada).await?;
        b.check_accessibility().await?;
        open_create_form(&b, &ada, true).await?;
        b.check_accessibility().await?;

        b.fill("Name", "CI deploy").await?;
        b.untick("Scope", "Global API access").await?;
        b.choose("Scope", "Purge select content").await?;
        b.choose("Scope", "Read-only access").await?;

        // Access: search as you type narrows the service menu (htmx), and a search
        // never drops a service already chosen.
        b.choose("Access", "Selected services").await?;
        let menu = "Search or select service";
        b.fill("Search services", "stag").await?;
        wait_for_options(&b, menu, &["Staging API", "Staging site"]).await?;
        b.fill("Search services", "staging s").await?;
        wait_for_options(&b, menu, &["Staging site"]).await?;
        b.pick(menu, "Staging site").await?;
        b.fill("Search services", "docs").await?;
        wait_for_options(&b, menu, &["Docs", "Staging site"]).await?;
        if !b
            .option_of(menu, "Staging site")
            .await?
            .is_selected()
            .await?
        {
            fail!("searching again dropped the chosen service");
        }
        b.check_accessibility().await?;

        b.choose("Expiration", "Specific date").await?;
        let field = b.field("Expiration date").await?;
        field
            .send_keys(&format!(
                "{:02}{:02}{}",
                u8::from(expires.month()),
                expires.day(),
                expires.year()
            ))
            .await?;
        let typed = b.value_of("Expiration date").await?;
        if typed != expires.to_string() {
            fail!("the expiration date field holds {typed:?}, expected {expires}");
        }

        let secret = submit_and_read_token(&b).await?;
        b.check_accessibility().await?;
        if !b.text().await?.contains(&format!("It expires: {expires}")) {
            fail!("the created page does not give the chosen expiry");
        }
        let Some((name, scope, expires_at, services)) = stored(&app, &secret).await else {
            fail!("the string shown is not the token that was stored");
        };
        assert_eq!(name, "CI deploy");
        assert_eq!(
            ScopeSet::parse(&scope).map(|s| s.to_string()),
            ScopeSet::parse("purge_select global:read").map(|s| s.to_string())
        );
        assert_eq!(services, ["Staging site"]);
        assert_eq!(
            expires_at,
            Some(expires.midnight().assume_utc().unix_timestamp())
        );

        // The clipboard button copies the string and says so.
        b.allow_clipboard().await?;
        b.click_button("Copy to clipboard").await?;
        let copied = b
            .wait(async || {
                Ok(b.status_messages()
                    .await?
                    .iter()
                    .any(|m| m == "Copied to the clipboard."))
            })
            .await?;
        if !copied {
            fail!("no \"Copied to the clipboard.\" status after clicking the copy button");
        }
        if b.clipboard().await? != secret {
            fail!("the clipboard does not hold the token string");
        }

        // "Okay", then reload and go back: the string is gone for good.
        b.click_link("Okay").await?;
        b.wait_for_path("/account/tokens").await?;
        b.heading("Personal tokens").await?;
        let row = b.text().await?;
        for wanted in [
            "CI deploy",
            "Purge select content, Read-only access",
            "Staging site",
        ] {
            if !row.contains(wanted) {
                fail!("the token list lacks {wanted:?}:\n{row}");
            }
        }
        if page_holds(&b, &secret).await? {
            fail!("the token list shows the token string");
        }
        b.reload().await?;
        b.heading("Personal tokens").await?;
        if page_holds(&b, &secret).await? {
            fail!("the token string is back after a reload");
        }
        b.back().await?;
        if page_holds(&b, &secret).await? || b.has(Aria::Heading, "Token created").await? {
            fail!("the token string is back after going back");
        }

        // Reloading the "Token created" page itself re-posts a spent form: no string
        // and no second token.
        b.goto(&app.url("/account/tokens/new")).await?;
        b.fill("Name", "Second").await?;
        let second = submit_and_read_token(&b).await?;
        b.reload().await?;
        if page_holds(&b, &second).await? || b.has(Aria::Heading, "Token created").await? {
            fail!("reloading the created page showed a token string again");
        }
        b.heading("Personal tokens").await?;
        assert_eq!(
            app.count("tokens").await,
            2,
            "the reload made another token"
        );
        Ok(())
    })
    .await;
}

/// Waits until the select lists exactly these options (in any order).
async fn wait_for_options(b: &Browser, select: &str, wanted: &[&str]) -> crate::browser::Result {
    let mut wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
    wanted.sort();
    let mut seen = Vec::new();
    let matched = b
        .wait(async || {
            seen = b.options_of(select).await?;
            seen.sort();
            Ok(seen == wanted)
        })
        .await?;
    if !matched {
        fail!("{select:?} offers {seen:?}, expected {wanted:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_token_in_the_confirmation_dialog() {
    let app = TestApp::sqlite().await;
    let ada = app.persona(Role::User).await;
    let old = app
        .issue_token(TokenSpec::user(&ada).named("Old laptop"))
        .await
        .id;
    app.issue_token(TokenSpec::user(&ada).named("Build server"))
        .await;
    let Some(b) = Browser::open("delete_token_in_the_confirmation_dialog", Js::On).await else {
        return;
    };
    b.run(async {
        sign_in(&b, &app, &ada).await?;
        b.mark_document().await?;

        b.click_link("Delete token Old laptop").await?;
        let dialog = b
            .by_role(Aria::Dialog, "Delete token “Old laptop”?")
            .await?;
        if !b.still_same_document().await? || b.path().await? != "/account/tokens" {
            fail!("the confirmation did not open in place");
        }
        b.check_accessibility().await?;
        if !dialog.text().await?.contains(
            "Deleting an API token will break any integration actively using that credential.",
        ) {
            fail!("the dialog does not warn what deleting breaks");
        }

        b.click_button("Delete").await?;
        let gone = b
            .wait(async || {
                Ok(!b.has(Aria::Link, "Delete token Old laptop").await?
                    && !b.has(Aria::Dialog, "Delete token “Old laptop”?").await?)
            })
            .await?;
        if !gone {
            fail!("the row or the dialog is still there after Delete");
        }
        if !b.still_same_document().await? {
            fail!("deleting reloaded the page instead of removing the row in place");
        }
        b.link("Delete token Build server").await?;
        let left: Vec<String> = sqlx::query_scalar("SELECT id FROM tokens")
            .fetch_all(app.pool())
            .await?;
        if left.contains(&old) || left.len() != 1 {
            fail!("the database holds {left:?} after deleting {old}");
        }

        b.reload().await?;
        b.heading("Personal tokens").await?;
        if b.has(Aria::Link, "Delete token Old laptop").await? {
            fail!("the deleted token is back after a reload");
        }
        Ok(())
    })
    .await;
}

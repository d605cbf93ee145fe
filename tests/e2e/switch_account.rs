//! The account switcher in the header: a user in two accounts switches, and the
//! header and Personal tokens follow the chosen account.

use tokenpanel::testkit::{Role, TestApp, TokenSpec};

use crate::browser::{fail, Browser, Js, Result};
use crate::steps::{sign_in, wait_for_rows};

/// Waits until the header's switcher names `name` as the current account.
async fn current_account_is(b: &Browser, name: &str) -> Result {
    let mut seen = String::new();
    let switched = b
        .wait(async || {
            seen = b.selected_in("Account").await?;
            Ok(seen == name)
        })
        .await?;
    if !switched {
        fail!("the header names {seen:?} as the account, not {name:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_account_in_the_header() {
    let app = TestApp::sqlite().await;
    let acme = app.account("Acme").await;
    let beta = app.account("Beta").await;
    let ada = app.member(&acme, Role::Engineer).await;
    app.add_member(&beta, &ada, Role::User).await;
    app.issue_token(TokenSpec::user(&ada).named("Acme laptop"))
        .await;
    let beta_laptop = TokenSpec::user(&ada).in_account(&beta).named("Beta laptop");
    app.issue_token(beta_laptop).await;
    let Some(b) = Browser::open("switch_account_in_the_header", Js::On).await else {
        return;
    };
    b.run(async {
        sign_in(&b, &app, &ada).await?;
        let (first, other) = match b.selected_in("Account").await?.as_str() {
            "Acme" => (("Acme", "Acme laptop"), ("Beta", "Beta laptop")),
            "Beta" => (("Beta", "Beta laptop"), ("Acme", "Acme laptop")),
            name => fail!("the header names {name:?} as the account"),
        };
        wait_for_rows(&b, &[first.1], &[other.1]).await?;
        b.check_accessibility().await?;

        // Choosing the other account switches at once (JavaScript submits the form).
        b.pick("Account", other.0).await?;
        current_account_is(&b, other.0).await?;
        b.wait_for_path("/account/tokens").await?;
        b.heading("Personal tokens").await?;
        wait_for_rows(&b, &[other.1], &[first.1]).await?;
        let role = if other.0 == "Beta" {
            "User"
        } else {
            "Engineer"
        };
        if !b.text().await?.contains(&format!("Test Engineer ({role})")) {
            fail!("the header does not give the role in {}", other.0);
        }
        b.check_accessibility().await?;

        // The choice holds on other pages, and switching back restores the first.
        b.click_link("Event log").await?;
        b.heading("Event log").await?;
        current_account_is(&b, other.0).await?;
        b.pick("Account", first.0).await?;
        current_account_is(&b, first.0).await?;
        b.heading("Personal tokens").await?;
        wait_for_rows(&b, &[first.1], &[other.1]).await?;
        Ok(())
    })
    .await;
}

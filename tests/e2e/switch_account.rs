//! The account switcher in the header: a user in two accounts switches, and the
//! header and Personal tokens follow the chosen account.

use tokenpanel::db::accounts;
use tokenpanel::domain::roles::{Role, ScopeSet};
use tokenpanel::domain::secret::TokenKind;
use tokenpanel::tokens::{issue, TokenRequest};

use crate::browser::{fail, Browser, Js, Result};
use crate::common::TestApp;
use crate::steps::{sign_in, wait_for_rows};

async fn token(app: &TestApp, account_id: &str, user_id: &str, name: &str) {
    let scopes = ScopeSet::parse("global").unwrap();
    let request = TokenRequest {
        kind: TokenKind::User,
        account_id,
        actor_id: user_id,
        name,
        scopes: &scopes,
        services: &[],
        role: None,
        tls_access: false,
        expires_at: None,
        ip: None,
    };
    issue(&app.state, &request).await.unwrap();
}

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
    let ada = app.persona(&acme, Role::Engineer).await;
    accounts::add_member(&app.state.db.pool, &beta, &ada.id, Role::User, app.now())
        .await
        .unwrap();
    token(&app, &acme, &ada.id, "Acme laptop").await;
    token(&app, &beta, &ada.id, "Beta laptop").await;
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

//! Account > API tokens > Account tokens as a superuser: filter by owner, type and
//! status (htmx refreshes the table), then revoke another user's token through the
//! confirmation dialog (with the password, as sudo mode is off).

use tokenpanel::testkit::{Role, TestApp, TokenSpec};

use crate::browser::{fail, Browser, Js, Role as Aria};
use crate::steps::{sign_in, wait_for_rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_account_tokens_and_revoke_another_users_token() {
    let app = TestApp::sqlite().await;
    let ada = app.persona(Role::Superuser).await;
    let bob = app.member(&ada.account_id, Role::Engineer).await;
    app.issue_token(TokenSpec::user(&ada).named("Ada laptop"))
        .await;
    let laptop = app
        .issue_token(TokenSpec::user(&bob).named("Bob laptop"))
        .await
        .id;
    let soon = app.now() + 60;
    let old_phone = TokenSpec::user(&bob)
        .named("Bob old phone")
        .expires_at(soon);
    app.issue_token(old_phone).await;
    let bot = TokenSpec::automation(&ada, Role::Engineer).named("Deploy bot");
    app.issue_token(bot).await;
    app.clock.advance(120);
    let all = ["Ada laptop", "Bob laptop", "Bob old phone", "Deploy bot"];
    let Some(b) = Browser::open(
        "filter_account_tokens_and_revoke_another_users_token",
        Js::On,
    )
    .await
    else {
        return;
    };
    b.run(async {
        sign_in(&b, &app, &ada).await?;
        b.click_link("Account tokens").await?;
        b.wait_for_path("/account/account-tokens").await?;
        b.heading("Account tokens").await?;
        wait_for_rows(&b, &all, &[]).await?;
        b.check_accessibility().await?;

        let bobs = format!("Test Engineer ({})", bob.email);
        b.pick("Owner", &bobs).await?;
        wait_for_rows(
            &b,
            &["Bob laptop", "Bob old phone"],
            &["Ada laptop", "Deploy bot"],
        )
        .await?;
        b.pick("Status", "Expired").await?;
        wait_for_rows(&b, &["Bob old phone"], &["Bob laptop"]).await?;
        b.pick("Status", "Active").await?;
        wait_for_rows(&b, &["Bob laptop"], &["Bob old phone"]).await?;
        // The filters are in the address, so a reload keeps them.
        b.reload().await?;
        b.heading("Account tokens").await?;
        wait_for_rows(&b, &["Bob laptop"], &["Bob old phone", "Ada laptop"]).await?;
        if b.selected_in("Owner").await? != bobs || b.selected_in("Status").await? != "Active" {
            fail!("the filter form lost its choices after a reload");
        }

        b.pick("Owner", "Any owner").await?;
        b.pick("Status", "Any status").await?;
        wait_for_rows(&b, &all, &[]).await?;
        b.pick("Type", "Automation token").await?;
        wait_for_rows(&b, &["Deploy bot"], &["Ada laptop", "Bob laptop"]).await?;
        if !b.table_rows().await?[0].contains("Automation") {
            fail!("the automation token's owner is not shown as Automation");
        }
        b.pick("Type", "User token").await?;
        b.pick("Owner", &bobs).await?;
        b.pick("Status", "Active").await?;
        wait_for_rows(&b, &["Bob laptop"], &["Deploy bot", "Ada laptop"]).await?;
        b.check_accessibility().await?;

        // Revoke Bob's token: the confirmation opens in place and names the token.
        b.click_link("Delete token Bob laptop").await?;
        let dialog = b
            .by_role(Aria::Dialog, "Delete token “Bob laptop”?")
            .await?;
        if !dialog.text().await?.contains(
            "Deleting an API token will break any integration actively using that credential.",
        ) {
            fail!("the dialog does not warn what deleting breaks");
        }
        b.check_accessibility().await?;
        if app.count("tokens").await != 4 {
            fail!("a token was deleted before the confirmation");
        }
        // Someone else's token: outside sudo mode the dialog asks for the password.
        b.fill("Password", &ada.password).await?;
        b.click_button("Delete").await?;
        b.wait_for_text("Deleted 1 token.").await?;
        b.heading("Account tokens").await?;
        if b.has(Aria::Link, "Delete token Bob laptop").await? {
            fail!("the revoked token is still listed");
        }
        b.check_accessibility().await?;
        let left = app.token_names().await;
        if left != ["Ada laptop", "Bob old phone", "Deploy bot"] {
            fail!("the database holds {left:?} after revoking Bob laptop");
        }
        b.click_link("Clear filters").await?;
        wait_for_rows(
            &b,
            &["Ada laptop", "Bob old phone", "Deploy bot"],
            &["Bob laptop"],
        )
        .await?;
        let destroyed: Vec<String> =
            sqlx::query_scalar("SELECT token_id FROM events WHERE event_type = 'token.destroy'")
                .fetch_all(app.pool())
                .await?;
        if destroyed != [laptop.clone()] {
            fail!("token.destroy events: {destroyed:?}");
        }
        Ok(())
    })
    .await;
}

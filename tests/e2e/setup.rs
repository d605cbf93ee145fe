//! First-run setup: the one-time URL creates the account and its first superuser.

use tokenpanel::testkit::TestApp;

use crate::browser::{fail, Browser, Js};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_setup_creates_the_superuser() {
    let app = TestApp::sqlite().await;
    let path = app
        .setup_path()
        .await
        .expect("no user yet, so a setup path");
    let Some(b) = Browser::open("first_run_setup", Js::On).await else {
        return;
    };
    b.run(async {
        b.goto(&app.url(&path)).await?;
        b.heading("Set up tokenpanel").await?;
        b.check_accessibility().await?;

        // A password that is too short: the form comes back with the typed values and
        // the message next to the field.
        b.fill("Account name", "Acme Corp").await?;
        b.fill("Your name", "Ada Admin").await?;
        b.fill("Email", "ada@example.test").await?;
        b.fill("Password", "short").await?;
        b.fill("Confirm password", "short").await?;
        b.click_button("Create account").await?;
        b.wait_for_text("Use at least 12 characters.").await?;
        if b.value_of("Account name").await? != "Acme Corp" {
            fail!("the account name typed was not kept");
        }
        b.check_accessibility().await?;
        if app.count("users").await != 0 {
            fail!("a user was created from an invalid form");
        }

        b.fill("Password", "correct horse battery").await?;
        b.fill("Confirm password", "correct horse battery").await?;
        b.click_button("Create account").await?;
        b.wait_for_path("/account/tokens").await?;
        b.heading("Personal tokens").await?;
        let text = b.text().await?;
        if !text.contains("Acme Corp") || !text.contains("Ada Admin (Superuser)") {
            fail!("the header does not show the new account and superuser:\n{text}");
        }
        b.check_accessibility().await?;

        // The setup URL works once.
        b.goto(&app.url(&path)).await?;
        b.heading("Not Found").await?;
        b.check_accessibility().await?;
        if b.text().await?.contains("Create account") {
            fail!("the setup form is offered a second time");
        }

        // The password chosen at setup signs in.
        b.goto(&app.url("/account/tokens")).await?;
        b.click_button("Sign out").await?;
        b.wait_for_path("/login").await?;
        b.fill("Email", "ada@example.test").await?;
        b.fill("Password", "correct horse battery").await?;
        b.click_button("Sign in").await?;
        b.wait_for_path("/account/tokens").await?;
        Ok(())
    })
    .await;
}

//! Signing in and out with a password.

use tokenpanel::testkit::{Role, TestApp};

use crate::browser::{fail, Browser, Js};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_sign_out() {
    let app = TestApp::sqlite().await;
    let ada = app.persona(Role::Engineer).await;
    let Some(b) = Browser::open("sign_in_and_sign_out", Js::On).await else {
        return;
    };
    b.run(async {
        // A signed-out visit to Personal tokens leads to the sign-in page.
        b.goto(&app.url("/account/tokens")).await?;
        b.wait_for_path("/login?next=%2Faccount%2Ftokens").await?;
        b.heading("Sign in").await?;
        // The JavaScript-off tests rely on this telling the two browsers apart.
        if !b.scripts_ran().await? {
            fail!("htmx is not running with JavaScript on");
        }
        b.check_accessibility().await?;

        b.fill("Email", &ada.email).await?;
        b.fill("Password", "not the password").await?;
        b.click_button("Sign in").await?;
        b.wait_for_text("Incorrect email or password.").await?;
        if b.value_of("Email").await? != ada.email {
            fail!("the email typed was not kept after a failed sign-in");
        }
        b.check_accessibility().await?;

        b.fill("Password", &ada.password).await?;
        b.click_button("Sign in").await?;
        b.wait_for_path("/account/tokens").await?;
        b.heading("Personal tokens").await?;
        if !b.text().await?.contains("Test Engineer (Engineer)") {
            fail!("the header does not name the signed-in user");
        }

        b.click_button("Sign out").await?;
        b.wait_for_path("/login").await?;
        b.goto(&app.url("/account/tokens")).await?;
        b.wait_for_path("/login?next=%2Faccount%2Ftokens").await?;
        Ok(())
    })
    .await;
    let events = app.event_types().await;
    for wanted in ["user.login_failure", "user.login", "user.logout"] {
        assert!(
            events.iter().any(|e| e == wanted),
            "no {wanted} in {events:?}"
        );
    }
}

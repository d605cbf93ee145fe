//! A user's own security on Account > Security: changing the password (after
//! re-authenticating), and the Sessions list signing out another browser.

use tokenpanel::testkit::{Persona, Role, TestApp};

use crate::browser::{fail, Browser, Js};
use crate::steps::{reauthenticate_if_asked, sign_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password() {
    let app = TestApp::sqlite().await;
    let ada = app.persona(Role::User).await;
    let Some(b) = Browser::open("change_password", Js::On).await else {
        return;
    };
    b.run(async {
        sign_in(&b, &app, &ada).await?;
        b.click_link("Security").await?;
        b.heading("Security").await?;
        b.check_accessibility().await?;
        b.click_link("Change password").await?;
        reauthenticate_if_asked(&b, &ada).await?;
        b.heading("Change password").await?;
        b.check_accessibility().await?;
        b.fill("Current password", "not my password").await?;
        b.fill("New password", "a brand new password").await?;
        b.fill("Confirm the new password", "a brand new password")
            .await?;
        b.click_button("Change password").await?;
        b.wait_for_text("That is not your current password.")
            .await?;
        b.check_accessibility().await?;
        b.fill("Current password", &ada.password).await?;
        b.fill("New password", "a brand new password").await?;
        b.fill("Confirm the new password", "a brand new password")
            .await?;
        b.click_button("Change password").await?;
        b.wait_for_path("/account/security?done=password").await?;
        b.wait_for_text("Your password was changed.").await?;
        b.check_accessibility().await?;
        b.click_button("Sign out").await?;
        b.wait_for_path("/login").await?;
        let renewed = Persona {
            password: "a brand new password".into(),
            ..ada.clone()
        };
        sign_in(&b, &app, &renewed).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_list_signs_out_another_browser() {
    let app = TestApp::sqlite().await;
    let ada = app.persona(Role::User).await;
    let Some(b) = Browser::open("sessions_list_signs_out_another_browser", Js::On).await else {
        return;
    };
    let Some(other) = Browser::open("sessions_list_signs_out_another_browser_other", Js::On).await
    else {
        return;
    };
    other.run(async { sign_in(&other, &app, &ada).await }).await;
    b.run(async {
        sign_in(&b, &app, &ada).await?;
        b.click_link("Security").await?;
        b.heading("Sessions").await?;
        b.check_accessibility().await?;
        let rows = b.table_rows().await?;
        let marked = rows.iter().filter(|r| r.contains("This browser")).count();
        if rows.len() != 2 || marked != 1 {
            fail!("expected two sessions, one marked This browser: {rows:#?}");
        }
        b.click_button("Sign out Headless Chrome on Linux at 127.0.0.1")
            .await?;
        b.wait_for_text("The session was signed out.").await?;
        b.check_accessibility().await?;
        let rows = b.table_rows().await?;
        if rows.len() != 1 {
            fail!("one session should be left: {rows:#?}");
        }
        Ok(())
    })
    .await;
    other
        .run(async {
            other.goto(&app.url("/account/tokens")).await?;
            other
                .wait_for_path("/login?next=%2Faccount%2Ftokens")
                .await?;
            other.heading("Sign in").await?;
            Ok(())
        })
        .await;
}

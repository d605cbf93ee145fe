//! Inviting a user: the superuser invites on Users and copies the one-time link; the
//! invitee opens it in a browser of their own, sets a name and password, and is a
//! member; the superuser's list shows them. Every page is checked with axe-core.

use tokenpanel::testkit::{Role, TestApp};

use crate::browser::{fail, Browser, Js};
use crate::steps::{reauthenticate_if_asked, sign_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_then_join_in_a_fresh_browser() {
    let app = TestApp::sqlite().await;
    let boss = app.persona(Role::Superuser).await;
    let Some(b) = Browser::open("invite_then_join_in_a_fresh_browser", Js::On).await else {
        return;
    };
    let Some(invitee) = Browser::open("invite_then_join_in_a_fresh_browser_invitee", Js::On).await
    else {
        return;
    };
    let mut link = String::new();
    b.run(async {
        sign_in(&b, &app, &boss).await?;
        b.click_link("Users").await?;
        b.heading("Users").await?;
        b.click_link("Invite user").await?;
        reauthenticate_if_asked(&b, &boss).await?;
        b.heading("Invite user").await?;
        b.check_accessibility().await?;
        b.fill("Email", "grace@example.test").await?;
        b.pick("Role", "Engineer").await?;
        b.click_button("Invite user").await?;
        b.heading("User invited").await?;
        b.wait_for_text("grace@example.test was invited as Engineer.")
            .await?;
        b.check_accessibility().await?;
        link = b.value_of("One-time invitation link").await?;
        if !link.contains("/invitation?key=") {
            fail!("the link field holds {link:?}");
        }
        b.click_link("Okay").await?;
        b.heading("Pending invitations").await?;
        b.wait_for_text("grace@example.test").await?;
        b.check_accessibility().await?;
        Ok(())
    })
    .await;
    invitee
        .run(async {
            invitee.goto(&link).await?;
            invitee.heading("Join Acme").await?;
            invitee.check_accessibility().await?;
            invitee.fill("Your name", "Grace Hopper").await?;
            invitee.fill("Password", "short").await?;
            invitee.fill("Confirm the password", "short").await?;
            invitee.click_button("Accept and join").await?;
            invitee.wait_for_text("Use at least 12 characters.").await?;
            invitee.check_accessibility().await?;
            invitee.fill("Password", "a long new password").await?;
            invitee
                .fill("Confirm the password", "a long new password")
                .await?;
            invitee.click_button("Accept and join").await?;
            invitee.wait_for_path("/account/tokens").await?;
            invitee.heading("Personal tokens").await?;
            invitee.wait_for_text("Grace Hopper (Engineer)").await?;
            invitee.check_accessibility().await?;
            // The link worked once.
            invitee.goto(&link).await?;
            invitee
                .wait_for_text("This invitation link does not work")
                .await?;
            invitee.check_accessibility().await?;
            Ok(())
        })
        .await;
    b.run(async {
        b.click_link("Users").await?;
        b.heading("Users").await?;
        b.wait_for_text("No invitations are pending.").await?;
        b.wait_for_text("Grace Hopper").await?;
        b.check_accessibility().await?;
        Ok(())
    })
    .await;
}

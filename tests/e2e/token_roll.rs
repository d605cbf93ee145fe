//! Rolling a token from Personal tokens (sudo prompt, the overlap, the new string shown
//! once, both tokens listed until the overlap ends), and an allowlist made with
//! "Add my current address".

use tokenpanel::testkit::{Role, TestApp, TokenSpec};

use crate::browser::{fail, Browser, Js};
use crate::steps::{
    open_create_form, page_holds, reauthenticate_if_asked, sign_in, submit_and_read_token,
    wait_for_rows,
};

const DAY: i64 = 86_400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_a_token_and_keep_the_old_one_for_the_overlap() {
    let app = TestApp::sqlite().await;
    app.clock.freeze();
    let ada = app.persona(Role::Engineer).await;
    let old = app
        .issue_token(
            TokenSpec::user(&ada)
                .named("CI deploy")
                .described("Deploys from CI")
                .expires_at(app.now() + 90 * DAY),
        )
        .await;
    let Some(b) = Browser::open("roll_a_token_and_keep_the_old_one_for_the_overlap", Js::On).await
    else {
        return;
    };
    b.run(async {
        sign_in(&b, &app, &ada).await?;
        b.click_link("Roll token CI deploy").await?;
        reauthenticate_if_asked(&b, &ada).await?;
        b.heading("Roll token \u{201c}CI deploy\u{201d}").await?;
        b.check_accessibility().await?;
        b.choose("Overlap: how long the old secret keeps working", "24 hours")
            .await?;
        b.click_button("Roll token").await?;
        b.heading("Token rolled").await?;
        b.check_accessibility().await?;
        let secret = b.value_of("API token").await?;
        if !secret.starts_with("tpu_") || secret == old.key {
            fail!("the API token field holds {secret:?}, not a new user token string");
        }
        if !b
            .text()
            .await?
            .contains("The old secret keeps working until")
        {
            fail!("the rolled page does not say how long the old secret works");
        }
        let api = app.api();
        let new = api.get("/tokens/self", &secret).await;
        if new.status != 200 || new.json["rolled_from"] != old.id.as_str() {
            fail!("the new string is not the rolled token: {}", new.text);
        }
        if new.json["description"] != "Deploys from CI" {
            fail!("the description was not carried over: {}", new.text);
        }

        // Both listed, the new one "rolled from" the old, the old with its end; the
        // string is not on the list.
        b.click_link("Okay").await?;
        b.heading("Personal tokens").await?;
        wait_for_rows(&b, &["CI deploy", "CI deploy"], &[]).await?;
        let text = b.text().await?;
        if !text.contains(&format!("Rolled from {}", old.id))
            || !text.contains("Rolled: the old secret works until")
        {
            fail!("the list does not show the lineage and the overlap:\n{text}");
        }
        if page_holds(&b, &secret).await? {
            fail!("the token string is still on the list");
        }
        b.check_accessibility().await?;
        if api.get("/tokens/self", &old.key).await.status != 200 {
            fail!("the old secret stopped before the overlap ended");
        }

        // The overlap ends: the old one is gone and refused.
        app.clock.advance(DAY);
        b.reload().await?;
        b.heading("Personal tokens").await?;
        wait_for_rows(&b, &["CI deploy"], &[]).await?;
        if api.get("/tokens/self", &old.key).await.status != 401 {
            fail!("the old secret still works after the overlap");
        }
        if api.get("/tokens/self", &secret).await.status != 200 {
            fail!("the new secret stopped working");
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_with_add_my_current_address() {
    let app = TestApp::sqlite().await;
    let ada = app.persona(Role::User).await;
    let Some(b) = Browser::open("allowlist_with_add_my_current_address", Js::On).await else {
        return;
    };
    b.run(async {
        sign_in(&b, &app, &ada).await?;
        open_create_form(&b, &ada, false).await?;
        b.fill("Name", "Office only").await?;
        b.fill("Description (optional)", "Used from the office network")
            .await?;
        b.fill("IP allowlist (optional)", "2001:db8::/32").await?;
        b.click_button("Add my current address (127.0.0.1)").await?;
        b.heading("Create a Token").await?;
        let list = b.value_of("IP allowlist (optional)").await?;
        if list != "2001:db8::/32\n127.0.0.1" {
            fail!("the allowlist holds {list:?}");
        }
        if b.value_of("Name").await? != "Office only"
            || b.value_of("Description (optional)").await? != "Used from the office network"
        {
            fail!("adding the address lost the other fields");
        }
        b.check_accessibility().await?;
        let secret = submit_and_read_token(&b).await?;
        let me = app.api().get("/tokens/self", &secret).await;
        if me.status != 200 || me.json["allowed_cidrs"][1] != "127.0.0.1/32" {
            fail!("the token's allowlist is not the one typed: {}", me.text);
        }
        b.click_link("Okay").await?;
        b.heading("Personal tokens").await?;
        let text = b.text().await?;
        if !text.contains("From 2001:db8::/32, 127.0.0.1/32")
            || !text.contains("Used from the office network")
        {
            fail!("the list does not show the allowlist and description:\n{text}");
        }
        b.check_accessibility().await?;
        Ok(())
    })
    .await;
}

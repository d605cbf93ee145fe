//! Account > Event log: filter by event type and date; only matching rows remain,
//! and "Download CSV" carries the same filters.

use time::OffsetDateTime;
use tokenpanel::testkit::{Role, TestApp, TokenSpec};

use crate::browser::{fail, Browser, Js};
use crate::steps::{sign_in, wait_for_rows};

/// The filters a URL's query sets, as decoded (name, value) pairs, sorted (empty
/// fields set nothing).
fn filters_in(url: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = reqwest::Url::parse(url)
        .map(|u| {
            u.query_pairs()
                .into_owned()
                .filter(|(_, v)| !v.is_empty())
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    pairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_the_event_log() {
    let app = TestApp::sqlite().await;
    let ada = app.persona(Role::Superuser).await;
    app.issue_token(TokenSpec::user(&ada).named("Older token"))
        .await;
    app.clock.advance(3 * 86_400);
    app.issue_token(TokenSpec::user(&ada).named("Newer token"))
        .await;
    let today = OffsetDateTime::from_unix_timestamp(app.now())
        .unwrap()
        .date();
    let Some(b) = Browser::open("filter_the_event_log", Js::On).await else {
        return;
    };
    b.run(async {
        sign_in(&b, &app, &ada).await?;
        b.click_link("Event log").await?;
        b.wait_for_path("/account/events").await?;
        b.heading("Event log").await?;
        // Two token creations and this sign-in.
        wait_for_rows(&b, &["Older token", "Newer token", "user.login"], &[]).await?;
        b.check_accessibility().await?;

        b.pick("Event type", "token.create").await?;
        b.click_button("Filter").await?;
        wait_for_rows(&b, &["Older token", "Newer token"], &["user.login"]).await?;
        if !b
            .table_rows()
            .await?
            .iter()
            .all(|r| r.contains("token.create"))
        {
            fail!("a row of another event type is listed");
        }

        let from = b.field("From").await?;
        from.send_keys(&format!(
            "{:02}{:02}{}",
            u8::from(today.month()),
            today.day(),
            today.year()
        ))
        .await?;
        if b.value_of("From").await? != today.to_string() {
            fail!("the From field does not hold {today}");
        }
        b.click_button("Filter").await?;
        wait_for_rows(&b, &["Newer token"], &["Older token", "user.login"]).await?;
        b.check_accessibility().await?;
        let wanted = [
            ("event_type".to_owned(), "token.create".to_owned()),
            ("from".to_owned(), today.to_string()),
        ];
        let path = b.path().await?;
        if filters_in(&app.url(&path)) != wanted {
            fail!("the address {path} does not keep the filters");
        }

        let href = b
            .link("Download CSV")
            .await?
            .attr("href")
            .await?
            .unwrap_or_default();
        if !href.starts_with("/account/events.csv?") || filters_in(&app.url(&href)) != wanted {
            fail!("Download CSV points to {href:?}, not with the same filters");
        }

        // A reload keeps both filters and the same rows.
        b.reload().await?;
        b.heading("Event log").await?;
        wait_for_rows(&b, &["Newer token"], &["Older token"]).await?;
        if b.selected_in("Event type").await? != "token.create" {
            fail!("the Event type filter was lost on reload");
        }
        Ok(())
    })
    .await;
}

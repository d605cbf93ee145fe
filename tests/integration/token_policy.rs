//! Account token policy (Security > Token policy): each rule on the create form and on
//! the API, the page itself (superusers, sudo mode, event), the "Tokens that break the
//! policy" view with its bulk revoke, and the inactivity window of the sweep.

use tokenpanel::testkit::{on_both_databases, Role, TestApp, TokenPolicy, TokenSpec};

on_both_databases!(
    the_policy_page_is_for_superusers_in_sudo_and_records_an_event,
    each_rule_on_the_create_form,
    each_rule_on_the_api,
    the_breach_view_lists_old_tokens_and_revokes_them_in_bulk,
    the_sweep_uses_each_accounts_inactivity_window,
);

const DAY: i64 = 86_400;
const MUST_EXPIRE: &str = "The account's token policy requires tokens to expire.";
const AT_MOST_30: &str = "The account's token policy allows tokens to last at most 30 days.";
const NO_GLOBAL: &str =
    "The account's token policy does not allow the global scope on user tokens.";
const ALLOWLIST: &str =
    "The account's token policy requires automation tokens to have an IP allowlist.";

/// As the pages print a message.
fn html(text: &str) -> String {
    text.replace('\'', "&#39;")
}

fn rfc3339(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn strict() -> TokenPolicy {
    TokenPolicy {
        max_lifetime_days: Some(30),
        require_expiry: true,
        no_global_user_tokens: true,
        automation_needs_allowlist: true,
        inactivity_days: None,
    }
}

async fn the_policy_page_is_for_superusers_in_sudo_and_records_an_event(app: TestApp) {
    let account = app.account("Acme").await;
    let root = app.member(&account, Role::Superuser).await;
    let eng = app.member(&account, Role::Engineer).await;

    let engineer = app.client();
    engineer.sign_in(&eng).await;
    engineer.enter_sudo(&eng).await;
    engineer.get("/account/security/token-policy").await.assert(
        403,
        "Only superusers can change the account&#39;s token policy.",
    );
    let refused = engineer
        .post(
            "/account/security/token-policy",
            &[("require_expiry", "on")],
        )
        .await;
    assert_eq!(refused.status, 403);

    let client = app.client();
    client.sign_in(&root).await;
    let page = client.get("/account/security").await;
    page.assert(200, "Token policy");
    assert!(page.body.contains("unused tokens deleted after two years"));
    let prompt = client.get("/account/security/token-policy").await;
    assert_eq!(prompt.status, 303, "sudo mode first");
    assert!(prompt.location().starts_with("/account/sudo"));
    client.enter_sudo(&root).await;
    client
        .get("/account/security/token-policy")
        .await
        .assert(200, "Maximum lifetime of new tokens (days)");

    let bad = client
        .post(
            "/account/security/token-policy",
            &[("max_lifetime_days", "0"), ("inactivity_days", "10")],
        )
        .await;
    bad.assert(422, "Enter a number of days from 1 to 3650");
    assert!(bad.body.contains("Enter a number of days from 30 to 730"));
    assert_eq!(app.count("token_policies").await, 0);

    let saved = client
        .post(
            "/account/security/token-policy",
            &[
                ("max_lifetime_days", "30"),
                ("require_expiry", "on"),
                ("no_global_user_tokens", "on"),
                ("inactivity_days", "90"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), "/account/security?done=token-policy");
    let page = client.get(saved.location()).await;
    page.assert(200, "The token policy was saved.");
    assert!(page.body.contains(
        "maximum lifetime 30 days, tokens must expire, no global scope on user tokens, unused tokens deleted after 90 days"
    ));
    let (description, metadata): (String, String) = sqlx::query_as(
        "SELECT description, metadata FROM events WHERE event_type = 'account.token_policy_update'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(description.starts_with("Token policy: maximum lifetime 30 days"));
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    assert_eq!(
        metadata["from"]["max_lifetime_days"],
        serde_json::Value::Null
    );
    assert_eq!(metadata["to"]["max_lifetime_days"], 30);
    assert_eq!(metadata["to"]["inactivity_days"], 90);
    assert_eq!(metadata["to"]["automation_needs_allowlist"], false);
    // The form shows what is saved.
    let form = client.get("/account/security/token-policy").await;
    assert!(
        form.body.contains(
            r#"name="max_lifetime_days" type="text" inputmode="numeric" min="1" value="30""#
        ),
        "{}",
        form.body
    );
}

async fn each_rule_on_the_create_form(app: TestApp) {
    // The exact expiry is compared below: the clock must not tick between.
    app.clock.freeze();
    let account = app.account("Acme").await;
    let root = app.member(&account, Role::Superuser).await;
    let ada = app.member(&account, Role::User).await;
    app.set_token_policy(&root, &strict()).await;

    // A user: no "Never expire", no 90 days, the 30-day maximum instead, the global
    // scope not offered, and why.
    let client = app.client();
    client.sign_in(&ada).await;
    client.enter_sudo(&ada).await;
    let form = client.get("/account/tokens/new").await;
    form.assert(200, "This account's token policy");
    assert!(!form.body.contains("Never expire"), "{}", form.body);
    assert!(!form.body.contains(r#"value="90d""#));
    assert!(form.body.contains(r#"value="max" checked"#));
    assert!(form.body.contains("Tokens last at most 30 days."));
    assert!(form
        .body
        .contains("User tokens cannot have the global scope."));
    assert!(form
        .body
        .contains(r#"name="scope" value="global" disabled"#));
    assert!(form
        .body
        .contains(r#"name="scope" value="global:read" checked"#));

    let never = client
        .create_token(&[
            ("name", "n"),
            ("scope", "global:read"),
            ("expiration", "never"),
        ])
        .await;
    never.assert(422, &html(MUST_EXPIRE));
    let far = app.clock.now() + time::Duration::days(40);
    let far = format!(
        "{:04}-{:02}-{:02}",
        far.year(),
        far.month() as u8,
        far.day()
    );
    let long = client
        .create_token(&[
            ("name", "n"),
            ("scope", "global:read"),
            ("expiration", "date"),
            ("expires_on", &far),
        ])
        .await;
    long.assert(422, &html(AT_MOST_30));
    let global = client
        .create_token(&[("name", "n"), ("scope", "global"), ("expiration", "max")])
        .await;
    global.assert(422, &html(NO_GLOBAL));
    assert_eq!(app.count("tokens").await, 0);
    let ok = client
        .create_token(&[
            ("name", "fits"),
            ("scope", "global:read"),
            ("expiration", "max"),
        ])
        .await;
    ok.assert(200, "tpu_");
    let expires: i64 = sqlx::query_scalar("SELECT expires_at FROM tokens WHERE name = 'fits'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(expires, app.now() + 30 * DAY);

    // A superuser: an automation token without an allowlist is refused.
    let su = app.client();
    su.sign_in(&root).await;
    su.enter_sudo(&root).await;
    let form = su.get("/account/tokens/new").await;
    assert!(form
        .body
        .contains("Automation tokens need an IP allowlist."));
    assert!(
        form.body.contains("data-not-on-user-tokens"),
        "app.js keeps global off user tokens"
    );
    let robot = su
        .create_token(&[
            ("name", "robot"),
            ("type", "automation"),
            ("role", "engineer"),
            ("scope", "global"),
            ("expiration", "max"),
        ])
        .await;
    robot.assert(422, &html(ALLOWLIST));
    assert_eq!(app.count("tokens").await, 1);
    // With an allowlist (and global, fine on an automation token) it is made.
    let robot = su
        .create_token(&[
            ("name", "robot"),
            ("type", "automation"),
            ("role", "engineer"),
            ("scope", "global"),
            ("expiration", "max"),
            ("allowed_cidrs", "10.0.0.0/8"),
        ])
        .await;
    robot.assert(200, "tpa_");
    assert_eq!(app.count("tokens").await, 2);
}

async fn each_rule_on_the_api(app: TestApp) {
    let account = app.account("Acme").await;
    let root = app.member(&account, Role::Superuser).await;
    let ada = app.member(&account, Role::User).await;
    let root_key = app.issue_token(&root).await.key;
    app.set_token_policy(&root, &strict()).await;
    let api = app.api();
    let login = [
        ("username", ada.email.as_str()),
        ("password", ada.password.as_str()),
    ];
    let ask = |extra: Vec<(&'static str, String)>| {
        let mut fields: Vec<(&str, String)> =
            login.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        fields.extend(extra);
        fields
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let api = &api;
        async move {
            let borrowed: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            api.post_form("/tokens", None, &borrowed).await
        }
    };
    post(ask(vec![("scope", "global:read".into())]))
        .await
        .expect_msg(422, MUST_EXPIRE);
    post(ask(vec![
        ("scope", "global:read".into()),
        ("expires_at", rfc3339(app.now() + 31 * DAY)),
    ]))
    .await
    .expect_msg(422, AT_MOST_30);
    post(ask(vec![
        ("scope", "global".into()),
        ("expires_at", rfc3339(app.now() + 30 * DAY)),
    ]))
    .await
    .expect_msg(422, NO_GLOBAL);
    assert_eq!(app.count("tokens").await, 1, "only the superuser's key");
    post(ask(vec![
        ("scope", "global:read".into()),
        ("expires_at", rfc3339(app.now() + 30 * DAY)),
    ]))
    .await
    .expect(200);

    api.enter_sudo(&root_key, &root).await;
    api.post_form(
        "/automation-tokens",
        Some(&root_key),
        &[
            ("name", "ci"),
            ("role", "engineer"),
            ("scope", "global:read"),
            ("expires_at", &rfc3339(app.now() + 10 * DAY)),
        ],
    )
    .await
    .expect_msg(422, ALLOWLIST);
    assert_eq!(app.count("tokens").await, 2);
    api.post_form(
        "/automation-tokens",
        Some(&root_key),
        &[
            ("name", "ci"),
            ("role", "engineer"),
            ("scope", "global:read"),
            ("expires_at", &rfc3339(app.now() + 10 * DAY)),
            ("allowed_cidrs", "192.0.2.0/24"),
        ],
    )
    .await
    .expect(200);
    assert_eq!(app.count("tokens").await, 3);
}

async fn the_breach_view_lists_old_tokens_and_revokes_them_in_bulk(app: TestApp) {
    let account = app.account("Acme").await;
    let root = app.member(&account, Role::Superuser).await;
    let ada = app.member(&account, Role::User).await;
    let forever = app
        .issue_token(TokenSpec::user(&ada).named("forever global"))
        .await;
    let robot = app
        .issue_token(
            TokenSpec::automation(&root, Role::Engineer)
                .named("robot")
                .scope("global:read")
                .expires_at(app.now() + 10 * DAY),
        )
        .await;
    let fenced = app
        .issue_token(
            TokenSpec::automation(&root, Role::Engineer)
                .named("fenced robot")
                .scope("global:read")
                .allowed_from(&["10.0.0.0/8"])
                .expires_at(app.now() + 10 * DAY),
        )
        .await;
    let fine = app
        .issue_token(
            TokenSpec::user(&ada)
                .named("fine")
                .scope("global:read")
                .expires_at(app.now() + 20 * DAY),
        )
        .await;
    let client = app.client();
    client.sign_in(&root).await;
    client
        .get("/account/account-tokens/policy")
        .await
        .assert(200, "Every token of this account follows the policy.");
    app.set_token_policy(&root, &strict()).await;
    let page = client.get("/account/account-tokens/policy").await;
    page.assert(200, "Tokens that break the policy");
    assert!(page.body.contains("forever global"));
    assert!(page
        .body
        .contains("never expires; user token with the global scope"));
    assert!(page.body.contains("automation token without IP allowlist"));
    assert!(!page.body.contains(">fine<"), "{}", page.body);
    assert!(!page.body.contains("fenced robot"), "it has an allowlist");
    // A user may not look.
    let user = app.client();
    user.sign_in(&ada).await;
    assert_eq!(user.get("/account/account-tokens/policy").await.status, 403);

    // Bulk revoke through the list's own confirmation and sudo mode.
    let confirm = client
        .get(&format!(
            "/account/account-tokens/revoke?back=%2Faccount%2Faccount-tokens%2Fpolicy&token={}&token={}",
            forever.id, robot.id
        ))
        .await;
    confirm.assert(200, "Delete these 2 tokens?");
    let done = client
        .post(
            "/account/account-tokens/revoke",
            &[
                ("back", "/account/account-tokens/policy"),
                ("token", &forever.id),
                ("token", &robot.id),
                ("password", &root.password),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/account/account-tokens/policy?deleted=2");
    client
        .get(done.location())
        .await
        .assert(200, "2 tokens were deleted.");
    assert!(!app.token_exists(&forever.id).await);
    assert!(!app.token_exists(&robot.id).await);
    assert!(app.token_exists(&fine.id).await);
    assert!(app.token_exists(&fenced.id).await);
    let destroyed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'token.destroy'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(destroyed, 2);
}

async fn the_sweep_uses_each_accounts_inactivity_window(app: TestApp) {
    let strict_account = app.account("Strict").await;
    let lax_account = app.account("Lax").await;
    let root = app.member(&strict_account, Role::Superuser).await;
    let ada = app.member(&strict_account, Role::User).await;
    let bob = app.member(&lax_account, Role::User).await;
    let ada_token = app.issue_token(&ada).await;
    let bob_token = app.issue_token(&bob).await;
    app.set_token_policy(
        &root,
        &TokenPolicy {
            inactivity_days: Some(30),
            ..TokenPolicy::default()
        },
    )
    .await;
    app.clock.advance(30 * DAY - 60);
    assert_eq!(app.sweep_unused().await, 0);
    app.clock.advance(120);
    assert_eq!(app.sweep_unused().await, 1);
    assert!(!app.token_exists(&ada_token.id).await);
    assert!(
        app.token_exists(&bob_token.id).await,
        "the other account keeps two years"
    );
    let metadata: String = sqlx::query_scalar(
        "SELECT metadata FROM events WHERE event_type = 'token.destroy' AND token_id = $1",
    )
    .bind(&ada_token.id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(metadata.contains("unused for 30 days"), "{metadata}");
}

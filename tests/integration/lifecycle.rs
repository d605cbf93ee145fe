//! Token lifecycle: the two-year sweep, and legacy API key import.

use tokenpanel::testkit::{digest, on_both_databases, ImportError, Role, TestApp, TokenSpec};

const LAST_SUPERUSER: &str = "This is the last superuser of the account.";

on_both_databases!(
    sweep_deletes_tokens_unused_for_two_years,
    legacy_keys_import_once_under_a_synthetic_user,
    legacy_import_stops_at_the_token_limit,
    the_synthetic_user_keeps_no_account_and_its_address_is_nobodys,
);

const DAY: i64 = 86_400;

async fn sweep_deletes_tokens_unused_for_two_years(app: TestApp) {
    let ada = app.persona(Role::User).await;
    let never_used = app
        .issue_token(TokenSpec::user(&ada).named("never used"))
        .await
        .id;
    let used = app
        .issue_token(TokenSpec::user(&ada).named("used later"))
        .await
        .id;
    // "used later" was last used 100 days after both were created.
    sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
        .bind(app.now() + 100 * DAY)
        .bind(&used)
        .execute(app.pool())
        .await
        .unwrap();
    // One day either side of two calendar years after creation.
    let created = app.clock.now();
    let deadline = created
        .replace_year(created.year() + 2)
        .unwrap_or_else(|_| created + time::Duration::days(731));
    app.clock
        .advance((deadline - created).whole_seconds() - DAY);
    assert_eq!(app.sweep_unused().await, 0);
    assert_eq!(app.token_names().await, vec!["never used", "used later"]);
    app.clock.advance(2 * DAY);
    assert_eq!(app.sweep_unused().await, 1);
    assert_eq!(
        app.token_names().await,
        vec!["used later"],
        "never-used tokens count from creation"
    );
    let (event_token, metadata): (String, String) =
        sqlx::query_as("SELECT token_id, metadata FROM events WHERE event_type = 'token.destroy'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(event_token, never_used);
    assert!(metadata.contains("unused for two years"));
    // The used one goes two years after its last use.
    app.clock.advance(100 * DAY - 2 * DAY);
    assert_eq!(app.sweep_unused().await, 0);
    app.clock.advance(2 * DAY);
    assert_eq!(app.sweep_unused().await, 1);
    assert!(app.token_names().await.is_empty());
}

async fn legacy_keys_import_once_under_a_synthetic_user(app: TestApp) {
    let account = app.account("Acme").await;
    let key = "0123456789abcdef0123456789abcdef";
    let token_id = app.import_legacy_key(&account, key).await.unwrap();
    let (name, scope, expires, user_name, password): (String, String, Option<i64>, String, Option<String>) = sqlx::query_as(
        "SELECT t.name, t.scope, t.expires_at, u.name, u.password_hash FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1",
    )
    .bind(&token_id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(
        (name.as_str(), scope.as_str(), expires),
        ("Legacy API key", "global", None)
    );
    assert_eq!(user_name, "Global API Token");
    assert_eq!(password, None, "the synthetic user has no password");
    assert_eq!(app.count("token_services").await, 0, "all services");
    let stored: String = sqlx::query_scalar("SELECT secret_digest FROM tokens WHERE id = $1")
        .bind(&token_id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, digest(key));
    // The old key now works as a credential on the API.
    let api = app.api();
    let me = api.get("/tokens/self", key).await;
    me.expect(200);
    assert_eq!(me.json["id"], token_id.as_str());
    assert_eq!(me.json["scope"], "global");
    let current = api.get("/current_user", key).await;
    current.expect(200);
    assert!(current.text.contains("Global API Token"));
    assert!(matches!(
        app.import_legacy_key(&account, key).await,
        Err(ImportError::AlreadyImported)
    ));
    // A second key reuses the synthetic user.
    app.import_legacy_key(&account, "fedcba9876543210fedcba9876543210")
        .await
        .unwrap();
    let synthetic: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE name = 'Global API Token'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(synthetic, 1);
    assert!(matches!(
        app.import_legacy_key(&account, "short").await,
        Err(ImportError::Malformed)
    ));
    assert!(matches!(
        app.import_legacy_key("nope", "abcdefabcdefabcdef12").await,
        Err(ImportError::UnknownAccount)
    ));
    // The synthetic user cannot sign in, whatever password is tried.
    let email: String =
        sqlx::query_scalar("SELECT email FROM users WHERE name = 'Global API Token'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    let client = app.client();
    client.get("/login").await;
    client
        .post("/login", &[("email", &email), ("password", "")])
        .await
        .assert(400, "Enter your email and your password.");
    client
        .post("/login", &[("email", &email), ("password", key)])
        .await
        .assert(401, "Incorrect email or password.");
}

/// The synthetic user is a user like any other: at most 100 active tokens, and the 101st
/// import says so (not "already imported").
async fn legacy_import_stops_at_the_token_limit(app: TestApp) {
    let account = app.account("Legacy").await;
    for i in 0..100 {
        app.import_legacy_key(&account, &format!("legacy-key-number-{i:04}"))
            .await
            .unwrap();
    }
    let refused = app
        .import_legacy_key(&account, "legacy-key-number-0100")
        .await;
    assert!(
        matches!(refused, Err(ImportError::LimitReached(100))),
        "{refused:?}"
    );
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("100 imported keys"));
    assert_eq!(app.count("tokens").await, 100);
}

/// The synthetic "Global API Token" user holds the superuser role, but nobody can sign in
/// as it: it does not count as the superuser an account must keep, and its reserved
/// address cannot be given to a person.
async fn the_synthetic_user_keeps_no_account_and_its_address_is_nobodys(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    let account = boss.account_id.clone();
    app.import_legacy_key(&account, "0123456789abcdef0123456789abcdef")
        .await
        .unwrap();
    let (synthetic_id, email): (String, String) =
        sqlx::query_as("SELECT id, email FROM users WHERE synthetic = 1")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(
        app.role_in(&account, &synthetic_id).await.as_deref(),
        Some("superuser")
    );

    client.enter_sudo(&boss).await;
    let me = format!("/account/users/{}", boss.id);
    client
        .post(&format!("{me}/role"), &[("role", "engineer")])
        .await
        .assert(409, LAST_SUPERUSER);
    client
        .post(&format!("{me}/remove"), &[])
        .await
        .assert(409, LAST_SUPERUSER);
    client
        .post(&format!("{me}/delete"), &[])
        .await
        .assert(409, LAST_SUPERUSER);
    assert_eq!(
        app.role_in(&account, &boss.id).await.as_deref(),
        Some("superuser")
    );
    // The synthetic user is no such last superuser: it may step down.
    let demoted = client
        .post(
            &format!("/account/users/{synthetic_id}/role"),
            &[("role", "engineer")],
        )
        .await;
    assert_eq!(demoted.status, 303, "{}", demoted.body);
    assert_eq!(
        app.role_in(&account, &synthetic_id).await.as_deref(),
        Some("engineer")
    );

    // Its address, or any in .invalid, is nobody's: not on the page, not over the API.
    client
        .invite(&email, "user", &[])
        .await
        .assert(422, "Addresses ending in .invalid are reserved.");
    let token = app.issue_token(TokenSpec::user(&boss)).await;
    let body = serde_json::json!({
        "data": {"type": "invitation", "attributes": {"email": email.to_uppercase(), "role": "superuser"}}
    });
    app.api()
        .post_json_api("/invitations", Some(&token.key), body)
        .await
        .expect_msg(
            422,
            "Addresses ending in .invalid are reserved. Enter a real email address.",
        );
    assert_eq!(app.count("invitations").await, 0);
}

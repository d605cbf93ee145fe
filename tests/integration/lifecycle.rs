//! Token lifecycle: the two-year sweep, and legacy API key import.

use tokenpanel::clock::Clock;
use tokenpanel::domain::roles::Role;
use tokenpanel::domain::secret::digest;
use tokenpanel::tokens::{import_legacy_key, sweep_unused, ImportError};

use crate::common::{issue_global_token, TestApp};
use crate::on_both_databases;

on_both_databases!(
    sweep_deletes_tokens_unused_for_two_years,
    legacy_keys_import_once_under_a_synthetic_user,
    legacy_import_stops_at_the_token_limit,
);

const DAY: i64 = 86_400;

async fn token(app: &TestApp, account: &str, user: &str, name: &str) -> String {
    issue_global_token(&app.state, account, user, name, &[])
        .await
        .unwrap()
        .id
}

async fn remaining(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT name FROM tokens ORDER BY name")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap()
}

async fn sweep_deletes_tokens_unused_for_two_years(app: TestApp) {
    let account = app.account("Acme").await;
    let ada = app.persona(&account, Role::User).await;
    let never_used = token(&app, &account, &ada.id, "never used").await;
    let used = token(&app, &account, &ada.id, "used later").await;
    // "used later" was last used 100 days after both were created.
    sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
        .bind(app.now() + 100 * DAY)
        .bind(&used)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    // One day either side of two calendar years after creation.
    let created = app.clock.now();
    let deadline = created
        .replace_year(created.year() + 2)
        .unwrap_or_else(|_| created + time::Duration::days(731));
    app.clock
        .advance((deadline - created).whole_seconds() - DAY);
    assert_eq!(sweep_unused(&app.state).await.unwrap(), 0);
    assert_eq!(remaining(&app).await, vec!["never used", "used later"]);
    app.clock.advance(2 * DAY);
    assert_eq!(sweep_unused(&app.state).await.unwrap(), 1);
    assert_eq!(
        remaining(&app).await,
        vec!["used later"],
        "never-used tokens count from creation"
    );
    let (event_token, metadata): (String, String) =
        sqlx::query_as("SELECT token_id, metadata FROM events WHERE event_type = 'token.destroy'")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(event_token, never_used);
    assert!(metadata.contains("unused for two years"));
    // The used one goes two years after its last use.
    app.clock.advance(100 * DAY - 2 * DAY);
    assert_eq!(sweep_unused(&app.state).await.unwrap(), 0);
    app.clock.advance(2 * DAY);
    assert_eq!(sweep_unused(&app.state).await.unwrap(), 1);
    assert!(remaining(&app).await.is_empty());
}

async fn legacy_keys_import_once_under_a_synthetic_user(app: TestApp) {
    let account = app.account("Acme").await;
    let key = "0123456789abcdef0123456789abcdef";
    let token_id = import_legacy_key(&app.state, &account, key).await.unwrap();
    let (name, scope, expires, user_name, password): (String, String, Option<i64>, String, Option<String>) = sqlx::query_as(
        "SELECT t.name, t.scope, t.expires_at, u.name, u.password_hash FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1",
    )
    .bind(&token_id)
    .fetch_one(&app.state.db.pool)
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
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, digest(key));
    // The old key now works as a credential on the API.
    let response = reqwest::Client::new()
        .get(app.url("/tokens/self"))
        .header("Fastly-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["id"], token_id.as_str());
    assert_eq!(body["scope"], "global");
    let current = reqwest::Client::new()
        .get(app.url("/current_user"))
        .header("Fastly-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 200);
    assert!(current.text().await.unwrap().contains("Global API Token"));
    assert!(matches!(
        import_legacy_key(&app.state, &account, key).await,
        Err(ImportError::AlreadyImported)
    ));
    // A second key reuses the synthetic user.
    import_legacy_key(&app.state, &account, "fedcba9876543210fedcba9876543210")
        .await
        .unwrap();
    let synthetic: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE name = 'Global API Token'")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(synthetic, 1);
    assert!(matches!(
        import_legacy_key(&app.state, &account, "short").await,
        Err(ImportError::Malformed)
    ));
    assert!(matches!(
        import_legacy_key(&app.state, "nope", "abcdefabcdefabcdef12").await,
        Err(ImportError::UnknownAccount)
    ));
    // The synthetic user cannot sign in, whatever password is tried.
    let email: String =
        sqlx::query_scalar("SELECT email FROM users WHERE name = 'Global API Token'")
            .fetch_one(&app.state.db.pool)
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
        import_legacy_key(&app.state, &account, &format!("legacy-key-number-{i:04}"))
            .await
            .unwrap();
    }
    let refused = import_legacy_key(&app.state, &account, "legacy-key-number-0100").await;
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

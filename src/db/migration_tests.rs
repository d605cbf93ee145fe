//! Migration 0007 rebuilds the tables with CHECK constraints: data written under the
//! older schema must come through whole, and the constraints must then hold, on both
//! databases. Later migrations then apply over the same data.

use std::borrow::Cow;

use sqlx::migrate::Migrator;

use super::{connect, Db, MIGRATOR};

const SEED: &[&str] = &[
    "INSERT INTO accounts (id, name, force_2fa, force_sso, created_at) VALUES ('a1', 'Acme', 1, 0, 10)",
    "INSERT INTO users (id, email, name, password_hash, totp_secret, totp_last_step, locked, created_at) \
     VALUES ('u1', 'ada@example.test', 'Ada', 'hash', 'sealed', 7, 0, 11)",
    "INSERT INTO users (id, email, name, created_at) VALUES ('u2', 'bob@example.test', 'Bob', 12)",
    "INSERT INTO users (id, email, name, created_at) VALUES ('u3', 'global-api-token@a1.legacy.invalid', 'Global API Token', 12)",
    "INSERT INTO memberships (account_id, user_id, role, created_at) VALUES ('a1', 'u3', 'superuser', 12)",
    "INSERT INTO memberships (account_id, user_id, role, created_at) VALUES ('a1', 'u1', 'superuser', 13)",
    "INSERT INTO memberships (account_id, user_id, role, created_at) VALUES ('a1', 'u2', 'engineer', 14)",
    "INSERT INTO services (id, account_id, name, created_at) VALUES ('s1', 'a1', 'www', 15)",
    "INSERT INTO service_permissions (account_id, user_id, service_id, permission) VALUES ('a1', 'u2', 's1', 'purge_all')",
    "INSERT INTO tokens (id, account_id, kind, user_id, created_by, name, scope, role, tls_access, secret_digest, created_at, expires_at, last_used_at, last_used_ip, last_used_agent, sudo_until) \
     VALUES ('t1', 'a1', 'user', 'u1', 'u1', 'ci', 'global purge_all', NULL, 0, 'd1', 16, 99, 17, '10.0.0.1', 'curl', 18)",
    "INSERT INTO tokens (id, account_id, kind, user_id, created_by, name, scope, role, tls_access, secret_digest, created_at) \
     VALUES ('t2', 'a1', 'automation', NULL, 'u1', 'deploy', 'global', 'engineer', 1, 'd2', 19)",
    "INSERT INTO token_services (token_id, service_id) VALUES ('t1', 's1')",
    "INSERT INTO recovery_codes (user_id, code_digest, created_at, used_at) VALUES ('u1', 'c1', 20, NULL)",
    "INSERT INTO password_links (digest, user_id, created_at, expires_at) VALUES ('l1', 'u2', 21, 22)",
];

/// Each of these breaks a constraint the rebuilt tables carry.
const REFUSED: &[&str] = &[
    "UPDATE memberships SET role = 'admin' WHERE user_id = 'u1'",
    "UPDATE accounts SET force_2fa = 2",
    "UPDATE accounts SET force_sso = -1",
    "UPDATE users SET locked = 7 WHERE id = 'u1'",
    "UPDATE service_permissions SET permission = 'everything'",
    "UPDATE tokens SET kind = 'robot' WHERE id = 't1'",
    "UPDATE tokens SET user_id = NULL WHERE id = 't1'",
    "UPDATE tokens SET tls_access = 1 WHERE id = 't1'",
    "UPDATE tokens SET role = 'superuser' WHERE id = 't2'",
    "UPDATE tokens SET user_id = 'u1' WHERE id = 't2'",
];

/// id, scope, role, tls_access, expires_at, last_used_agent
type TokenColumns = (
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<String>,
);

async fn rebuilds_with_data_and_checks(db: Db) {
    let before = Migrator {
        migrations: Cow::Owned(MIGRATOR.iter().filter(|m| m.version < 7).cloned().collect()),
        ..Migrator::DEFAULT
    };
    before
        .run(&db.pool)
        .await
        .expect("the older migrations apply");
    for statement in SEED {
        sqlx::query(statement)
            .execute(&db.pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let through_0007 = Migrator {
        migrations: Cow::Owned(
            MIGRATOR
                .iter()
                .filter(|m| m.version <= 7)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    };
    through_0007
        .run(&db.pool)
        .await
        .expect("0007 applies over data");

    let tokens: Vec<TokenColumns> = sqlx::query_as(
        "SELECT id, scope, role, tls_access, expires_at, last_used_agent FROM tokens ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        tokens,
        vec![
            (
                "t1".into(),
                "global purge_all".into(),
                None,
                0,
                Some(99),
                Some("curl".into())
            ),
            (
                "t2".into(),
                "global".into(),
                Some("engineer".into()),
                1,
                None,
                None
            ),
        ]
    );
    for (table, rows) in [
        ("accounts", 1),
        ("users", 3),
        ("memberships", 3),
        ("services", 1),
        ("service_permissions", 1),
        ("token_services", 1),
        ("recovery_codes", 1),
        ("password_links", 1),
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(n, rows, "{table}");
    }
    let (totp, step): (Option<String>, Option<i64>) =
        sqlx::query_as("SELECT totp_secret, totp_last_step FROM users WHERE id = 'u1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((totp.as_deref(), step), (Some("sealed"), Some(7)));

    for statement in REFUSED {
        assert!(
            sqlx::query(statement).execute(&db.pool).await.is_err(),
            "{statement} must break a constraint"
        );
    }
    // The foreign keys were made again: deleting a token takes its service rows along,
    // and a membership cannot name a user who does not exist.
    sqlx::query("DELETE FROM tokens WHERE id = 't1'")
        .execute(&db.pool)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM token_services")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert!(sqlx::query(
        "INSERT INTO memberships (account_id, user_id, role, created_at) VALUES ('a1', 'nobody', 'user', 1)"
    )
    .execute(&db.pool)
    .await
    .is_err());
    // The migrations after 0007 apply over the same data; 0008 marks the synthetic
    // legacy-key user made before it, and only that user.
    db.migrate().await.expect("the later migrations apply");
    let synthetic: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, synthetic FROM users ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        synthetic,
        vec![("u1".into(), 0), ("u2".into(), 0), ("u3".into(), 1)]
    );
}

#[tokio::test]
async fn sqlite_keeps_its_data_through_0007() {
    let path = std::env::temp_dir().join(format!(
        "tokenpanel-migration-{}.db",
        crate::domain::random::base62(12)
    ));
    let db = connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    rebuilds_with_data_and_checks(db.clone()).await;
    // 0054 indexed the names of the tokens already stored (t1 was deleted before it).
    let indexed: Vec<String> = sqlx::query_scalar(
        "SELECT n.token_id FROM token_name_trigrams f JOIN token_names n ON n.id = f.rowid \
         WHERE f.token_name_trigrams MATCH '\"EPLO\"'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(indexed, ["t2"]);
    db.pool.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn postgres_keeps_its_data_through_0007() {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "TEST_DATABASE_URL must point at PostgreSQL in CI"
        );
        eprintln!("skipped on PostgreSQL: TEST_DATABASE_URL is not set");
        return;
    };
    let admin = connect(&admin_url).await.unwrap();
    let name = format!(
        "tokenpanel_migration_{}",
        crate::domain::random::base62(10).to_lowercase()
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin.pool)
        .await
        .unwrap();
    let (base, query) = admin_url.split_once('?').unwrap_or((&admin_url, ""));
    let base = base.rsplit_once('/').map_or(base, |(host, _)| host);
    let url = if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    };
    let db = connect(&url).await.unwrap();
    rebuilds_with_data_and_checks(db.clone()).await;
    db.pool.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin.pool)
        .await
        .unwrap();
}

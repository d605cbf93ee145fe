//! The superuser parts of the panel: Account tokens (list, filters, revoke one or
//! several), automation tokens, users, services, the account switcher, and that every
//! one of them is refused to other roles and confined to the current account.

use tokenpanel::testkit::{
    bench, digest, hidden, invitation_link, on_both_databases, urlencode, Page, Role, Scope,
    ServicePermission, TestApp, TokenSpec,
};

on_both_databases!(
    admin_pages_and_actions_are_refused_to_other_roles,
    a_superuser_cannot_reach_another_account,
    account_tokens_list_filters_sorts_and_pages,
    account_tokens_name_search_finds_the_same_tokens_with_or_without_its_index,
    concurrent_token_writes_all_succeed_and_the_search_follows_them,
    revoke_one_or_several_all_or_nothing,
    automation_tokens_need_sudo_and_follow_their_role,
    automation_tokens_survive_their_creator,
    user_deletion_is_refused_while_they_hold_tokens,
    the_last_superuser_cannot_be_removed_or_demoted,
    two_superusers_demoting_each_other_at_once_leave_one,
    inviting_users_with_a_one_time_link,
    existing_users_join_by_invitation_then_roles_and_service_limits,
    the_switcher_changes_what_every_list_shows,
    services_are_managed_by_superusers_and_full_engineers,
);

async fn scalar_i64(app: &TestApp, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

/// (event type, actor, metadata) of every event, oldest first.
async fn events(app: &TestApp) -> Vec<(String, Option<String>, String)> {
    sqlx::query_as("SELECT event_type, actor_id, metadata FROM events ORDER BY created_at, id")
        .fetch_all(app.pool())
        .await
        .unwrap()
}

async fn admin_pages_and_actions_are_refused_to_other_roles(app: TestApp) {
    let boss = app.persona(Role::Superuser).await;
    let victim = app.member(&boss.account_id, Role::User).await;
    let victim_token = app
        .issue_token(TokenSpec::user(&victim).named("victims token"))
        .await
        .id;
    let www = app.service(&boss.account_id, "www").await;
    for role in [Role::User, Role::Billing, Role::Engineer] {
        let me = app.member(&boss.account_id, role).await;
        let client = app.client();
        client.sign_in(&me).await;
        let home = client.get("/account/tokens").await;
        assert!(!home.body.contains("Account tokens"), "{role}: no tab");
        assert!(
            !home.body.contains("/account/users"),
            "{role}: no Users entry"
        );
        assert_eq!(
            home.body.contains("/account/services"),
            role == Role::Engineer,
            "{role}: Services entry"
        );
        for path in [
            "/account/account-tokens".to_owned(),
            "/account/account-tokens?type=user".to_owned(),
            format!("/account/account-tokens/revoke?token={victim_token}"),
            "/account/users".to_owned(),
            "/account/users/new".to_owned(),
            format!("/account/users/{}", victim.id),
            format!("/account/users/{}/remove", victim.id),
            format!("/account/users/{}/delete", victim.id),
        ] {
            let page = client.get(&path).await;
            assert_eq!(page.status, 403, "{role}: GET {path}");
            assert!(
                !page.body.contains("victim"),
                "{role}: {path} leaks nothing"
            );
        }
        let users_before = app.count("users").await;
        let events_before = app.count("events").await;
        let crafted: Vec<(String, Vec<(&str, &str)>)> = vec![
            (
                "/account/account-tokens/revoke".into(),
                vec![("token", victim_token.as_str())],
            ),
            (
                "/account/users/invitations".into(),
                vec![("email", "new@example.test"), ("role", "superuser")],
            ),
            (
                format!("/account/users/{}/role", me.id),
                vec![("role", "superuser")],
            ),
            (
                format!("/account/users/{}/role", boss.id),
                vec![("role", "user")],
            ),
            (
                format!("/account/users/{}/services", victim.id),
                vec![("limit", "all")],
            ),
            (format!("/account/users/{}/remove", victim.id), vec![]),
            (format!("/account/users/{}/delete", victim.id), vec![]),
        ];
        for (path, fields) in &crafted {
            let page = client.post(path, fields).await;
            assert_eq!(page.status, 403, "{role}: POST {path}: {}", page.body);
        }
        if role != Role::Engineer {
            assert_eq!(client.get("/account/services").await.status, 403, "{role}");
            for (path, fields) in [
                ("/account/services".to_owned(), vec![("name", "sneaky")]),
                (
                    format!("/account/services/{www}"),
                    vec![("name", "renamed")],
                ),
                (format!("/account/services/{www}/delete"), vec![]),
            ] {
                let page = client.post(&path, &fields).await;
                assert_eq!(page.status, 403, "{role}: POST {path}");
            }
            assert_eq!(
                client.get(&format!("/account/services/{www}")).await.status,
                403
            );
        }
        // Automation tokens through the create form, even in sudo mode.
        client.enter_sudo(&me).await;
        client
            .create_token(&[
                ("name", "robot"),
                ("type", "automation"),
                ("role", "engineer"),
                ("scope", "global"),
                ("access", "all"),
                ("expiration", "90d"),
            ])
            .await
            .assert(422, "Choose a token type you may create.");
        assert!(app.token_exists(&victim_token).await, "{role}");
        assert_eq!(app.count("users").await, users_before, "{role}");
        assert_eq!(
            app.count("events").await,
            events_before + 1,
            "{role}: only user.sudo"
        );
        assert_eq!(
            app.role_in(&boss.account_id, &boss.id).await.as_deref(),
            Some("superuser")
        );
        assert_eq!(
            app.role_in(&boss.account_id, &me.id).await.as_deref(),
            Some(role.as_str())
        );
        assert_eq!(
            app.role_in(&boss.account_id, &victim.id).await.as_deref(),
            Some("user")
        );
        assert_eq!(
            scalar_i64(
                &app,
                "SELECT COUNT(*) FROM tokens WHERE kind = $1",
                "automation"
            )
            .await,
            0
        );
        assert_eq!(app.count("services").await, 1);
    }
    // The superuser sees everything the others were refused.
    let client = app.client();
    client.sign_in(&boss).await;
    let home = client.get("/account/tokens").await;
    home.assert(200, "Account tokens")
        .assert(200, "/account/users")
        .assert(200, "/account/services");
    client
        .get("/account/account-tokens")
        .await
        .assert(200, "victims token");
    client
        .get("/account/users")
        .await
        .assert(200, &victim.email);
    client.get("/account/services").await.assert(200, "www");
}

async fn a_superuser_cannot_reach_another_account(app: TestApp) {
    let (client, _boss) = app.signed_in(Role::Superuser).await;
    let other = app.account("Other").await;
    let their_boss = app.member(&other, Role::Superuser).await;
    let their_user = app.member(&other, Role::User).await;
    let their_token = app
        .issue_token(TokenSpec::user(&their_user).named("their secret token"))
        .await
        .id;
    let their_service = app.service(&other, "their-service").await;
    let before = (
        app.count("tokens").await,
        app.count("memberships").await,
        app.count("users").await,
        app.count("services").await,
        app.count("events").await,
    );

    let list = client
        .get(&format!("/account/account-tokens?owner={}", their_user.id))
        .await;
    list.assert(200, "No tokens match");
    assert!(!list.body.contains("their secret token"));
    let all = client.get("/account/account-tokens").await;
    assert!(!all.body.contains("their secret token"));
    assert_eq!(
        client
            .get(&format!(
                "/account/account-tokens/revoke?token={their_token}"
            ))
            .await
            .status,
        404
    );
    client.get("/account/tokens").await;
    assert_eq!(
        client
            .post("/account/account-tokens/revoke", &[("token", &their_token)])
            .await
            .status,
        404
    );

    let users = client.get("/account/users").await;
    assert!(!users.body.contains(&their_user.email));
    for path in [
        format!("/account/users/{}", their_user.id),
        format!("/account/users/{}/remove", their_user.id),
        format!("/account/users/{}/delete", their_user.id),
    ] {
        assert_eq!(client.get(&path).await.status, 404, "GET {path}");
    }
    client.get("/account/tokens").await;
    for (path, fields) in [
        (
            format!("/account/users/{}/role", their_boss.id),
            vec![("role", "user")],
        ),
        (
            format!("/account/users/{}/services", their_user.id),
            vec![("limit", "all")],
        ),
        (format!("/account/users/{}/remove", their_user.id), vec![]),
        (format!("/account/users/{}/delete", their_user.id), vec![]),
        (
            format!("/account/services/{their_service}"),
            vec![("name", "hijacked")],
        ),
        (format!("/account/services/{their_service}/delete"), vec![]),
    ] {
        let page = client.post(&path, &fields).await;
        assert_eq!(page.status, 404, "POST {path}: {}", page.body);
    }
    let services = client.get("/account/services").await;
    assert!(!services.body.contains("their-service"));
    assert_eq!(
        client
            .get(&format!("/account/services/{their_service}"))
            .await
            .status,
        404
    );
    // Not a member of the other account: the switcher refuses it.
    client.get("/account/tokens").await;
    assert_eq!(
        client
            .post("/account/switch", &[("account_id", &other)])
            .await
            .status,
        403
    );
    assert!(!client
        .get("/account/account-tokens")
        .await
        .body
        .contains("their secret token"));
    let after = (
        app.count("tokens").await,
        app.count("memberships").await,
        app.count("users").await,
        app.count("services").await,
        app.count("events").await,
    );
    assert_eq!(before, after, "nothing changed");
    assert_eq!(
        app.role_in(&other, &their_boss.id).await.as_deref(),
        Some("superuser")
    );
}

async fn account_tokens_list_filters_sorts_and_pages(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    let account = boss.account_id.clone();
    let ada = app.member(&account, Role::Engineer).await;
    let bob = app.member(&account, Role::User).await;
    let www = app.service(&account, "www.example.com").await;
    let now = app.now();
    app.issue_token(
        TokenSpec::user(&ada)
            .named("ada purge")
            .scope("purge_all")
            .services(std::slice::from_ref(&www))
            .expires_at(now + 100),
    )
    .await;
    app.issue_token(
        TokenSpec::user(&bob)
            .named("bob reader")
            .scope("global:read"),
    )
    .await;
    app.issue_token(
        TokenSpec::automation(&boss, Role::Engineer)
            .named("CI robot")
            .expires_at(now + 50),
    )
    .await;
    app.clock.advance(10);
    app.issue_token(
        TokenSpec::user(&bob)
            .named("bob old")
            .expires_at(app.now() + 5),
    )
    .await;
    app.clock.advance(10);

    let list = client.get("/account/account-tokens").await;
    for text in [
        "Owner",
        "Name",
        "Type",
        "Role",
        "Scope",
        "Access",
        "Created",
        "Last used",
        "Expires",
        "ada purge",
        "bob reader",
        "CI robot",
        "bob old",
        "Automation",
        "Automation token",
        "User token",
        "Engineer",
        "Purge full cache",
        "www.example.com",
        "All services",
        "Expired",
        &ada.email,
        "Delete selected",
    ] {
        list.assert(200, text);
    }
    // Newest first by default.
    // Positions in the table (the expiry banner above it may name the same tokens).
    let pos = |page: &Page, s: &str| {
        page.body
            .find(&format!("<td>{s}</td>"))
            .unwrap_or(usize::MAX)
    };
    assert!(pos(&list, "bob old") < pos(&list, "ada purge"));

    let names = |page: &Page| -> Vec<&str> {
        ["ada purge", "bob reader", "CI robot", "bob old"]
            .into_iter()
            .filter(|n| page.body.contains(&format!("<td>{n}</td>")))
            .collect()
    };
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("type=automation".into(), vec!["CI robot"]),
        (
            "type=user".into(),
            vec!["ada purge", "bob reader", "bob old"],
        ),
        (format!("owner={}", bob.id), vec!["bob reader", "bob old"]),
        ("scope=purge_all".into(), vec!["ada purge"]),
        ("scope=global".into(), vec!["CI robot", "bob old"]),
        ("scope=global%3Aread".into(), vec!["bob reader"]),
        ("status=expired".into(), vec!["bob old"]),
        (
            "status=active".into(),
            vec!["ada purge", "bob reader", "CI robot"],
        ),
        ("q=BOB".into(), vec!["bob reader", "bob old"]),
        ("q=%25".into(), vec![]),
        (
            format!("type=user&owner={}&status=active", bob.id),
            vec!["bob reader"],
        ),
        // Unknown values are dropped: the unfiltered list.
        (
            "type=admin&scope=nope&status=x".into(),
            vec!["ada purge", "bob reader", "CI robot", "bob old"],
        ),
    ];
    for (query, expected) in cases {
        let page = client
            .get(&format!("/account/account-tokens?{query}"))
            .await;
        assert_eq!(page.status, 200, "{query}");
        assert_eq!(names(&page), expected, "{query}");
    }
    // Sorted by expiry, soonest first; never-expiring last.
    let by_expiry = client.get("/account/account-tokens?sort=expires").await;
    let order: Vec<usize> = ["bob old", "CI robot", "ada purge", "bob reader"]
        .iter()
        .map(|n| pos(&by_expiry, n))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    // Last used: a used token comes first, newest first.
    sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE name = 'bob reader'")
        .bind(app.now())
        .execute(app.pool())
        .await
        .unwrap();
    let by_use = client.get("/account/account-tokens?sort=last_used").await;
    assert!(pos(&by_use, "bob reader") < pos(&by_use, "bob old"));
    assert!(pos(&by_use, "bob reader") < pos(&by_use, "ada purge"));

    // htmx gets the results block alone.
    let fragment = client
        .get_htmx("/account/account-tokens?type=automation")
        .await;
    fragment.assert(200, "CI robot");
    assert!(!fragment.body.contains("<html") && !fragment.body.contains("bob reader"));
    assert!(
        !fragment.body.contains("Search by name"),
        "the filter form stays"
    );

    // Pages of 50, walked forwards and back.
    for i in 0..116 {
        app.issue_token(
            TokenSpec::automation(&boss, Role::Engineer).named(&format!("bulk {i:03}")),
        )
        .await;
        if i % 7 == 0 {
            app.clock.advance(1);
        }
    }
    let rows = |page: &Page| page.body.matches("name=\"token\" value=").count();
    let link = |page: &Page, rel: &str| -> Option<String> {
        let marker = format!("rel=\"{rel}\"");
        let at = page.body.find(&marker)?;
        let start = page.body[..at].rfind("<a href=\"")? + "<a href=\"".len();
        let end = page.body[start..].find('"')? + start;
        // askama writes `&` as `&#38;`.
        Some(page.body[start..end].replace("&#38;", "&"))
    };
    let first = client.get("/account/account-tokens?type=automation").await;
    assert_eq!(rows(&first), 50);
    assert!(link(&first, "prev").is_none());
    let next = link(&first, "next").expect("a next page");
    let second = client.get(&next).await;
    assert_eq!(rows(&second), 50);
    let third = client.get(&link(&second, "next").unwrap()).await;
    assert_eq!(rows(&third), 17, "116 + CI robot = 117");
    assert!(link(&third, "next").is_none());
    let back = client.get(&link(&third, "prev").unwrap()).await;
    assert_eq!(rows(&back), 50);
    let ids = |page: &Page| -> Vec<String> {
        page.body
            .match_indices("name=\"token\" value=\"")
            .map(|(i, m)| page.body[i + m.len()..i + m.len() + 22].to_owned())
            .collect()
    };
    assert_eq!(ids(&back), ids(&second), "previous gives the same page");
    let mut seen: Vec<String> = [ids(&first), ids(&second), ids(&third)].concat();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 117, "no row twice, none skipped");
    assert!(first.body.contains("bulk 115") && third.body.contains("CI robot"));
    // A garbled cursor is the first page, not an error.
    let garbled = client
        .get("/account/account-tokens?type=automation&after=zz")
        .await;
    assert_eq!(ids(&garbled), ids(&first));

    // Past 100 members the Owner filter is an email field instead of a list.
    assert!(first
        .body
        .contains("<select id=\"filter-owner\" name=\"owner\">"));
    let extra: Vec<(String, String, Role)> = (0..100)
        .map(|i| {
            (
                format!("extra{i}@example.test"),
                "Extra".to_owned(),
                Role::User,
            )
        })
        .collect();
    app.members_without_password(&account, &extra).await;
    let large = client.get("/account/account-tokens").await;
    large.assert(200, "name=\"owner_email\"");
    assert!(
        !large.body.contains("extra42@example.test"),
        "no list of members"
    );
    let by_email = client
        .get(&format!(
            "/account/account-tokens?owner_email={}",
            urlencode(&bob.email.to_uppercase())
        ))
        .await;
    assert_eq!(names(&by_email), vec!["bob reader", "bob old"]);
    by_email.assert(200, &format!("value=\"{}\"", bob.email.to_uppercase()));
    let next_page_keeps_owner = client
        .get(&format!("/account/account-tokens?owner={}", bob.id))
        .await;
    next_page_keeps_owner.assert(
        200,
        &format!(
            "name=\"owner_email\" type=\"email\" value=\"{}\"",
            bob.email
        ),
    );
    let unknown = client
        .get("/account/account-tokens?owner_email=nobody%40example.test")
        .await;
    unknown
        .assert(200, "No member of this account has this email address.")
        .assert(200, "No tokens match");
}

/// The names an Account tokens page lists, in order.
fn listed_names(page: &Page) -> Vec<String> {
    let marker = "aria-label=\"Delete token ";
    page.body
        .split(marker)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|name| {
            name.replace("&#x27;", "'")
                .replace("&quot;", "\"")
                .replace("&#34;", "\"")
                .replace("&amp;", "&")
        })
        .collect()
}

/// A search of three characters or more may go through a trigram index (pg_trgm, or
/// FTS5 on SQLite), shorter ones test every name; all must list exactly what
/// `LIKE '%needle%'` (any case, wildcards taken literally) does.
async fn account_tokens_name_search_finds_the_same_tokens_with_or_without_its_index(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    let account = boss.account_id.clone();
    let names = [
        "Deploy Prod",
        "deploy staging",
        "CI pipeline",
        "50% off",
        "500 off",
        "a_b",
        "axb",
        "back\\slash",
        "say \"hi\" OR *",
        "to be renamed",
        "to be deleted",
    ];
    let mut ids = std::collections::HashMap::new();
    for name in names {
        let token = app
            .issue_token(TokenSpec::automation(&boss, Role::Engineer).named(name))
            .await;
        ids.insert(name, token.id);
        app.clock.advance(1);
    }
    // Another account's tokens match too, and are never listed here.
    let other = app.persona(Role::Superuser).await;
    for name in ["deploy elsewhere", "50% elsewhere", "a_b elsewhere"] {
        app.issue_token(TokenSpec::automation(&other, Role::Engineer).named(name))
            .await;
    }
    // A rename (the panel has none, but the index must follow the row) and a deletion.
    sqlx::query("UPDATE tokens SET name = 'Renamed Robot' WHERE id = $1")
        .bind(&ids["to be renamed"])
        .execute(app.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM tokens WHERE id = $1")
        .bind(&ids["to be deleted"])
        .execute(app.pool())
        .await
        .unwrap();
    // The login token of the superuser is listed too (named "token" by the test kit),
    // so the expectations are the names the same rule picks from every stored name.
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM tokens WHERE account_id = $1 ORDER BY created_at DESC, id DESC",
    )
    .bind(&account)
    .fetch_all(app.pool())
    .await
    .unwrap();
    let cases: [(&str, &[&str]); 19] = [
        // One and two characters: no trigram.
        ("d", &["Renamed Robot", "deploy staging", "Deploy Prod"]),
        ("P", &["CI pipeline", "deploy staging", "Deploy Prod"]),
        ("de", &["deploy staging", "Deploy Prod"]),
        ("%", &["50% off"]),
        ("_", &["a_b"]),
        ("\\", &["back\\slash"]),
        // Three and more: PostgreSQL's index when few names match, any case.
        ("DEPLOY", &["deploy staging", "Deploy Prod"]),
        ("ploy s", &["deploy staging"]),
        ("pipeline", &["CI pipeline"]),
        ("0% o", &["50% off"]),
        ("0_ off", &[]),
        ("a_b", &["a_b"]),
        ("k\\s", &["back\\slash"]),
        // FTS5 query syntax is taken literally on SQLite.
        ("\"hi\" OR *", &["say \"hi\" OR *"]),
        ("i\" O", &["say \"hi\" OR *"]),
        ("renamed", &["Renamed Robot"]),
        ("to be", &[]),
        ("elsewhere", &[]),
        ("zzzz", &[]),
    ];
    for (needle, expected) in cases {
        let like = needle.to_lowercase();
        let from_stored: Vec<&str> = stored
            .iter()
            .filter(|n| n.to_lowercase().contains(&like))
            .map(String::as_str)
            .collect();
        assert_eq!(from_stored, expected, "the expectation for {needle:?}");
        let page = client
            .get(&format!("/account/account-tokens?q={}", urlencode(needle)))
            .await;
        assert_eq!(page.status, 200, "{needle:?}");
        assert_eq!(listed_names(&page), expected, "q={needle:?}");
        // Filters and the other sorts apply to the matches alike.
        let automation = client
            .get(&format!(
                "/account/account-tokens?q={}&type=automation&sort=created&dir=asc",
                urlencode(needle)
            ))
            .await;
        let mut sorted: Vec<&str> = expected.to_vec();
        sorted.reverse();
        assert_eq!(
            listed_names(&automation),
            sorted,
            "q={needle:?}, oldest first"
        );
    }

    // Many matches: the page walks the sort order and stops at 50, with a next page;
    // a needle matching one of them still finds exactly that one.
    let bulk: Vec<_> = (0..1_200)
        .map(|i| {
            (
                TokenSpec::automation(&boss, Role::Engineer).named(&format!("bulk {i:04}")),
                app.now() + i,
                None,
            )
        })
        .collect();
    bench::insert_tokens(&app, bulk).await;
    let many = client.get("/account/account-tokens?q=BULK").await;
    let listed = listed_names(&many);
    assert_eq!(listed.len(), 50);
    assert_eq!(listed[0], "bulk 1199");
    assert!(many.body.contains("after="), "a next page");
    let one = client.get("/account/account-tokens?q=ulk%200042").await;
    assert_eq!(listed_names(&one), ["bulk 0042"]);
    let none = client.get("/account/account-tokens?q=bulk%209").await;
    assert_eq!(listed_names(&none), Vec::<String>::new());

    // A needle that many names of another account contain, and one here.
    let elsewhere: Vec<_> = (0..1_100)
        .map(|i| {
            (
                TokenSpec::automation(&other, Role::Engineer).named(&format!("common {i:04}")),
                app.now() + i,
                None,
            )
        })
        .collect();
    bench::insert_tokens(&app, elsewhere).await;
    app.issue_token(TokenSpec::automation(&boss, Role::Engineer).named("Common here"))
        .await;
    let common = client.get("/account/account-tokens?q=common").await;
    assert_eq!(listed_names(&common), ["Common here"]);
}

/// Token creations, renames and deletions from many tasks at once, each of which also
/// writes SQLite's names index (triggers on `tokens`), while another transaction holds
/// the write lock: they wait for it, none fails with "database is locked" (as a
/// deferred transaction on a connection that has not yet written the index does), and
/// the search then lists exactly the names stored.
async fn concurrent_token_writes_all_succeed_and_the_search_follows_them(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    let mut spares = Vec::new();
    for i in 0..30 {
        spares.push(
            app.issue_token(TokenSpec::user(&boss).named(&format!("spare {i:02}")))
                .await,
        );
    }
    // Three rounds of writes, each its own task and all of a round started at once: 50
    // creations, spares deleting themselves through the API, spares renamed (as an
    // operator would, outside any transaction).
    for round in 0..3 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in round * 50..(round + 1) * 50 {
            let issuer = app.issuer();
            let spec = TokenSpec::automation(&boss, Role::Engineer).named(&format!("raced {i:03}"));
            tasks.spawn(async move {
                issuer
                    .issue(spec)
                    .await
                    .map(drop)
                    .map_err(|e| format!("create: {e:?}"))
            });
        }
        for spare in spares[..20].iter().skip(round).step_by(3) {
            let (api, key) = (app.api(), spare.key.clone());
            tasks.spawn(async move {
                let reply = api.delete("/tokens/self", &key).await;
                match reply.status {
                    204 => Ok(()),
                    status => Err(format!("delete answered {status}: {}", reply.text)),
                }
            });
        }
        for spare in spares[20..].iter().skip(round).step_by(3) {
            let (pool, id) = (app.pool().clone(), spare.id.clone());
            tasks.spawn(async move {
                sqlx::query("UPDATE tokens SET name = 'renamed ' || name WHERE id = $1")
                    .bind(&id)
                    .execute(&pool)
                    .await
                    .map(drop)
                    .map_err(|e| format!("rename: {e}"))
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
    }
    let sorted = |mut names: Vec<String>| {
        names.sort();
        names
    };
    // Fewer than a page each: "raced 1" is 100 to 149, "aced 07" 070 to 079.
    for (needle, range) in [("raced%201", 100..150), ("aced%2007", 70..80)] {
        let page = client
            .get(&format!("/account/account-tokens?q={needle}"))
            .await;
        let expected: Vec<String> = range.map(|i| format!("raced {i:03}")).collect();
        assert_eq!(sorted(listed_names(&page)), expected, "q={needle}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE name LIKE 'raced %'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, 150);
    let renamed = client.get("/account/account-tokens?q=renamed").await;
    let expected: Vec<String> = (20..30).map(|i| format!("renamed spare {i}")).collect();
    assert_eq!(sorted(listed_names(&renamed)), expected);
    let deleted = client.get("/account/account-tokens?q=spare%200").await;
    assert_eq!(listed_names(&deleted), Vec::<String>::new());
}

async fn revoke_one_or_several_all_or_nothing(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    client.enter_sudo(&boss).await;
    let account = boss.account_id.clone();
    let ada = app.member(&account, Role::User).await;
    let one = app
        .issue_token(TokenSpec::user(&ada).named("ada one"))
        .await
        .id;
    let two = app
        .issue_token(TokenSpec::user(&ada).named("ada two"))
        .await
        .id;
    let robot = app
        .issue_token(TokenSpec::automation(&boss, Role::Engineer).named("robot"))
        .await
        .id;
    let other = app.account("Other").await;
    let stranger = app.member(&other, Role::User).await;
    let foreign = app
        .issue_token(TokenSpec::user(&stranger).named("foreign"))
        .await
        .id;

    // One token: a confirmation page, then Delete.
    let confirm = client
        .get(&format!("/account/account-tokens/revoke?token={one}&back=%2Faccount%2Faccount-tokens%3Ftype%3Duser"))
        .await;
    confirm
        .assert(200, "Delete token &ldquo;ada one&rdquo;?")
        .assert(200, "Deleting an API token will break any integration")
        .assert(200, ">Delete</button>");
    let done = client
        .post(
            "/account/account-tokens/revoke",
            &[
                ("token", &one),
                ("back", "/account/account-tokens?type=user"),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(
        done.location(),
        "/account/account-tokens?type=user&deleted=1"
    );
    client
        .get(done.location())
        .await
        .assert(200, "Deleted 1 token.");
    assert!(!app.token_exists(&one).await);
    let destroyed: Vec<_> = events(&app)
        .await
        .into_iter()
        .filter(|(t, _, _)| t == "token.destroy")
        .collect();
    assert_eq!(destroyed.len(), 1);
    assert_eq!(
        destroyed[0].1.as_deref(),
        Some(boss.id.as_str()),
        "the superuser acted"
    );
    assert!(
        destroyed[0].2.contains("\"reason\":\"superuser\""),
        "{}",
        destroyed[0].2
    );
    // With htmx the confirmation is a fragment.
    let fragment = client
        .get_htmx(&format!("/account/account-tokens/revoke?token={two}"))
        .await;
    fragment.assert(200, ">Delete</button>");
    assert!(!fragment.body.contains("<html"));

    // Several, with one id of another account: nothing is deleted.
    let confirm = client
        .get(&format!(
            "/account/account-tokens/revoke?token={two}&token={robot}&token={foreign}"
        ))
        .await;
    assert_eq!(confirm.status, 404);
    client.get("/account/account-tokens").await;
    let refused = client
        .post(
            "/account/account-tokens/revoke",
            &[("token", &two), ("token", &robot), ("token", &foreign)],
        )
        .await;
    refused.assert(404, "Nothing was deleted");
    for id in [&two, &robot, &foreign] {
        assert!(app.token_exists(id).await);
    }
    // A made-up id: nothing either.
    let made_up = client
        .post(
            "/account/account-tokens/revoke",
            &[("token", &two), ("token", "AAAAAAAAAAAAAAAAAAAAAA")],
        )
        .await;
    assert_eq!(made_up.status, 404);
    assert!(app.token_exists(&two).await);
    // Nothing selected: a message (in the dialog, with htmx).
    assert_eq!(
        client
            .post("/account/account-tokens/revoke", &[])
            .await
            .status,
        400
    );
    client
        .get("/account/account-tokens/revoke?back=%2Faccount%2Faccount-tokens")
        .await
        .assert(400, "Select at least one token to delete.");
    client
        .get_htmx("/account/account-tokens/revoke")
        .await
        .assert(200, "Select at least one token to delete.");

    // The two of this account together.
    let confirm = client
        .get(&format!(
            "/account/account-tokens/revoke?token={two}&token={robot}"
        ))
        .await;
    confirm
        .assert(200, "Delete these 2 tokens?")
        .assert(200, "robot");
    let done = client
        .post(
            "/account/account-tokens/revoke",
            &[
                ("token", &two),
                ("token", &robot),
                ("back", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(
        done.location(),
        "/account/account-tokens?deleted=2",
        "no open redirect"
    );
    assert!(!app.token_exists(&two).await && !app.token_exists(&robot).await);
    assert!(app.token_exists(&foreign).await);
    let bulk: Vec<_> = events(&app)
        .await
        .into_iter()
        .filter(|(t, _, m)| t == "token.destroy" && m.contains("\"reason\":\"bulk\""))
        .collect();
    assert_eq!(bulk.len(), 2);
    assert!(bulk
        .iter()
        .all(|(_, actor, _)| actor.as_deref() == Some(boss.id.as_str())));
}

async fn automation_tokens_need_sudo_and_follow_their_role(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    // Without sudo mode, the form is not even shown.
    let prompt = client.get("/account/tokens/new").await;
    assert_eq!(prompt.status, 303);
    client.enter_sudo(&boss).await;
    let form = client.get("/account/tokens/new").await;
    for text in [
        "User token",
        "Automation token",
        "Role",
        "Engineer",
        "Billing",
        "TLS management",
        "data-shown-when=\"type=automation\"",
        "value=\"purge_all\" data-automation-roles=\"engineer\"",
        "data-automation-roles=\"engineer user billing\"",
    ] {
        form.assert(200, text);
    }

    // Role × scope: only what the role may use.
    let mut made = 0;
    for role in [Role::Engineer, Role::User, Role::Billing] {
        for scope in Scope::ALL {
            let name = format!("{} {}", role.as_str(), scope.as_str());
            let page = client
                .create_token(&[
                    ("name", &name),
                    ("type", "automation"),
                    ("role", role.as_str()),
                    ("scope", scope.as_str()),
                    ("access", "all"),
                    ("expiration", "never"),
                ])
                .await;
            if role.may_use(scope) {
                page.assert(200, "Token created").assert(200, "tpa_");
                assert!(
                    page.body.contains("href=\"/account/account-tokens\""),
                    "Okay leads to Account tokens"
                );
                made += 1;
            } else {
                page.assert(422, "cannot grant the scope");
                // The form comes back with the role's scopes disabled.
                page.assert(422, &format!("value=\"{}\" disabled", scope.as_str()));
            }
        }
    }
    assert_eq!(made, 4 + 2 + 2);
    type Stored = (String, Option<String>, Option<String>, String, i64);
    let stored: Vec<Stored> = sqlx::query_as(
        "SELECT kind, user_id, role, created_by, tls_access FROM tokens ORDER BY created_at, id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(stored.len(), made);
    for (kind, user_id, role, created_by, tls) in &stored {
        assert_eq!(kind, "automation");
        assert_eq!(user_id, &None, "not tied to a person");
        assert!(role.is_some());
        assert_eq!(created_by, &boss.id);
        assert_eq!(*tls, 0);
    }

    // The role is required, and cannot be superuser.
    for (role, message) in [
        ("", "Choose the role of the automation token"),
        ("superuser", "Choose the role of the automation token"),
    ] {
        client
            .create_token(&[
                ("name", "no role"),
                ("type", "automation"),
                ("role", role),
                ("scope", "global"),
                ("access", "all"),
                ("expiration", "90d"),
            ])
            .await
            .assert(422, message)
            .assert(422, "value=\"no role\"");
    }
    // TLS management is kept for automation tokens, ignored for user tokens.
    client
        .create_token(&[
            ("name", "tls robot"),
            ("type", "automation"),
            ("role", "engineer"),
            ("tls_access", "1"),
            ("scope", "global"),
            ("access", "all"),
            ("expiration", "90d"),
        ])
        .await
        .assert(200, "Token created");
    client
        .create_token(&[
            ("name", "mine"),
            ("type", "user"),
            ("role", "billing"),
            ("tls_access", "1"),
            ("scope", "purge_all"),
            ("access", "all"),
            ("expiration", "90d"),
        ])
        .await
        .assert(200, "Token created");
    let tls: Vec<(String, i64, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT name, tls_access, role, user_id FROM tokens WHERE name IN ('tls robot', 'mine') ORDER BY name")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(tls[0], ("mine".into(), 0, None, Some(boss.id.clone())));
    assert_eq!(
        tls[1],
        ("tls robot".into(), 1, Some("engineer".into()), None)
    );

    // Automation tokens appear on Account tokens only, and count against no limit.
    let personal = client.get("/account/tokens").await;
    assert!(!personal.body.contains("tls robot"));
    personal.assert(200, "1 of 100 active tokens");
    client
        .get("/account/account-tokens?type=automation")
        .await
        .assert(200, "tls robot")
        .assert(200, "TLS management");
    for i in 0..99 {
        app.issue_token(TokenSpec::user(&boss).named(&format!("filler {i}")))
            .await;
    }
    client
        .create_token(&[
            ("name", "beyond the limit"),
            ("type", "automation"),
            ("role", "user"),
            ("scope", "global:read"),
            ("access", "all"),
            ("expiration", "90d"),
        ])
        .await
        .assert(200, "Token created");

    // Sudo mode running out while the form is open: the password is asked for again
    // and nothing is made until it is given.
    let form = client.get("/account/tokens/new").await;
    let nonce = hidden(&form.body, "nonce").unwrap();
    app.clock.advance(6 * 60);
    assert_eq!(client.get("/account/tokens/new").await.status, 303);
    let count = app.count("tokens").await;
    let mut fields = vec![
        ("nonce", nonce.as_str()),
        ("name", "late robot"),
        ("type", "automation"),
        ("role", "engineer"),
        ("scope", "global"),
        ("access", "all"),
        ("expiration", "90d"),
    ];
    let late = client.post("/account/tokens", &fields).await;
    late.assert(401, "Your re-authentication has expired")
        .assert(401, "value=\"late robot\"")
        .assert(401, "value=\"automation\" checked");
    assert_eq!(app.count("tokens").await, count);
    let nonce = hidden(&late.body, "nonce").unwrap();
    fields[0] = ("nonce", nonce.as_str());
    fields.push(("sudo_password", boss.password.as_str()));
    client
        .post("/account/tokens", &fields)
        .await
        .assert(200, "Token created")
        .assert(200, "tpa_");
    assert_eq!(app.count("tokens").await, count + 1);
    let kind: String = sqlx::query_scalar("SELECT kind FROM tokens WHERE name = 'late robot'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(kind, "automation");
}

async fn automation_tokens_survive_their_creator(app: TestApp) {
    let creator = app.persona(Role::Superuser).await;
    let other_boss = app.member(&creator.account_id, Role::Superuser).await;
    let robot = app
        .issue_token(TokenSpec::automation(&creator, Role::Engineer).named("deploy robot"))
        .await
        .id;
    let client = app.client();
    client.sign_in(&other_boss).await;
    client.enter_sudo(&other_boss).await;
    client
        .get(&format!("/account/users/{}/delete", creator.id))
        .await
        .assert(200, ">Delete</button>");
    let done = client
        .post(&format!("/account/users/{}/delete", creator.id), &[])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        scalar_i64(
            &app,
            "SELECT COUNT(*) FROM users WHERE id = $1",
            &creator.id
        )
        .await,
        0
    );
    assert!(
        app.token_exists(&robot).await,
        "the automation token lives on"
    );
    let created_by: String = sqlx::query_scalar("SELECT created_by FROM tokens WHERE id = $1")
        .bind(&robot)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(created_by, creator.id);
    client
        .get("/account/account-tokens")
        .await
        .assert(200, "deploy robot")
        .assert(200, "Automation");
    let destroy = events(&app)
        .await
        .into_iter()
        .find(|(t, _, _)| t == "user.destroy")
        .expect("user.destroy recorded");
    assert_eq!(destroy.1.as_deref(), Some(other_boss.id.as_str()));
}

async fn user_deletion_is_refused_while_they_hold_tokens(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    client.enter_sudo(&boss).await;
    let account = boss.account_id.clone();
    let ada = app.member(&account, Role::User).await;
    let t1 = app
        .issue_token(TokenSpec::user(&ada).named("ada one"))
        .await
        .id;
    let t2 = app
        .issue_token(
            TokenSpec::user(&ada)
                .named("ada expired")
                .expires_at(app.now() + 1),
        )
        .await
        .id;
    app.clock.advance(5);

    // The message links to their tokens on Account tokens (`&` is escaped in HTML).
    let link = format!("owner={}\">See their tokens on Account tokens", ada.id);
    let confirm = client
        .get(&format!("/account/users/{}/delete", ada.id))
        .await;
    confirm
        .assert(200, "This user still has 2 user tokens in this account.")
        .assert(200, &link);
    assert!(!confirm.body.contains(">Delete</button>"));
    let refused = client
        .post(&format!("/account/users/{}/delete", ada.id), &[])
        .await;
    refused
        .assert(409, "This user still has 2 user tokens in this account.")
        .assert(409, &link);
    let refused = client
        .post(&format!("/account/users/{}/remove", ada.id), &[])
        .await;
    refused.assert(409, "still has 2 user tokens");
    assert_eq!(
        app.role_in(&account, &ada.id).await.as_deref(),
        Some("user")
    );
    assert_eq!(
        scalar_i64(&app, "SELECT COUNT(*) FROM users WHERE id = $1", &ada.id).await,
        1
    );

    // The link lists exactly those tokens; delete them, then the user.
    let theirs = client
        .get(&format!(
            "/account/account-tokens?type=user&owner={}",
            ada.id
        ))
        .await;
    theirs.assert(200, "ada one").assert(200, "ada expired");
    client.get("/account/users").await;
    let revoked = client
        .post(
            "/account/account-tokens/revoke",
            &[("token", &t1), ("token", &t2)],
        )
        .await;
    assert_eq!(revoked.status, 303);
    client
        .get(&format!("/account/users/{}/delete", ada.id))
        .await
        .assert(200, ">Delete</button>");
    let done = client
        .post(&format!("/account/users/{}/delete", ada.id), &[])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/account/users?done=deleted");
    assert_eq!(
        scalar_i64(&app, "SELECT COUNT(*) FROM users WHERE id = $1", &ada.id).await,
        0
    );
    let users = client.get(done.location()).await;
    users.assert(200, "The user was deleted.");
    assert!(!users.body.contains(&ada.email));
    let destroyed: Vec<_> = events(&app)
        .await
        .into_iter()
        .filter(|(t, _, _)| t == "user.destroy")
        .collect();
    assert_eq!(destroyed.len(), 1);
    assert!(destroyed[0].2.contains("\"deleted\":true"));
    assert_eq!(destroyed[0].1.as_deref(), Some(boss.id.as_str()));
    // Their sessions end: they cannot sign in any more.
    let gone = app.client();
    gone.get("/login").await;
    gone.post(
        "/login",
        &[("email", &ada.email), ("password", &ada.password)],
    )
    .await
    .assert(401, "Incorrect email or password.");

    // A user of several accounts is removed, not deleted.
    let other = app.account("Other").await;
    let shared = app.member(&other, Role::Engineer).await;
    app.add_member(&account, &shared, Role::User).await;
    client.get("/account/users").await;
    client
        .post(&format!("/account/users/{}/delete", shared.id), &[])
        .await
        .assert(409, "also belongs to other accounts");
    let removed = client
        .post(&format!("/account/users/{}/remove", shared.id), &[])
        .await;
    assert_eq!(removed.status, 303);
    assert_eq!(app.role_in(&account, &shared.id).await, None);
    assert_eq!(
        app.role_in(&other, &shared.id).await.as_deref(),
        Some("engineer")
    );
}

/// Each of the only two superusers demotes the other at the same moment: member changes
/// are serialised, so exactly one demotion lands and the account keeps a superuser.
async fn two_superusers_demoting_each_other_at_once_leave_one(app: TestApp) {
    for round in 0..5 {
        let (first, ann) = app.signed_in(Role::Superuser).await;
        let account = ann.account_id.clone();
        let bob = app.member(&account, Role::Superuser).await;
        let second = app.client();
        second.sign_in(&bob).await;
        first.enter_sudo(&ann).await;
        second.enter_sudo(&bob).await;
        first.get("/account/users").await;
        second.get("/account/users").await;
        let demote_bob = format!("/account/users/{}/role", bob.id);
        let demote_ann = format!("/account/users/{}/role", ann.id);
        let (a, b) = tokio::join!(
            first.post(&demote_bob, &[("role", "engineer")]),
            second.post(&demote_ann, &[("role", "engineer")]),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        // The loser is refused as the last superuser (409), or, when the winner's change
        // committed before the loser's request was even read, no longer a superuser (403).
        assert!(
            statuses == [303, 403] || statuses == [303, 409],
            "round {round}: {statuses:?}"
        );
        let superusers = [
            app.role_in(&account, &ann.id).await,
            app.role_in(&account, &bob.id).await,
        ]
        .iter()
        .filter(|r| r.as_deref() == Some("superuser"))
        .count();
        assert_eq!(superusers, 1, "round {round}");
    }
}

async fn the_last_superuser_cannot_be_removed_or_demoted(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    client.enter_sudo(&boss).await;
    let account = boss.account_id.clone();
    let me = format!("/account/users/{}", boss.id);
    client
        .post(&format!("{me}/role"), &[("role", "engineer")])
        .await
        .assert(409, "This is the last superuser of the account.");
    client
        .post(&format!("{me}/remove"), &[])
        .await
        .assert(409, "This is the last superuser of the account.");
    client
        .post(&format!("{me}/delete"), &[])
        .await
        .assert(409, "This is the last superuser of the account.");
    client
        .get(&format!("{me}/delete"))
        .await
        .assert(200, "This is the last superuser of the account.");
    assert_eq!(
        app.role_in(&account, &boss.id).await.as_deref(),
        Some("superuser")
    );

    // With a second superuser, the first may step down, and then the second is the last.
    let second = app.member(&account, Role::User).await;
    client.get(&me).await;
    let promoted = client
        .post(
            &format!("/account/users/{}/role", second.id),
            &[("role", "superuser")],
        )
        .await;
    assert_eq!(promoted.status, 303);
    let stepped_down = client
        .post(&format!("{me}/role"), &[("role", "engineer")])
        .await;
    assert_eq!(stepped_down.status, 303);
    assert_eq!(stepped_down.location(), "/account/tokens");
    assert_eq!(
        client.get("/account/users").await.status,
        403,
        "no longer a superuser"
    );
    let other = app.client();
    other.sign_in(&second).await;
    other.enter_sudo(&second).await;
    other
        .post(
            &format!("/account/users/{}/role", second.id),
            &[("role", "user")],
        )
        .await
        .assert(409, "last superuser");
    let updates: Vec<_> = events(&app)
        .await
        .into_iter()
        .filter(|(t, _, _)| t == "user.update")
        .collect();
    assert_eq!(updates.len(), 2);
    assert!(updates
        .iter()
        .any(|(_, actor, m)| actor.as_deref() == Some(boss.id.as_str())
            && m.contains("\"from\":\"superuser\"")
            && m.contains("\"to\":\"engineer\"")));
}

async fn inviting_users_with_a_one_time_link(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    let account = boss.account_id.clone();
    // The form is behind sudo mode.
    let prompt = client.get("/account/users/new").await;
    assert_eq!(prompt.status, 303);
    assert!(prompt.location().starts_with("/account/sudo?next="));
    client.enter_sudo(&boss).await;
    client
        .get("/account/users/new")
        .await
        .assert(200, "Invite user");

    // Bad input comes back with the typed values and messages.
    client
        .post(
            "/account/users/invitations",
            &[("email", "not an email"), ("role", "engineer")],
        )
        .await
        .assert(422, "Enter a valid email address.")
        .assert(422, "value=\"not an email\"")
        .assert(422, "value=\"engineer\" selected");
    client
        .post(
            "/account/users/invitations",
            &[("email", "x@example.test"), ("role", "root")],
        )
        .await
        .assert(422, "Choose a role.");
    client
        .post(
            "/account/users/invitations",
            &[("email", &boss.email), ("role", "user")],
        )
        .await
        .assert(409, "already a member of this account");
    let users_before = app.count("users").await;

    // The link is shown once, on a no-store page, and stored as a digest.
    let invited = client.invite("Linus@Example.test", "engineer", &[]).await;
    invited
        .assert(200, "One-time invitation link")
        .assert(200, "only time this link is shown")
        .assert(200, "linus@example.test was invited as Engineer");
    assert_eq!(invited.headers.get("cache-control").unwrap(), "no-store");
    let path = invitation_link(&invited.body).unwrap();
    let secret = path.trim_start_matches("/invitation?key=").to_owned();
    assert_eq!(secret.len(), 32);
    let stored: Vec<String> = sqlx::query_scalar("SELECT secret_digest FROM invitations")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, vec![digest(&secret)]);
    let leaked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events WHERE metadata LIKE $1 OR description LIKE $1",
    )
    .bind(format!("%{secret}%"))
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(leaked, 0, "no event carries the link");
    assert_eq!(app.count("users").await, users_before, "no user yet");
    client
        .invite("linus@example.test", "user", &[])
        .await
        .assert(409, "has a pending invitation already");
    let list = client.get("/account/users").await;
    list.assert(200, "Pending invitations")
        .assert(200, "linus@example.test");
    assert!(!list.body.contains(&secret), "the list shows no link");

    // The invitee opens the link in their own browser and joins as invited.
    let linus = app.client();
    linus
        .get(&path)
        .await
        .assert(200, "linus@example.test is invited")
        .assert(200, "Choose your name and a password");
    linus
        .accept_as_new_user(&path, "Linus", "too short")
        .await
        .assert(422, "Use at least 12 characters.")
        .assert(422, &format!("name=\"key\" value=\"{secret}\""));
    let joined = linus
        .accept_as_new_user(&path, "Linus", "a long new password")
        .await;
    assert_eq!(joined.status, 303, "{}", joined.body);
    linus
        .get("/account/tokens")
        .await
        .assert(200, "Linus (Engineer)");
    assert_eq!(app.count("users").await, users_before + 1);
    assert_eq!(app.count("invitations").await, 0);
    // Used up: the same page, whatever the reason a link does not work.
    let used = app.client().get(&path).await;
    used.assert(404, "This invitation link does not work");
    assert!(!used.body.contains("linus"), "nothing about the invitee");
    assert_eq!(
        app.client().get("/invitation?key=not-a-link").await.body,
        used.body
    );
    assert_eq!(app.client().get("/invitation").await.status, 404);
    let fresh = app.client();
    fresh.get("/login").await;
    let signed = fresh
        .post(
            "/login",
            &[
                ("email", "linus@example.test"),
                ("password", "a long new password"),
            ],
        )
        .await;
    assert_eq!(signed.status, 303);

    // A link runs out after a week.
    let late_path = client.invite_link("late@example.test", "user").await;
    let visitor = app.client();
    visitor.get(&late_path).await.assert(200, "Join Acme");
    app.clock.advance(7 * 86_400 + 1);
    visitor
        .get(&late_path)
        .await
        .assert(404, "This invitation link does not work");
    client.enter_sudo(&boss).await;
    client
        .get("/account/users")
        .await
        .assert(200, "Expired ")
        .assert(200, "late@example.test");
    let kinds: Vec<String> = app.event_types().await;
    assert_eq!(
        kinds.iter().filter(|t| *t == "invitation.create").count(),
        2
    );
    assert_eq!(
        kinds.iter().filter(|t| *t == "invitation.accept").count(),
        1
    );
    assert!(!kinds.contains(&"user.create".to_owned()));
    assert_eq!(
        app.role_in(&account, &linus_id(&app).await)
            .await
            .as_deref(),
        Some("engineer")
    );
}

async fn linus_id(app: &TestApp) -> String {
    sqlx::query_scalar("SELECT id FROM users WHERE email = 'linus@example.test'")
        .fetch_one(app.pool())
        .await
        .unwrap()
}

async fn existing_users_join_by_invitation_then_roles_and_service_limits(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    client.enter_sudo(&boss).await;
    let account = boss.account_id.clone();
    let www = app.service(&account, "www").await;
    let api = app.service(&account, "api").await;
    let other = app.account("Other").await;
    let outsider = app.member(&other, Role::Superuser).await;

    // "Add existing user" is gone: existing users are invited like anyone else.
    assert_eq!(client.get("/account/users/existing").await.status, 404);
    let link = client.invite_link(&outsider.email, "engineer").await;
    // They accept by signing in as themselves, and come back to the invitation.
    let them = app.client();
    let page = them.get(&link).await;
    page.assert(200, "Sign in to accept");
    assert!(!page.body.contains("name=\"password\""));
    let login = "/login?next=%2Finvitation%3Fkey%3D";
    assert!(page.body.contains(login), "{}", page.body);
    // Without signing in, accepting only leads back to the page.
    let key = link.trim_start_matches("/invitation?key=");
    let early = them
        .post(
            "/invitation/accept",
            &[
                ("key", key),
                ("name", "Impostor"),
                ("password", "a long new password"),
                ("password_confirmation", "a long new password"),
            ],
        )
        .await;
    assert_eq!(early.status, 303);
    assert_eq!(app.role_in(&account, &outsider.id).await, None);
    them.get(&format!("/login?next={}", urlencode(&link))).await;
    let signed = them
        .post(
            "/login",
            &[
                ("email", &outsider.email),
                ("password", &outsider.password),
                ("next", &link),
            ],
        )
        .await;
    assert_eq!(signed.location(), link);
    them.get(&link)
        .await
        .assert(200, "Accept and join")
        .assert(200, "Decline the invitation");
    let accepted = them.post("/invitation/accept", &[("key", key)]).await;
    assert_eq!(accepted.status, 303);
    them.get("/account/tokens")
        .await
        .assert(200, "Test Superuser (Engineer)");
    assert_eq!(
        app.role_in(&account, &outsider.id).await.as_deref(),
        Some("engineer")
    );
    assert_eq!(
        app.role_in(&other, &outsider.id).await.as_deref(),
        Some("superuser"),
        "roles are per account"
    );

    // Limit the engineer to www (full) and api (read only).
    let edit = client.get(&format!("/account/users/{}", outsider.id)).await;
    edit.assert(200, "Service access")
        .assert(200, &format!("name=\"perm-{www}\""));
    client
        .post(
            &format!("/account/users/{}/services", outsider.id),
            &[("limit", "some")],
        )
        .await
        .assert(422, "Choose at least one service");
    client
        .post(
            &format!("/account/users/{}/services", outsider.id),
            &[("limit", "some"), (&format!("perm-{www}"), "admin")],
        )
        .await
        .assert(422, "Choose a permission from the list.");
    let saved = client
        .post(
            &format!("/account/users/{}/services", outsider.id),
            &[
                ("limit", "some"),
                (&format!("perm-{www}"), "full"),
                (&format!("perm-{api}"), "read_only"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let perms = app.service_limits(&account, &outsider.id).await;
    assert_eq!(perms.len(), 2);
    client
        .get("/account/users")
        .await
        .assert(200, "www (Full access)")
        .assert(200, "api (Read only)");

    // Promoted away from engineer, the limits go.
    let changed = client
        .post(
            &format!("/account/users/{}/role", outsider.id),
            &[("role", "billing")],
        )
        .await;
    assert_eq!(changed.status, 303);
    assert!(app.service_limits(&account, &outsider.id).await.is_empty());
    client
        .post(
            &format!("/account/users/{}/services", outsider.id),
            &[("limit", "some"), (&format!("perm-{www}"), "full")],
        )
        .await
        .assert(422, "Only engineers can be limited");
    client
        .post(
            &format!("/account/users/{}/role", outsider.id),
            &[("role", "root")],
        )
        .await
        .assert(422, "Choose a role.");
    let kinds = app.event_types().await;
    assert_eq!(
        kinds.iter().filter(|t| *t == "invitation.accept").count(),
        1
    );
    assert_eq!(kinds.iter().filter(|t| *t == "user.update").count(), 2);
    let limits = perms
        .iter()
        .map(|(s, p)| (s == &www, *p))
        .collect::<Vec<_>>();
    assert!(limits.contains(&(true, ServicePermission::Full)));
    assert!(limits.contains(&(false, ServicePermission::ReadOnly)));
}

async fn the_switcher_changes_what_every_list_shows(app: TestApp) {
    let a = app.account("Alpha Corp").await;
    let b = app.account("Beta Corp").await;
    let me = app.member(&a, Role::Superuser).await;
    app.add_member(&b, &me, Role::User).await;
    let a_user = app.member(&a, Role::User).await;
    let b_boss = app.member(&b, Role::Superuser).await;
    app.service(&a, "alpha-service").await;
    app.service(&b, "beta-service").await;
    app.issue_token(TokenSpec::user(&me).named("my alpha token"))
        .await;
    app.issue_token(TokenSpec::user(&me).in_account(&b).named("my beta token"))
        .await;
    app.issue_token(TokenSpec::user(&a_user).named("alpha colleague"))
        .await;

    let client = app.client();
    client.sign_in(&me).await;
    let home = client.get("/account/tokens").await;
    home.assert(200, "my alpha token")
        .assert(200, "Switch account")
        .assert(200, "Beta Corp");
    assert!(!home.body.contains("my beta token"));
    client
        .get("/account/account-tokens")
        .await
        .assert(200, "alpha colleague");
    client
        .get("/account/users")
        .await
        .assert(200, &a_user.email);
    client
        .get("/account/services")
        .await
        .assert(200, "alpha-service");

    // Switch to Beta from the Users page: not a superuser there, so Personal tokens.
    client.get("/account/users").await;
    let switched = client
        .post(
            "/account/switch",
            &[("account_id", &b), ("next", "/account/users")],
        )
        .await;
    assert_eq!(switched.status, 303);
    assert_eq!(switched.location(), "/account/tokens");
    let home = client.get("/account/tokens").await;
    home.assert(200, "my beta token").assert(200, "(User)");
    assert!(!home.body.contains("my alpha token"));
    assert!(
        !home.body.contains("/account/account-tokens\""),
        "no tab as a user"
    );
    assert_eq!(client.get("/account/account-tokens").await.status, 403);
    assert_eq!(client.get("/account/users").await.status, 403);
    assert_eq!(client.get("/account/services").await.status, 403);

    // Made a superuser of Beta, the same pages show Beta's contents.
    sqlx::query("UPDATE memberships SET role = 'superuser' WHERE account_id = $1 AND user_id = $2")
        .bind(&b)
        .bind(&me.id)
        .execute(app.pool())
        .await
        .unwrap();
    let tokens = client.get("/account/account-tokens").await;
    tokens.assert(200, "my beta token");
    assert!(!tokens.body.contains("alpha colleague"));
    let users = client.get("/account/users").await;
    users.assert(200, &b_boss.email);
    assert!(!users.body.contains(&a_user.email));
    let services = client.get("/account/services").await;
    services.assert(200, "beta-service");
    assert!(!services.body.contains("alpha-service"));

    // And back, staying on the page when the role allows it.
    let back = client
        .post(
            "/account/switch",
            &[("account_id", &a), ("next", "/account/services")],
        )
        .await;
    assert_eq!(back.location(), "/account/services");
    client
        .get("/account/services")
        .await
        .assert(200, "alpha-service");
    // A single-account user sees no switcher.
    let solo = app.client();
    solo.sign_in(&a_user).await;
    assert!(!solo
        .get("/account/tokens")
        .await
        .body
        .contains("Switch account"));
    // No form token, no switch.
    let raw = client
        .post_raw("/account/switch", &[("account_id", &b)])
        .await;
    assert_eq!(raw.status, 403);
    assert!(client
        .get("/account/tokens")
        .await
        .body
        .contains("my alpha token"));
}

async fn services_are_managed_by_superusers_and_full_engineers(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    client.enter_sudo(&boss).await;
    let account = boss.account_id.clone();
    client
        .get("/account/services")
        .await
        .assert(200, "Create service");
    let created = client
        .post("/account/services", &[("name", "  www.example.com ")])
        .await;
    assert_eq!(created.status, 303);
    client
        .post("/account/services", &[("name", "www.example.com")])
        .await
        .assert(
            422,
            "A service with this name already exists in this account.",
        );
    client
        .post("/account/services", &[("name", "")])
        .await
        .assert(422, "Name is required.");
    let www: String = sqlx::query_scalar("SELECT id FROM services WHERE name = 'www.example.com'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    let api = app.service(&account, "api.example.com").await;
    let renamed = client
        .post(
            &format!("/account/services/{www}"),
            &[("name", "web.example.com")],
        )
        .await;
    assert_eq!(renamed.status, 303);
    client
        .post(
            &format!("/account/services/{www}"),
            &[("name", "api.example.com")],
        )
        .await
        .assert(422, "already exists");
    client
        .get("/account/services")
        .await
        .assert(200, "web.example.com");

    // An engineer limited to web (full) and api (read only).
    let eng = app.member(&account, Role::Engineer).await;
    app.limit_to(&eng, &www, ServicePermission::Full).await;
    app.limit_to(&eng, &api, ServicePermission::ReadOnly).await;
    let hidden_svc = app.service(&account, "hidden.example.com").await;
    let engineer = app.client();
    engineer.sign_in(&eng).await;
    let list = engineer.get("/account/services").await;
    list.assert(200, "web.example.com")
        .assert(200, "api.example.com")
        .assert(200, "Read only");
    assert!(!list.body.contains("hidden.example.com"));
    assert!(!list.body.contains("Create service"));
    assert_eq!(
        engineer
            .post("/account/services", &[("name", "mine")])
            .await
            .status,
        403
    );
    assert_eq!(
        engineer
            .get(&format!("/account/services/{api}"))
            .await
            .status,
        403
    );
    assert_eq!(
        engineer
            .post(&format!("/account/services/{api}"), &[("name", "x")])
            .await
            .status,
        403
    );
    assert_eq!(
        engineer
            .post(&format!("/account/services/{hidden_svc}/delete"), &[])
            .await
            .status,
        403
    );
    engineer.get("/account/services").await;
    let ok = engineer
        .post(
            &format!("/account/services/{www}"),
            &[("name", "www.example.com")],
        )
        .await;
    assert_eq!(ok.status, 303);
    // An engineer without limits creates services.
    let free = app.member(&account, Role::Engineer).await;
    let free_client = app.client();
    free_client.sign_in(&free).await;
    assert_eq!(
        free_client
            .post("/account/services", &[("name", "free.example.com")])
            .await
            .status,
        303
    );

    // Deleting never widens a grant: a token (or engineer) limited to the service alone
    // blocks it.
    let pinned = app
        .issue_token(
            TokenSpec::user(&boss)
                .named("pinned")
                .services(std::slice::from_ref(&api)),
        )
        .await
        .id;
    client
        .get(&format!("/account/services/{api}/delete"))
        .await
        .assert(200, "1 token is limited to this service alone");
    client
        .post(&format!("/account/services/{api}/delete"), &[])
        .await
        .assert(409, "cannot be deleted");
    client.get("/account/tokens").await;
    client
        .post("/account/account-tokens/revoke", &[("token", &pinned)])
        .await;
    // api is still one of two services of the engineer: deletable now.
    let deleted = client
        .post(&format!("/account/services/{api}/delete"), &[])
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert_eq!(
        scalar_i64(&app, "SELECT COUNT(*) FROM services WHERE id = $1", &api).await,
        0
    );
    // www is now the engineer's only service.
    client
        .post(&format!("/account/services/{www}/delete"), &[])
        .await
        .assert(409, "1 engineer is limited to this service alone");
    let kinds = app.event_types().await;
    assert_eq!(kinds.iter().filter(|t| *t == "service.create").count(), 2);
    assert_eq!(kinds.iter().filter(|t| *t == "service.update").count(), 2);
    assert_eq!(kinds.iter().filter(|t| *t == "service.delete").count(), 1);
}

//! Account > API tokens > Personal tokens: sudo, the create form and its rules, the
//! secret shown exactly once, the 100-token limit, and deletion.

use tokenpanel::testkit::{
    digest, hidden, is_token_shaped, on_both_databases, page_date, random_id, IssueError, Persona,
    Role, ServicePermission, TestApp, TokenSpec,
};

on_both_databases!(
    creating_requires_sudo_which_expires,
    wrong_sudo_password_is_recorded_and_throttled,
    role_scope_matrix_on_form_and_server,
    form_errors_keep_input_and_write_nothing,
    engineer_limited_to_some_services,
    secret_is_shown_exactly_once,
    list_shows_columns_expiry_and_access,
    list_names_each_tokens_services_by_name,
    limit_of_100_holds_under_concurrency,
    a_removed_member_gets_no_token_even_mid_request,
    a_service_deleted_mid_request_refuses_the_token,
    the_101st_token_gets_a_clear_message,
    delete_with_confirmation_and_only_own_tokens,
    sudo_expiring_while_the_form_is_open_loses_nothing,
    service_search_returns_matching_options,
);

fn secret_in(html: &str) -> Option<String> {
    let start = html.find("tpu_")?;
    Some(
        html[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect(),
    )
}

async fn creating_requires_sudo_which_expires(app: TestApp) {
    let (client, ada) = app.signed_in(Role::User).await;
    client
        .get("/account/tokens")
        .await
        .assert(200, "Create token");
    let prompt = client.get("/account/tokens/new").await;
    assert_eq!(prompt.status, 303);
    assert_eq!(
        prompt.location(),
        "/account/sudo?next=%2Faccount%2Ftokens%2Fnew"
    );
    let page = client.get(prompt.location()).await;
    page.assert(
        200,
        "enter your password to re-authenticate your permissions",
    );
    let before = client.get("/account/sudo?next=/account/tokens/new").await;
    let elevated = client
        .post(
            "/account/sudo",
            &[("password", &ada.password), ("next", "/account/tokens/new")],
        )
        .await;
    assert_eq!(elevated.status, 303);
    assert_eq!(
        elevated.location(),
        "/account/tokens/new",
        "lands on the form asked for"
    );
    let (old_id, new_id) = (before.session_cookie(), elevated.session_cookie());
    assert!(new_id.is_some(), "a new session cookie is set on elevation");
    assert_ne!(old_id, new_id);
    client
        .get("/account/tokens/new")
        .await
        .assert(200, "Create a Token");
    assert!(app.event_types().await.contains(&"user.sudo".to_owned()));
    // Five minutes later sudo mode is over.
    app.clock.advance(4 * 60);
    client
        .get("/account/tokens/new")
        .await
        .assert(200, "Create a Token");
    app.clock.advance(61);
    assert_eq!(client.get("/account/tokens/new").await.status, 303);
    // An open redirect through `next` is not possible.
    let evil = client
        .post(
            "/account/sudo",
            &[("password", &ada.password), ("next", "//evil.example/x")],
        )
        .await;
    assert_eq!(evil.location(), "/account/tokens");
}

async fn wrong_sudo_password_is_recorded_and_throttled(app: TestApp) {
    let (client, ada) = app.signed_in(Role::User).await;
    client.get("/account/sudo").await;
    let wrong = client
        .post("/account/sudo", &[("password", "not my password")])
        .await;
    wrong.assert(401, "Incorrect password.");
    assert!(app
        .event_types()
        .await
        .contains(&"user.sudo_failure".to_owned()));
    for _ in 0..4 {
        client
            .post("/account/sudo", &[("password", "not my password")])
            .await
            .assert(401, "Incorrect password.");
    }
    let throttled = client
        .post("/account/sudo", &[("password", &ada.password)])
        .await;
    throttled.assert(401, "Too many failed attempts");
    assert_eq!(
        client.get("/account/tokens/new").await.status,
        303,
        "still not in sudo mode"
    );
}

async fn role_scope_matrix_on_form_and_server(app: TestApp) {
    let expectations = [
        (Role::User, false),
        (Role::Billing, false),
        (Role::Engineer, true),
        (Role::Superuser, true),
    ];
    for (role, may_purge) in expectations {
        let (client, persona) = app.signed_in(role).await;
        client.enter_sudo(&persona).await;
        let form = client.get("/account/tokens/new").await;
        for scope in ["purge_all", "purge_select"] {
            let disabled = form.body.contains(&format!("value=\"{scope}\" disabled"));
            assert_eq!(disabled, !may_purge, "{role}: {scope} disabled?");
        }
        for scope in ["global", "global:read"] {
            assert!(
                !form.body.contains(&format!("value=\"{scope}\" disabled")),
                "{role}: {scope}"
            );
        }
        assert_eq!(
            form.body.contains("User token"),
            role == Role::Superuser,
            "Type shown to superusers only"
        );
        let page = client
            .create_token(&[
                ("name", "purger"),
                ("scope", "purge_all"),
                ("access", "all"),
                ("expiration", "90d"),
            ])
            .await;
        if may_purge {
            assert_eq!(page.status, 200, "{role}: {}", page.body);
        } else {
            page.assert(422, "Your role cannot grant the scope");
        }
        let page = client
            .create_token(&[
                ("name", "reader"),
                ("scope", "global:read"),
                ("access", "all"),
                ("expiration", "90d"),
            ])
            .await;
        assert_eq!(page.status, 200, "{role}");
        let tampered = client
            .create_token(&[
                ("name", "x"),
                ("scope", "admin"),
                ("access", "all"),
                ("expiration", "90d"),
            ])
            .await;
        tampered.assert(422, "Choose scopes from the list.");
        if role != Role::Superuser {
            let typed = client
                .create_token(&[
                    ("name", "x"),
                    ("type", "user"),
                    ("scope", "global"),
                    ("access", "all"),
                    ("expiration", "90d"),
                ])
                .await;
            typed.assert(422, "Choose a token type you may create.");
        }
        let automation = client
            .create_token(&[
                ("name", "x"),
                ("type", "automation"),
                ("scope", "global"),
                ("access", "all"),
                ("expiration", "90d"),
            ])
            .await;
        if role == Role::Superuser {
            // Superusers may create automation tokens, which need a role.
            automation.assert(422, "Choose the role of the automation token");
        } else {
            automation.assert(422, "Choose a token type you may create.");
        }
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT scope FROM tokens WHERE user_id = $1 ORDER BY scope")
                .bind(&persona.id)
                .fetch_all(app.pool())
                .await
                .unwrap();
        let expected: Vec<&str> = if may_purge {
            vec!["global:read", "purge_all"]
        } else {
            vec!["global:read"]
        };
        assert_eq!(stored, expected, "{role}");
    }
}

async fn form_errors_keep_input_and_write_nothing(app: TestApp) {
    let (client, ada) = app.signed_in(Role::User).await;
    client.enter_sudo(&ada).await;
    let long = "n".repeat(256);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("name", "   "),
                ("scope", "global"),
                ("access", "all"),
                ("expiration", "90d"),
            ],
            "Name is required.",
        ),
        (
            vec![
                ("name", &long),
                ("scope", "global"),
                ("access", "all"),
                ("expiration", "90d"),
            ],
            "Name must be at most 255 characters.",
        ),
        (
            vec![
                ("name", "kept name"),
                ("access", "all"),
                ("expiration", "90d"),
            ],
            "Select at least one scope.",
        ),
        (
            vec![
                ("name", "kept name"),
                ("scope", "global"),
                ("access", "all"),
                ("expiration", "date"),
                ("expires_on", "2001-01-01"),
            ],
            "The expiration date must be in the future.",
        ),
        (
            vec![
                ("name", "kept name"),
                ("scope", "global"),
                ("access", "all"),
                ("expiration", "date"),
                ("expires_on", "soon"),
            ],
            "Enter the expiration date as YYYY-MM-DD.",
        ),
        (
            vec![
                ("name", "kept name"),
                ("scope", "global"),
                ("access", "selected"),
                ("services", "nope"),
                ("expiration", "90d"),
            ],
            "There is no service",
        ),
        (
            vec![
                ("name", "kept name"),
                ("scope", "global"),
                ("access", "selected"),
                ("expiration", "90d"),
            ],
            "Select at least one service",
        ),
    ];
    for (fields, message) in cases {
        let page = client.create_token(&fields).await;
        page.assert(422, message);
        if fields[0].1 == "kept name" {
            page.assert(422, "value=\"kept name\"");
        }
    }
    assert_eq!(app.count("tokens").await, 0);
    assert!(!app.event_types().await.contains(&"token.create".to_owned()));
}

async fn engineer_limited_to_some_services(app: TestApp) {
    let account = app.account("Acme").await;
    let www = app.service(&account, "www").await;
    let api = app.service(&account, "api").await;
    let other_account = app.account("Other").await;
    let foreign = app.service(&other_account, "foreign").await;
    let eng = app.member(&account, Role::Engineer).await;
    app.limit_to(&eng, &www, ServicePermission::Full).await;
    let client = app.client();
    client.sign_in(&eng).await;
    client.enter_sudo(&eng).await;
    let form = client.get("/account/tokens/new").await;
    assert!(
        form.body.contains(">www<") && !form.body.contains(">api<"),
        "only their services are offered"
    );
    client
        .create_token(&[
            ("name", "t"),
            ("scope", "global"),
            ("access", "selected"),
            ("services", &api),
            ("expiration", "90d"),
        ])
        .await
        .assert(
            422,
            "You do not have access to the service \u{201c}api\u{201d}.",
        );
    client
        .create_token(&[
            ("name", "t"),
            ("scope", "global"),
            ("access", "all"),
            ("expiration", "90d"),
        ])
        .await
        .assert(422, "select the services this token may access");
    client
        .create_token(&[
            ("name", "t"),
            ("scope", "global"),
            ("access", "selected"),
            ("services", &foreign),
            ("expiration", "90d"),
        ])
        .await
        .assert(422, "There is no service");
    client
        .create_token(&[
            ("name", "www only"),
            ("scope", "purge_select"),
            ("access", "selected"),
            ("services", &www),
            ("expiration", "never"),
        ])
        .await
        .assert(200, "Token created");
    let list = client.get("/account/tokens").await;
    list.assert(200, "www only")
        .assert(200, "Purge select content")
        .assert(200, "Never");
    assert_eq!(app.count("token_services").await, 1);
}

async fn secret_is_shown_exactly_once(app: TestApp) {
    let (client, ada) = app.signed_in(Role::User).await;
    client.enter_sudo(&ada).await;
    let form = client.get("/account/tokens/new").await;
    let nonce = hidden(&form.body, "nonce").unwrap();
    let fields = [
        ("nonce", nonce.as_str()),
        ("name", "CI deploy"),
        ("scope", "global"),
        ("access", "all"),
        ("expiration", "90d"),
    ];
    let created = client.post("/account/tokens", &fields).await;
    created
        .assert(200, "It will never be visible again.")
        .assert(200, "Okay")
        .assert(200, "Copy to clipboard");
    assert_eq!(created.headers.get("cache-control").unwrap(), "no-store");
    let secret = secret_in(&created.body).expect("the token string is on the page");
    assert!(is_token_shaped(&secret), "{secret}");
    // Only the digest is stored, and no event or session carries the secret.
    let stored: String = sqlx::query_scalar("SELECT secret_digest FROM tokens")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, digest(&secret));
    let events: Vec<(String, String)> = sqlx::query_as("SELECT description, metadata FROM events")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert!(events
        .iter()
        .all(|(d, m)| !d.contains(&secret) && !m.contains(&secret)));
    let sessions: Vec<String> = sqlx::query_scalar("SELECT data FROM sessions")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert!(sessions.iter().all(|s| !s.contains(&secret)));
    assert!(!created
        .headers
        .iter()
        .any(|(_, v)| v.to_str().unwrap_or("").contains(&secret)));
    // Reload (the browser re-posts the form): no new token, no secret.
    let reloaded = client.post("/account/tokens", &fields).await;
    assert_eq!(reloaded.status, 303);
    assert_eq!(reloaded.location(), "/account/tokens");
    assert!(!reloaded.body.contains("tpu_"));
    assert_eq!(app.count("tokens").await, 1);
    // Going back and opening the list never show it either.
    for path in ["/account/tokens", "/account/tokens/new", "/account/sudo"] {
        let page = client.get(path).await;
        assert!(
            !page.body.contains(&secret) && !page.body.contains("tpu_"),
            "{path}"
        );
    }
    assert!(app.event_types().await.contains(&"token.create".to_owned()));
}

async fn list_shows_columns_expiry_and_access(app: TestApp) {
    let (client, ada) = app.signed_in(Role::User).await;
    let www = app.service(&ada.account_id, "www.example.com").await;
    client.enter_sudo(&ada).await;
    client
        .create_token(&[
            ("name", "for www"),
            ("scope", "global:read"),
            ("access", "selected"),
            ("services", &www),
            ("expiration", "never"),
        ])
        .await
        .assert(200, "Token created");
    let in_ten_days = page_date(app.now() + 10 * 86_400);
    client
        .create_token(&[
            ("name", "short lived"),
            ("scope", "global"),
            ("access", "all"),
            ("expiration", "date"),
            ("expires_on", &in_ten_days),
        ])
        .await
        .assert(200, "Token created");
    let list = client.get("/account/tokens").await;
    for text in [
        "Name",
        "Scope",
        "Access",
        "Created",
        "Last used",
        "Expires",
        "for www",
        "www.example.com",
        "All services",
        "Read-only access",
        "Global API access",
        "Never",
        &in_ten_days,
        "2 of 100 active tokens",
    ] {
        list.assert(200, text);
    }
    assert!(!list.body.contains("Expired"));
    app.clock.advance(4 * 86_400);
    client
        .get("/account/tokens")
        .await
        .assert(200, "Expires in");
    app.clock.advance(7 * 86_400);
    let later = client.get("/account/tokens").await;
    later
        .assert(200, "Expired")
        .assert(200, "1 of 100 active tokens");
}

/// The Access column reads each token's services with the token (one statement): every
/// token gets its own services, by name, and a token without any gets all of them.
async fn list_names_each_tokens_services_by_name(app: TestApp) {
    let (client, ada) = app.signed_in(Role::User).await;
    let www = app.service(&ada.account_id, "www.example.com").await;
    let api = app.service(&ada.account_id, "api.example.com").await;
    app.service(&ada.account_id, "unused.example.com").await;
    client.enter_sudo(&ada).await;
    for (name, services) in [
        ("both", vec![&www, &api]),
        ("web only", vec![&www]),
        ("everything", vec![]),
    ] {
        let mut form = vec![
            ("name", name),
            ("scope", "global:read"),
            ("expiration", "never"),
        ];
        form.push((
            "access",
            if services.is_empty() {
                "all"
            } else {
                "selected"
            },
        ));
        form.extend(services.iter().map(|id| ("services", id.as_str())));
        client
            .create_token(&form)
            .await
            .assert(200, "Token created");
    }
    let list = client.get("/account/tokens").await;
    list.assert(200, "api.example.com, www.example.com")
        .assert(200, "All services");
    assert_eq!(
        list.body.matches("www.example.com").count(),
        2,
        "{}",
        list.body
    );
    assert_eq!(list.body.matches("api.example.com").count(), 1);
    assert!(!list.body.contains("unused.example.com"));
    assert_eq!(list.body.matches("All services").count(), 1);
}

async fn limit_of_100_holds_under_concurrency(app: TestApp) {
    let account = app.account("Acme").await;
    let ada = app.member(&account, Role::User).await;
    let mut tasks = Vec::new();
    for i in 0..150 {
        let (issuer, spec) = (
            app.issuer(),
            TokenSpec::user(&ada).named(&format!("token {i}")),
        );
        tasks.push(tokio::spawn(async move { issuer.issue(spec).await }));
    }
    let mut created = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(IssueError::LimitReached(100)) => refused += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((created, refused), (100, 50));
    assert_eq!(app.count("tokens").await, 100);
}

/// Creating a token races with a superuser removing its owner from the account: either
/// the removal sees the tokens and is refused, or it wins and no token appears after it.
/// Never a token for a non-member, never a 500.
async fn a_removed_member_gets_no_token_even_mid_request(app: TestApp) {
    let boss = app.persona(Role::Superuser).await;
    let admin = app.client();
    admin.sign_in(&boss).await;
    admin.enter_sudo(&boss).await;
    let issue_for = |user: &Persona| {
        let (issuer, spec) = (app.issuer(), TokenSpec::user(user).named("racing"));
        tokio::spawn(async move { issuer.issue(spec).await })
    };
    for _ in 0..5 {
        let ada = app.member(&boss.account_id, Role::User).await;
        admin
            .get(&format!("/account/users/{}/remove", ada.id))
            .await;
        let tasks: Vec<_> = (0..20).map(|_| issue_for(&ada)).collect();
        let removal = admin
            .post(&format!("/account/users/{}/remove", ada.id), &[])
            .await;
        let mut created = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => created += 1,
                Err(IssueError::NotMember) => {}
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        }
        assert!(
            [303, 409].contains(&removal.status.as_u16()),
            "removal answered {}: {}",
            removal.status,
            removal.body
        );
        let member = app.role_in(&boss.account_id, &ada.id).await.is_some();
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE user_id = $1")
            .bind(&ada.id)
            .fetch_one(app.pool())
            .await
            .unwrap();
        assert_eq!(stored, created, "every created token is stored");
        if member {
            assert_eq!(removal.status, 409, "the removal was refused");
        } else {
            assert_eq!(stored, 0, "a removed member holds no token");
        }
    }
    // Once removed, a member gets a clear refusal, not a token.
    let gone = app.member(&boss.account_id, Role::User).await;
    admin
        .get(&format!("/account/users/{}/remove", gone.id))
        .await;
    let removal = admin
        .post(&format!("/account/users/{}/remove", gone.id), &[])
        .await;
    assert_eq!(removal.status, 303, "{}", removal.body);
    assert!(matches!(
        issue_for(&gone).await.unwrap(),
        Err(IssueError::NotMember)
    ));
}

/// The form checked the services, then one was deleted before the insert: the
/// creation is refused with a message (not a 500) and nothing is written.
async fn a_service_deleted_mid_request_refuses_the_token(app: TestApp) {
    let ada = app.persona(Role::Engineer).await;
    let deleted = vec![random_id()];
    let late = TokenSpec::user(&ada).named("late").services(&deleted);
    assert!(matches!(
        app.try_issue_token(late).await,
        Err(IssueError::ServiceGone)
    ));
    assert_eq!(app.count("tokens").await, 0);
    assert_eq!(app.count("token_services").await, 0);
}

async fn the_101st_token_gets_a_clear_message(app: TestApp) {
    let (client, ada) = app.signed_in(Role::User).await;
    for i in 0..100 {
        let spec = TokenSpec::user(&ada).named(&format!("t{i}"));
        // One of them expired: expired tokens do not count against the limit.
        let spec = if i == 0 {
            spec.expires_at(app.now() + 60)
        } else {
            spec
        };
        app.issue_token(spec).await;
    }
    client.enter_sudo(&ada).await;
    let page = client
        .create_token(&[
            ("name", "one too many"),
            ("scope", "global"),
            ("access", "all"),
            ("expiration", "90d"),
        ])
        .await;
    page.assert(422, "You already have 100 active tokens")
        .assert(422, "value=\"one too many\"");
    app.clock.advance(61);
    client.enter_sudo(&ada).await;
    client
        .create_token(&[
            ("name", "fits now"),
            ("scope", "global"),
            ("access", "all"),
            ("expiration", "90d"),
        ])
        .await
        .assert(200, "Token created");
}

async fn delete_with_confirmation_and_only_own_tokens(app: TestApp) {
    let (alice, alice_p) = app.signed_in(Role::User).await;
    let bob_p = app.member(&alice_p.account_id, Role::Superuser).await;
    let bob = app.client();
    bob.sign_in(&bob_p).await;
    alice.enter_sudo(&alice_p).await;
    alice
        .create_token(&[
            ("name", "alice one"),
            ("scope", "global"),
            ("access", "all"),
            ("expiration", "90d"),
        ])
        .await
        .assert(200, "Token created");
    alice
        .create_token(&[
            ("name", "alice two"),
            ("scope", "global"),
            ("access", "all"),
            ("expiration", "90d"),
        ])
        .await
        .assert(200, "Token created");
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM tokens ORDER BY name")
        .fetch_all(app.pool())
        .await
        .unwrap();
    let (one, two) = (&ids[0], &ids[1]);

    // Another user (even a superuser, on this page) cannot see or delete them.
    assert_eq!(
        bob.get(&format!("/account/tokens/{one}/delete"))
            .await
            .status,
        404
    );
    bob.get("/account/tokens").await;
    assert_eq!(
        bob.post(&format!("/account/tokens/{one}/delete"), &[])
            .await
            .status,
        404
    );
    assert_eq!(app.count("tokens").await, 2);

    // Without JavaScript: a confirmation page, then Delete.
    let confirm = alice.get(&format!("/account/tokens/{one}/delete")).await;
    confirm
        .assert(200, "Delete token")
        .assert(200, "alice one")
        .assert(200, ">Delete</button>");
    let done = alice
        .post(&format!("/account/tokens/{one}/delete"), &[])
        .await;
    assert_eq!(done.status, 303);
    assert!(!alice
        .get("/account/tokens")
        .await
        .body
        .contains("alice one"));

    // With htmx: a confirmation fragment, then the row goes away in place.
    let fragment = alice
        .get_htmx(&format!("/account/tokens/{two}/delete"))
        .await;
    fragment
        .assert(200, "hx-post")
        .assert(200, ">Delete</button>");
    assert!(!fragment.body.contains("<html"), "a fragment, not a page");
    let token = alice.csrf().unwrap();
    let response = alice
        .raw()
        .post(alice.url(&format!("/account/tokens/{two}/delete")))
        .header("hx-request", "true")
        .header("x-csrf-token", token)
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("hx-swap-oob"));
    assert_eq!(app.count("tokens").await, 0);
    assert_eq!(
        app.event_types()
            .await
            .iter()
            .filter(|e| *e == "token.destroy")
            .count(),
        2
    );
    // Deleting it again: 404, nothing else changes.
    alice.get("/account/tokens").await;
    assert_eq!(
        alice
            .post(&format!("/account/tokens/{two}/delete"), &[])
            .await
            .status,
        404
    );
}

async fn sudo_expiring_while_the_form_is_open_loses_nothing(app: TestApp) {
    let (client, ada) = app.signed_in(Role::User).await;
    client.enter_sudo(&ada).await;
    let form = client.get("/account/tokens/new").await;
    let nonce = hidden(&form.body, "nonce").unwrap();
    app.clock.advance(6 * 60);
    let fields = [
        ("nonce", nonce.as_str()),
        ("name", "late token"),
        ("scope", "global:read"),
        ("access", "all"),
        ("expiration", "never"),
    ];
    let page = client.post("/account/tokens", &fields).await;
    page.assert(401, "Your re-authentication has expired")
        .assert(401, "value=\"late token\"")
        .assert(401, "sudo_password");
    assert_eq!(app.count("tokens").await, 0);
    let nonce = hidden(&page.body, "nonce").unwrap();
    let wrong = [
        ("nonce", nonce.as_str()),
        ("name", "late token"),
        ("scope", "global:read"),
        ("access", "all"),
        ("expiration", "never"),
        ("sudo_password", "wrong password"),
    ];
    let page = client.post("/account/tokens", &wrong).await;
    page.assert(401, "Incorrect password.")
        .assert(401, "value=\"late token\"");
    let nonce = hidden(&page.body, "nonce").unwrap();
    let right = [
        ("nonce", nonce.as_str()),
        ("name", "late token"),
        ("scope", "global:read"),
        ("access", "all"),
        ("expiration", "never"),
        ("sudo_password", ada.password.as_str()),
    ];
    client
        .post("/account/tokens", &right)
        .await
        .assert(200, "Token created");
    assert_eq!(app.count("tokens").await, 1);
}

async fn service_search_returns_matching_options(app: TestApp) {
    let (client, ada) = app.signed_in(Role::User).await;
    let www = app.service(&ada.account_id, "www.example.com").await;
    app.service(&ada.account_id, "api.example.com").await;
    let page = client.get_htmx("/account/tokens/services?q=API").await;
    page.assert(200, "api.example.com");
    assert!(!page.body.contains("www.example.com"));
    let keep = client
        .get_htmx(&format!("/account/tokens/services?q=api&services={www}"))
        .await;
    keep.assert(200, "www.example.com").assert(200, "selected");
}

//! Set-up, sign-in and sign-out, sessions, throttling and the security basics.

use tokenpanel::testkit::{on_both_databases, Role, TestApp};

on_both_databases!(
    setup_works_once_then_answers_404,
    setup_validates_and_keeps_input,
    sign_in_and_failures_look_alike,
    failures_are_throttled_per_email_and_per_ip,
    sign_out_is_a_post_and_ends_the_session,
    session_survives_a_restart,
    csrf_token_missing_or_wrong_is_refused,
    cross_origin_posts_are_refused,
    security_headers_on_every_page,
    oversize_and_malformed_bodies,
    unknown_routes_and_health,
    signed_in_pages_require_sign_in,
);

async fn setup_works_once_then_answers_404(app: TestApp) {
    let path = app.setup_path().await.expect("no users yet");
    let client = app.client();
    client.get(&path).await.assert(200, "Set up tokenpanel");
    assert_eq!(client.get("/setup?key=not-the-secret").await.status, 404);
    assert_eq!(client.get("/setup").await.status, 404);
    let before = client.get(&path).await;
    let done = client
        .post(
            &path,
            &[
                ("account_name", "Acme"),
                ("name", "Ada Lovelace"),
                ("email", "Ada@Example.com"),
                ("password", "correct horse battery"),
                ("password_confirmation", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/account/tokens");
    assert_ne!(done.session_cookie(), before.session_cookie());
    let home = client.get("/account/tokens").await;
    home.assert(200, "Personal tokens")
        .assert(200, "Acme")
        .assert(200, "Ada Lovelace");
    // Once a user exists the page is gone, for the old secret and for any new one.
    assert_eq!(client.get(&path).await.status, 404);
    assert!(app.setup_path().await.is_none());
    let again = client.post(&path, &[("account_name", "Evil")]).await;
    assert_eq!(again.status, 404);
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("accounts").await, 1);
    assert_eq!(app.count("memberships").await, 1);
}

async fn setup_validates_and_keeps_input(app: TestApp) {
    let path = app.setup_path().await.unwrap();
    let client = app.client();
    client.get(&path).await;
    let page = client
        .post(
            &path,
            &[
                ("account_name", "Acme Widgets"),
                ("name", ""),
                ("email", "not-an-email"),
                ("password", "short"),
                ("password_confirmation", "short"),
            ],
        )
        .await;
    page.assert(422, "Your name is required.")
        .assert(422, "Enter a valid email address.")
        .assert(422, "Use at least 12 characters.")
        .assert(422, "value=\"Acme Widgets\"")
        .assert(422, "value=\"not-an-email\"");
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("accounts").await, 0);
}

async fn sign_in_and_failures_look_alike(app: TestApp) {
    let ada = app.persona(Role::User).await;
    let client = app.client();
    let login = client.get("/login").await;
    login.assert(200, "Sign in");
    let wrong = client
        .post(
            "/login",
            &[("email", &ada.email), ("password", "nope nope nope")],
        )
        .await;
    let unknown = client
        .post(
            "/login",
            &[
                ("email", "nobody@example.test"),
                ("password", "nope nope nope"),
            ],
        )
        .await;
    wrong.assert(401, "Incorrect email or password.");
    unknown.assert(401, "Incorrect email or password.");
    // Same page apart from the email echoed back.
    assert_eq!(
        wrong.body.replace(&ada.email, "EMAIL"),
        unknown.body.replace("nobody@example.test", "EMAIL"),
    );
    let empty = client
        .post("/login", &[("email", ""), ("password", "")])
        .await;
    empty.assert(400, "Enter your email and your password.");
    let ok = client
        .post(
            "/login",
            &[
                ("email", &ada.email.to_uppercase()),
                ("password", &ada.password),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location(), "/account/tokens");
    assert_ne!(
        ok.session_cookie(),
        login.session_cookie(),
        "a new session id at sign-in"
    );
    client
        .get("/account/tokens")
        .await
        .assert(200, "Personal tokens");
    let events = app.event_types().await;
    assert_eq!(
        events.iter().filter(|e| *e == "user.login_failure").count(),
        2
    );
    assert_eq!(events.iter().filter(|e| *e == "user.login").count(), 1);
    // After sign-in, `next` is honoured for local paths only.
    let other = app.client();
    other
        .get("/login?next=/account/tokens/new")
        .await
        .assert(200, "value=\"/account/tokens/new\"");
    let evil = app.client();
    let page = evil.get("/login?next=//evil.example/").await;
    assert!(!page.body.contains("evil.example"));
}

async fn failures_are_throttled_per_email_and_per_ip(app: TestApp) {
    let ada = app.persona(Role::User).await;
    let client = app.client();
    client.get("/login").await;
    for _ in 0..5 {
        client
            .post(
                "/login",
                &[("email", &ada.email), ("password", "wrong password!")],
            )
            .await
            .assert(401, "Incorrect");
    }
    // Even the right password is refused while throttled, with a clear message.
    let throttled = client
        .post(
            "/login",
            &[("email", &ada.email), ("password", &ada.password)],
        )
        .await;
    throttled.assert(429, "Too many failed attempts. Try again in 15 minutes.");
    app.clock.advance(15 * 60 + 1);
    let ok = client
        .post(
            "/login",
            &[("email", &ada.email), ("password", &ada.password)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);

    // Per IP: many emails from one address.
    let other = app.client();
    other.get("/login").await;
    for i in 0..30 {
        let email = format!("guess{i}@example.test");
        other
            .post(
                "/login",
                &[("email", &email), ("password", "wrong password!")],
            )
            .await
            .assert(401, "Incorrect");
    }
    let page = other
        .post(
            "/login",
            &[("email", "another@example.test"), ("password", "x")],
        )
        .await;
    page.assert(429, "Too many failed attempts");
}

async fn sign_out_is_a_post_and_ends_the_session(app: TestApp) {
    let (client, _) = app.signed_in(Role::User).await;
    assert_eq!(client.get("/logout").await.status, 405);
    client
        .get("/account/tokens")
        .await
        .assert(200, "Personal tokens");
    let out = client.post("/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/login");
    let after = client.get("/account/tokens").await;
    assert_eq!(after.status, 303);
    assert_eq!(after.location(), "/login?next=%2Faccount%2Ftokens");
    assert!(app.event_types().await.contains(&"user.logout".to_owned()));
}

async fn session_survives_a_restart(app: TestApp) {
    let (client, _) = app.signed_in(Role::Engineer).await;
    let app = app.restart().await;
    // The client still points at the old port; a new server means a new port.
    let page = client
        .raw()
        .get(app.url("/account/tokens"))
        .send()
        .await
        .unwrap();
    // Cookies are per host, not per port, so the session cookie goes along.
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Personal tokens"));
}

async fn csrf_token_missing_or_wrong_is_refused(app: TestApp) {
    let (client, _) = app.signed_in(Role::User).await;
    let events_before = app.count("events").await;
    client
        .post_raw("/logout", &[])
        .await
        .assert(403, "did not come from this site");
    client
        .post_raw("/logout", &[("csrf_token", "wrong")])
        .await
        .assert(403, "did not come from this site");
    // Still signed in, nothing written.
    client
        .get("/account/tokens")
        .await
        .assert(200, "Personal tokens");
    assert_eq!(app.count("events").await, events_before);
    // The token in the htmx header works as well as the form field.
    let token = client.csrf().unwrap();
    let response = client
        .raw()
        .post(client.url("/logout"))
        .header("x-csrf-token", token)
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    // Sign-in itself is protected: a login form posted without the token fails.
    let fresh = app.client();
    fresh
        .post_raw("/login", &[("email", "a@b.c"), ("password", "x")])
        .await
        .assert(403, "did not come from this site");
}

async fn cross_origin_posts_are_refused(app: TestApp) {
    let (client, _) = app.signed_in(Role::User).await;
    let token = client.csrf().unwrap();
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let response = client
            .raw()
            .post(client.url("/logout"))
            .header(name, value)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf_token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{name}: {value}");
    }
    client
        .get("/account/tokens")
        .await
        .assert(200, "Personal tokens");
    let same = client
        .raw()
        .post(client.url("/logout"))
        .header("origin", format!("http://{}", app.addr))
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 303);
}

async fn security_headers_on_every_page(app: TestApp) {
    let (client, _) = app.signed_in(Role::Superuser).await;
    for path in [
        "/login",
        "/account/tokens",
        "/account/sudo",
        "/no/such/page",
        "/healthz",
        "/static/app.css",
    ] {
        let page = client.get(path).await;
        let h = &page.headers;
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(
            h.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
        assert!(h.get("referrer-policy").is_some(), "{path}");
        assert!(h.get("x-request-id").is_some(), "{path}");
        if !path.starts_with("/static/") {
            assert_eq!(h.get("cache-control").unwrap(), "no-store", "{path}");
        }
    }
    let login = app.client().get("/login").await;
    let cookie = login
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    // No inline script anywhere: every <script> has a src.
    for page in [
        login.body.as_str(),
        client.get("/account/tokens").await.body.as_str(),
    ] {
        assert!(!page.contains("<script>"), "inline script found");
        assert!(!page.contains(" onclick="), "inline handler found");
    }
}

async fn oversize_and_malformed_bodies(app: TestApp) {
    let client = app.client();
    client.get("/login").await;
    let token = client.csrf().unwrap();
    let big = format!("csrf_token={token}&email={}", "a".repeat(100 * 1024));
    let response = reqwest::Client::new()
        .post(client.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // A body over the 1 MiB limit is refused from its Content-Length alone: send the
    // headers only and read the answer (a client still writing the body could see the
    // connection close first).
    let huge = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&app.addr).await.unwrap();
        let head = format!(
            "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            app.addr,
            2 * 1024 * 1024
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 64];
        let n = stream.read(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer[..n]).into_owned()
    };
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    let malformed = client
        .raw()
        .post(client.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={token}&email=%zz"))
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert!(malformed.text().await.unwrap().contains("malformed"));
    let json = client
        .raw()
        .post(client.url("/login"))
        .header("content-type", "application/json")
        .header("x-csrf-token", &token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 415);
    assert_eq!(app.count("events").await, 0, "nothing was written");
}

async fn unknown_routes_and_health(app: TestApp) {
    let client = app.client();
    client
        .get("/definitely/not/here")
        .await
        .assert(404, "There is nothing at this address.");
    client.get("/static/nope.js").await.assert(404, "nothing");
    client.get("/healthz").await.assert(200, "ok");
    client.get("/readyz").await.assert(200, "ready");
    let js = client.get("/static/htmx.min.js").await;
    assert_eq!(js.status, 200);
    assert!(js.body.contains("2.0.11"));
    app.close_database().await;
    // Alive without its database, but not ready for traffic.
    client.get("/healthz").await.assert(200, "ok");
    let ready = client.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert!(
        ready.body.contains("database unavailable"),
        "{}",
        ready.body
    );
}

async fn signed_in_pages_require_sign_in(app: TestApp) {
    let client = app.client();
    for path in ["/account/tokens", "/account/tokens/new", "/account/sudo"] {
        let page = client.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert!(page.location().starts_with("/login?next="), "{path}");
    }
    assert_eq!(client.get("/").await.location(), "/login");
}

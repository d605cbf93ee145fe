//! Throttles that hold under concurrency, no targeted lock-out, bounded password work.

use reqwest::Method;
use tokenpanel::testkit::{
    on_both_databases, urlencode, Api, Persona, Reply, Role, TestApp, TokenSpec,
};

on_both_databases!(
    concurrent_password_guesses_reach_argon2_at_most_five_times,
    concurrent_sudo_guesses_reach_argon2_at_most_five_times,
    concurrent_wrong_codes_are_checked_at_most_five_times,
    too_many_password_checks_at_once_are_told_to_come_back,
    a_client_cannot_choose_its_address_behind_a_proxy,
    a_token_limited_to_a_service_reads_only_its_events,
    lists_come_in_bounded_pages,
    a_far_future_expiry_is_refused,
    anonymous_visitors_write_no_sessions,
    wrong_invitation_links_are_refused_after_thirty,
);

const ATTACKER: &str = "203.0.113.7";
const OWNER: &str = "198.51.100.9";

/// `n` requests at once, each built by `request`.
async fn at_once(
    api: &Api,
    n: usize,
    request: impl Fn(usize) -> reqwest::RequestBuilder,
) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (api, builder) = (api.clone(), request(i));
            tokio::spawn(async move { api.send(builder).await })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("a request task"));
    }
    replies
}

fn statuses(replies: &[Reply]) -> Vec<u16> {
    let mut all: Vec<u16> = replies.iter().map(|r| r.status).collect();
    all.sort();
    all
}

fn token_by_password(
    api: &Api,
    from: &str,
    who: &Persona,
    password: &str,
) -> reqwest::RequestBuilder {
    api.request(Method::POST, "/tokens", None)
        .header("x-forwarded-for", from)
        .basic_auth(&who.email, Some(password))
}

async fn concurrent_password_guesses_reach_argon2_at_most_five_times(app: TestApp) {
    let node = app.node_behind_proxy().await;
    let ada = app.persona(Role::User).await;
    let api = node.api();
    let before = node.password_checks();
    let replies = at_once(&api, 60, |_| {
        token_by_password(&api, ATTACKER, &ada, "a wrong guess")
    })
    .await;
    let all = statuses(&replies);
    let wrong = all.iter().filter(|s| **s == 401).count();
    let refused = all.iter().filter(|s| **s == 429).count();
    assert!(wrong <= 5, "at most five guesses are checked: {all:?}");
    assert_eq!(wrong + refused, 60, "{all:?}");
    assert!(
        node.password_checks() - before <= 5,
        "argon2 ran {} times",
        node.password_checks() - before
    );
    assert!(replies
        .iter()
        .filter(|r| r.status == 429)
        .all(|r| !r.header("retry-after").is_empty()));
    // The owner, from an address with no failures, still gets in.
    node.api()
        .send(token_by_password(&api, OWNER, &ada, &ada.password))
        .await
        .expect(200);
    // The attacker's address stays refused, even with the right password.
    node.api()
        .send(token_by_password(&api, ATTACKER, &ada, &ada.password))
        .await
        .expect(429);
}

async fn concurrent_sudo_guesses_reach_argon2_at_most_five_times(app: TestApp) {
    let node = app.node_behind_proxy().await;
    let ada = app.persona(Role::User).await;
    let key = app.issue_token(&ada).await.key;
    let api = node.api();
    let before = node.password_checks();
    let replies = at_once(&api, 60, |_| {
        api.request(Method::POST, "/sudo", Some(&key))
            .header("x-forwarded-for", ATTACKER)
            .form(&[
                ("username", ada.email.as_str()),
                ("password", "a wrong guess"),
            ])
    })
    .await;
    let all = statuses(&replies);
    let wrong = all.iter().filter(|s| **s == 403).count();
    assert!(
        wrong <= 5,
        "at most five re-authentications are checked: {all:?}"
    );
    assert_eq!(
        all.iter().filter(|s| **s == 429).count(),
        60 - wrong,
        "{all:?}"
    );
    assert!(node.password_checks() - before <= 5);
    // The owner re-authenticates from elsewhere.
    node.api()
        .send(
            api.request(Method::POST, "/sudo", Some(&key))
                .header("x-forwarded-for", OWNER)
                .form(&[
                    ("username", ada.email.as_str()),
                    ("password", ada.password.as_str()),
                ]),
        )
        .await
        .expect(200);
}

async fn concurrent_wrong_codes_are_checked_at_most_five_times(app: TestApp) {
    let node = app.node_behind_proxy().await;
    let ada = app.persona(Role::User).await;
    let secret = app.enrol_two_factor(&ada).await;
    let api = node.api();
    // The password is right (the attacker has it); the code is what is guessed. Each
    // request comes from an address of its own, so only the code's lock can stop them.
    let replies = at_once(&api, 60, |i| {
        api.request(Method::POST, "/tokens", None)
            .header("x-forwarded-for", format!("192.0.2.{}", i + 1))
            .header("fastly-otp", "000000")
            .basic_auth(&ada.email, Some(&ada.password))
    })
    .await;
    let all = statuses(&replies);
    let checked = all.iter().filter(|s| **s == 400).count();
    assert!(checked <= 5, "at most five codes are checked: {all:?}");
    // The rest are refused by the code's lock, or (sixty passwords at once) told to
    // come back by the bounded password queue before any code is looked at.
    assert!(all.contains(&429), "{all:?}");
    assert!(all.iter().all(|s| matches!(s, 400 | 429 | 503)), "{all:?}");
    // Locked: even the right code is refused now.
    let good = tokenpanel::testkit::totp_code(&secret, app.now()).unwrap();
    node.api()
        .send(
            api.request(Method::POST, "/tokens", None)
                .header("x-forwarded-for", OWNER)
                .header("fastly-otp", good)
                .basic_auth(&ada.email, Some(&ada.password)),
        )
        .await
        .expect(429);
}

async fn too_many_password_checks_at_once_are_told_to_come_back(app: TestApp) {
    // Forty sign-ins for forty accounts from forty addresses: no throttle applies, so
    // they all want argon2 at once, and those past the queue are told to come back.
    let node = app.node_behind_proxy().await;
    let account = app.account("Crowd").await;
    let mut people = Vec::new();
    for _ in 0..40 {
        people.push(app.member(&account, Role::User).await);
    }
    let api = node.api();
    let replies = at_once(&api, 40, |i| {
        token_by_password(&api, &format!("192.0.2.{}", i + 1), &people[i], "wrong")
    })
    .await;
    let all = statuses(&replies);
    assert!(all.iter().all(|s| *s == 401 || *s == 503), "{all:?}");
    let busy: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    assert!(!busy.is_empty(), "a bounded queue turns some away: {all:?}");
    assert!(busy.iter().all(|r| r.header("retry-after") == "1"));
    assert!(busy.iter().all(|r| r.msg().contains("Try again")));
}

async fn a_client_cannot_choose_its_address_behind_a_proxy(app: TestApp) {
    // The client sends its own X-Forwarded-For line; the proxy appends the address it
    // saw as a second line. The address recorded is the proxy's word, not the client's.
    let node = app.node_behind_proxy().await;
    let ada = app.persona(Role::User).await;
    let api = node.api();
    api.send(
        api.request(Method::POST, "/tokens", None)
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-for", "203.0.113.50")
            .basic_auth(&ada.email, Some("wrong password")),
    )
    .await
    .expect(401);
    let ips: Vec<Option<String>> =
        sqlx::query_scalar("SELECT ip FROM events WHERE event_type = 'user.login_failure'")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(ips, vec![Some("203.0.113.50".to_owned())]);
    // Throttling follows the same address: five failures from it, then a refusal,
    // while the spoofed address is untouched.
    for _ in 0..4 {
        api.send(token_by_password(&api, "203.0.113.50", &ada, "wrong"))
            .await
            .expect(401);
    }
    api.send(token_by_password(&api, "203.0.113.50", &ada, &ada.password))
        .await
        .expect(429);
    api.send(token_by_password(&api, "6.6.6.6", &ada, &ada.password))
        .await
        .expect(200);
}

async fn a_token_limited_to_a_service_reads_only_its_events(app: TestApp) {
    let api = app.api();
    let root = app.persona(Role::Superuser).await;
    let a = app.service(&root.account_id, "a.example").await;
    let b = app.service(&root.account_id, "b.example").await;
    let purger = app.issue_token(&root).await.key;
    for service in [&a, &b] {
        api.post(&format!("/service/{service}/purge_all"), Some(&purger))
            .await
            .expect(200);
    }
    let reader = app
        .issue_token(
            TokenSpec::user(&root)
                .scope("global:read")
                .services(std::slice::from_ref(&a)),
        )
        .await
        .key;
    let events = api.get("/events?page[size]=100", &reader).await;
    events.expect(200);
    let services: Vec<&str> = events.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["attributes"]["service_id"].as_str())
        .collect();
    assert_eq!(services, vec![a.as_str()], "{}", events.text);
    // Events on no service still follow the role (a superuser sees them all).
    assert!(events.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["attributes"]["event_type"] == "token.create"));
    api.get(&format!("/service/{b}"), &reader).await.expect(403);
    // The unlimited token still sees both.
    let all = api.get("/events?page[size]=100", &purger).await;
    let purged = all.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["attributes"]["event_type"] == "service.purge_all")
        .count();
    assert_eq!(purged, 2);
}

async fn lists_come_in_bounded_pages(app: TestApp) {
    let api = app.api();
    let root = app.persona(Role::Superuser).await;
    let key = app.issue_token(&root).await.key;
    for i in 0..4 {
        app.issue_token(TokenSpec::user(&root).named(&format!("t{i}")))
            .await;
    }
    let path = format!("/customer/{}/tokens", root.account_id);
    let all = api.get(&path, &key).await;
    all.expect(200);
    assert_eq!(
        all.json.as_array().unwrap().len(),
        5,
        "the default page holds them"
    );
    let second = api.get(&format!("{path}?per_page=2&page=2"), &key).await;
    second.expect(200);
    assert_eq!(second.json.as_array().unwrap().len(), 2);
    let links = second.header("link");
    assert!(
        links.contains("page=3&per_page=2>; rel=\"next\""),
        "{links}"
    );
    assert!(
        links.contains("page=1&per_page=2>; rel=\"prev\""),
        "{links}"
    );
    assert!(
        links.contains("page=3&per_page=2>; rel=\"last\""),
        "{links}"
    );
    let third = api.get(&format!("{path}?per_page=2&page=3"), &key).await;
    assert_eq!(third.json.as_array().unwrap().len(), 1);
    api.get(&format!("{path}?per_page=1001"), &key)
        .await
        .expect(400);
    // The event log is never read deeper than its window.
    api.get("/events?page[number]=101&page[size]=100", &key)
        .await
        .expect(400);
    api.get("/events?page[number]=100&page[size]=100", &key)
        .await
        .expect(200);
}

async fn a_far_future_expiry_is_refused(app: TestApp) {
    let api = app.api();
    let ada = app.persona(Role::User).await;
    let reply = api
        .post_form(
            "/tokens",
            None,
            &[
                ("username", ada.email.as_str()),
                ("password", ada.password.as_str()),
                ("expires_at", "9999-12-31T23:59:59-23:59"),
            ],
        )
        .await;
    reply.expect(422);
    assert!(
        reply.msg().contains("no later than 9999-12-31"),
        "{}",
        reply.text
    );
    assert_eq!(app.count("tokens").await, 0, "nothing stored");
    // The last second of 9999 is still a date the panel can show.
    api.post_form(
        "/tokens",
        None,
        &[
            ("username", ada.email.as_str()),
            ("password", ada.password.as_str()),
            ("expires_at", "9999-12-31T23:59:59Z"),
        ],
    )
    .await
    .expect(200);
}

/// Pages anyone can open (sign-in, setup, invitation links, the second step) and failed
/// sign-ins cost no session row: the CSRF token before sign-in lives in a signed cookie.
/// The token still binds the form to the browser that loaded it.
async fn anonymous_visitors_write_no_sessions(app: TestApp) {
    let ada = app.persona(Role::User).await;
    let before = app.count("sessions").await;
    for i in 0..10 {
        let visitor = app.client();
        let email = format!("visitor{i}@example.com");
        visitor.get("/login").await.assert(200, "Sign in");
        visitor.get("/setup?key=not-the-secret").await;
        visitor
            .get("/invitation?key=not-an-invitation")
            .await
            .assert(404, "This invitation link does not work");
        visitor.get("/login/two-factor").await;
        visitor.get("/login").await;
        visitor
            .post("/login", &[("email", &email), ("password", "wrong")])
            .await
            .assert(401, "Incorrect email or password.");
    }
    // Ten thousand cookie-less visitors, twenty at a time.
    let crowd = reqwest::Client::new();
    for _ in 0..500 {
        let requests: Vec<_> = (0..20)
            .map(|_| tokio::spawn(crowd.get(app.url("/login")).send()))
            .collect();
        for request in requests {
            let response = request.await.expect("a task").expect("GET /login");
            assert_eq!(response.status().as_u16(), 200);
        }
    }
    assert_eq!(
        app.count("sessions").await,
        before,
        "no session rows for visitors"
    );

    // Another browser's token (without its cookie) does not pass.
    let first = app.client();
    first.get("/login").await;
    let stolen = first.csrf().expect("a CSRF token on the sign-in page");
    let second = app.client();
    second
        .post_raw(
            "/login",
            &[
                ("csrf_token", &stolen),
                ("email", &ada.email),
                ("password", &ada.password),
            ],
        )
        .await
        .assert(403, "");
    // A forged signature does not pass either.
    let (nonce, _) = stolen.split_once('.').expect("nonce.signature");
    let forged = format!("{nonce}.{}", "0".repeat(64));
    let third = app.client();
    let reply = third
        .raw()
        .post(third.url("/login"))
        .header("cookie", format!("tokenpanel_csrf={forged}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf_token={}&email={}&password={}",
            urlencode(&forged),
            urlencode(&ada.email),
            urlencode(&ada.password)
        ))
        .send()
        .await
        .expect("POST /login");
    assert_eq!(reply.status().as_u16(), 403);
    assert_eq!(app.count("sessions").await, before);

    // The browser that loaded the form signs in, and only then gets a session.
    first
        .post(
            "/login",
            &[("email", &ada.email), ("password", &ada.password)],
        )
        .await;
    assert_eq!(app.count("sessions").await, before + 1);
    first
        .get("/account/tokens")
        .await
        .assert(200, "Personal tokens");
}

/// Invitation links cannot be guessed, and a client that keeps presenting wrong ones
/// (even all at once) is refused after 30 for the rest of the window; a working link
/// from elsewhere still opens.
async fn wrong_invitation_links_are_refused_after_thirty(app: TestApp) {
    let node = app.node_behind_proxy().await;
    let (client, boss) = app.signed_in(Role::Superuser).await;
    client.enter_sudo(&boss).await;
    let link = client.invite_link("newcomer@example.test", "user").await;

    let visitor = node.client();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let request = visitor
                .raw()
                .get(visitor.url(&format!("/invitation?key=guess{i:04}")))
                .header("x-forwarded-for", ATTACKER)
                .send();
            tokio::spawn(async move {
                let response = request.await.expect("GET /invitation");
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.parse::<i64>().ok());
                (response.status().as_u16(), retry_after)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("a request task"));
    }
    let gone = answers.iter().filter(|(s, _)| *s == 404).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!((gone, refused.len()), (30, 10), "{answers:?}");
    assert!(
        refused.iter().all(|(_, wait)| wait.is_some_and(|w| w > 0)),
        "{answers:?}"
    );
    // The refusal holds for the working link too, from that address...
    let from_attacker = visitor
        .raw()
        .get(visitor.url(&link))
        .header("x-forwarded-for", ATTACKER)
        .send()
        .await
        .expect("GET the link");
    assert_eq!(from_attacker.status().as_u16(), 429);
    // ...but not from the invitee's.
    let invitee = node.client();
    let opened = invitee
        .raw()
        .get(invitee.url(&link))
        .header("x-forwarded-for", OWNER)
        .send()
        .await
        .expect("GET the link");
    assert_eq!(opened.status().as_u16(), 200);
    let body = opened.text().await.expect("the page");
    assert!(body.contains("Decline the invitation"), "{body}");
}

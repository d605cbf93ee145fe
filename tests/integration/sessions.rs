//! The user's own security (issue 13): password change, the Sessions list and signing
//! sessions out, sessions ending on password and two-factor changes and on removal, the
//! absolute session lifetime, session rows that hold no usable id, sudo mode in the
//! header, new recovery codes, and the operator's `reset-password`.

use std::io::Write;
use std::process::{Command, Stdio};

use tokenpanel::testkit::{
    digest, hidden, on_both_databases, page_date_time, totp_code, Client, Persona, Role, TestApp,
    TOTP_STEP,
};

on_both_databases!(
    a_password_change_ends_the_other_sessions,
    the_sessions_list_signs_out_one_or_all_others,
    session_times_read_relative_with_the_exact_time_on_hover,
    session_rows_hold_no_usable_id,
    sessions_end_after_the_absolute_lifetime,
    removal_ends_the_sessions_in_that_account,
    two_factor_on_or_off_ends_the_other_sessions,
    sudo_mode_shows_in_the_header_and_can_end,
    recovery_codes_can_be_made_anew,
    an_operator_resets_a_password_and_ends_the_sessions,
);

async fn signed_in_browser(app: &TestApp, persona: &Persona, agent: &str) -> Client {
    let client = app.client_with_agent(agent);
    client.sign_in(persona).await;
    client
}

/// Whether the client's next request lands on the sign-in page.
async fn is_signed_out(client: &Client) -> bool {
    let page = client.get("/account/tokens").await;
    page.status == 303 && page.location().starts_with("/login")
}

async fn a_password_change_ends_the_other_sessions(app: TestApp) {
    let me = app.persona(Role::Engineer).await;
    let here = signed_in_browser(&app, &me, "Firefox/128.0 (X11; Linux x86_64)").await;
    let there = signed_in_browser(&app, &me, "Chrome/126.0 (Windows NT 10.0)").await;
    // The page needs sudo mode first.
    let prompt = here.get("/account/security/password").await;
    assert_eq!(
        prompt.location(),
        "/account/sudo?next=%2Faccount%2Fsecurity%2Fpassword"
    );
    here.enter_sudo(&me).await;
    here.get("/account/security/password")
        .await
        .assert(200, "Current password");
    let change = |current: &str, new: &str, confirm: &str| {
        let (current, new, confirm) = (current.to_owned(), new.to_owned(), confirm.to_owned());
        let here = &here;
        async move {
            here.post(
                "/account/security/password",
                &[
                    ("current_password", current.as_str()),
                    ("password", new.as_str()),
                    ("password_confirmation", confirm.as_str()),
                ],
            )
            .await
        }
    };
    change(
        "wrong password",
        "a brand new password",
        "a brand new password",
    )
    .await
    .assert(401, "That is not your current password.")
    .assert(401, "id=\"current_password-error\"");
    // The wrong current password counts with the sign-in throttle (email and address).
    let failures: i64 = sqlx::query_scalar("SELECT failures FROM throttle WHERE key = $1")
        .bind(format!("login:pair:{}:127.0.0.1", me.email))
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(failures, 1);
    change(&me.password, "short", "short")
        .await
        .assert(422, "Use at least 12 characters.");
    change(&me.password, "a brand new password", "another password!")
        .await
        .assert(422, "The two passwords do not match.");
    change(&me.password, &me.password, &me.password)
        .await
        .assert(422, "Choose a password other than your current one.");
    assert!(!is_signed_out(&there).await, "nothing changed yet");
    let done = change(&me.password, "a brand new password", "a brand new password").await;
    assert_eq!(done.location(), "/account/security?done=password");
    here.get(done.location())
        .await
        .assert(200, "Your password was changed.");
    assert!(is_signed_out(&there).await, "the other session ended");
    assert!(!is_signed_out(&here).await, "this one goes on");
    assert!(app
        .event_types()
        .await
        .contains(&"user.password_update".to_owned()));
    let old = app.client();
    assert_eq!(old.submit_password(&me).await.status, 401);
    let renewed = Persona {
        password: "a brand new password".into(),
        ..me.clone()
    };
    assert_eq!(app.client().submit_password(&renewed).await.status, 303);
    // Without sudo mode the change is not made.
    let idle = signed_in_browser(&app, &renewed, "curl/8").await;
    let refused = idle
        .post(
            "/account/security/password",
            &[
                ("current_password", "a brand new password"),
                ("password", "yet another password"),
                ("password_confirmation", "yet another password"),
            ],
        )
        .await;
    assert!(refused.location().starts_with("/account/sudo"));
}

async fn session_times_read_relative_with_the_exact_time_on_hover(app: TestApp) {
    let me = app.persona(Role::User).await;
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
    let earlier = app.now();
    let _laptop = signed_in_browser(&app, &me, chrome).await;
    app.clock.advance(3 * 3600);
    let here = signed_in_browser(&app, &me, "Firefox/128.0 (X11; Linux x86_64)").await;
    let page = here.get("/account/security").await;
    let laptop_row = page
        .body
        .split("<tr>")
        .find(|row| row.contains("Chrome on Windows"))
        .unwrap_or_else(|| panic!("no laptop row: {}", page.body));
    // Signed in and last active three hours ago, the exact time on hover.
    let three_hours_ago = format!("title=\"{}\">3 hours ago</time>", page_date_time(earlier));
    assert_eq!(
        laptop_row.matches(&three_hours_ago).count(),
        2,
        "{laptop_row}"
    );
    let this_row = page
        .body
        .split("<tr>")
        .find(|row| row.contains("This browser"))
        .unwrap_or_else(|| panic!("no row of this browser: {}", page.body));
    assert!(this_row.contains(">just now</time>"), "{this_row}");
}

/// The digests the Sessions list names, in its order, with whether each is this browser.
fn listed_sessions(html: &str) -> Vec<(String, bool)> {
    html.split("<tr>")
        .skip(2)
        .filter_map(|row| {
            let id = hidden(row, "session")?;
            Some((id, row.contains("This browser")))
        })
        .collect()
}

async fn the_sessions_list_signs_out_one_or_all_others(app: TestApp) {
    let me = app.persona(Role::User).await;
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
    let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    let here = signed_in_browser(&app, &me, firefox).await;
    let laptop = signed_in_browser(&app, &me, chrome).await;
    let phone = signed_in_browser(&app, &me, safari).await;
    let someone = app.persona(Role::User).await;
    let _theirs = signed_in_browser(&app, &someone, chrome).await;
    let page = here.get("/account/security").await;
    page.assert(200, "Sessions")
        .assert(200, "Firefox on Linux")
        .assert(200, "Chrome on Windows")
        .assert(200, "Safari on iOS")
        .assert(200, "127.0.0.1")
        .assert(200, "Sign out all other sessions");
    let listed = listed_sessions(&page.body);
    assert_eq!(listed.len(), 3, "only my sessions");
    assert_eq!(listed.iter().filter(|(_, current)| *current).count(), 1);
    // Sign out the phone by its row.
    let phone_page = phone.get("/account/security").await;
    let phone_id = listed_sessions(&phone_page.body)
        .into_iter()
        .find(|(_, current)| *current)
        .unwrap()
        .0;
    here.get("/account/security").await;
    let done = here
        .post(
            "/account/security/sessions/sign-out",
            &[("session", &phone_id)],
        )
        .await;
    assert_eq!(done.location(), "/account/security?done=signed-out");
    assert!(is_signed_out(&phone).await);
    assert!(!is_signed_out(&laptop).await);
    // Someone else's session cannot be named.
    let theirs: String = sqlx::query_scalar("SELECT id_digest FROM sessions WHERE user_id = $1")
        .bind(&someone.id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    here.get("/account/security").await;
    assert_eq!(
        here.post(
            "/account/security/sessions/sign-out",
            &[("session", &theirs)]
        )
        .await
        .status,
        404
    );
    // Sign out all others: the laptop lands on sign-in, this browser goes on.
    let all = here
        .post("/account/security/sessions/sign-out-others", &[])
        .await;
    assert_eq!(all.location(), "/account/security?done=signed-out-others");
    assert!(is_signed_out(&laptop).await);
    let page = here.get("/account/security").await;
    assert_eq!(listed_sessions(&page.body).len(), 1);
    assert!(!page.body.contains("Sign out all other sessions"));
    let mine: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
        .bind(&me.id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(mine, 1);
    let theirs_left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
        .bind(&someone.id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(theirs_left, 1, "other users' sessions are untouched");
    // Signing out this browser from the list is the header's Sign out.
    let (mine_id, _) = listed_sessions(&page.body).remove(0);
    let out = here
        .post(
            "/account/security/sessions/sign-out",
            &[("session", &mine_id)],
        )
        .await;
    assert_eq!(out.location(), "/login");
    assert!(is_signed_out(&here).await);
}

async fn session_rows_hold_no_usable_id(app: TestApp) {
    let me = app.persona(Role::Superuser).await;
    let client = app.client();
    let page = client.submit_password(&me).await;
    let cookie = page.session_cookie().expect("a session cookie");
    client.get("/account/tokens").await;
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id_digest, data FROM sessions")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for (id, data) in &rows {
        assert_ne!(id, &cookie);
        assert!(!id.contains(&cookie) && !data.contains(&cookie));
    }
    assert!(rows.iter().any(|(id, _)| *id == digest(&cookie)));
    // What the table holds does not sign anyone in, as a cookie.
    for (id, _) in &rows {
        let thief = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let answer = thief
            .get(app.url("/account/tokens"))
            .header("cookie", format!("tokenpanel_session={id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 303);
    }
    // The real cookie does.
    let owner = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = owner
        .get(app.url("/account/tokens"))
        .header("cookie", format!("tokenpanel_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

async fn sessions_end_after_the_absolute_lifetime(app: TestApp) {
    let me = app.persona(Role::User).await;
    let client = app.client();
    client.sign_in(&me).await;
    // Active every day, the session still ends 30 days after sign-in.
    for _ in 0..29 {
        app.clock.advance(86_400);
        assert!(!is_signed_out(&client).await);
    }
    app.clock.advance(86_400);
    assert!(is_signed_out(&client).await);
    client.sign_in(&me).await;
    assert!(!is_signed_out(&client).await, "a new sign-in starts afresh");
}

async fn removal_ends_the_sessions_in_that_account(app: TestApp) {
    let boss = app.persona(Role::Superuser).await;
    let other = app.account("Other").await;
    let both = app.member(&other, Role::Engineer).await;
    // Other is their older membership, so sign-in lands there.
    app.clock.advance(1);
    app.add_member(&boss.account_id, &both, Role::User).await;
    // One browser works in Other (their first account), one in the boss's account.
    let in_other = app.client();
    in_other.sign_in(&both).await;
    let in_acme = app.client();
    in_acme.sign_in(&both).await;
    in_acme
        .post("/account/switch", &[("account_id", &boss.account_id)])
        .await;
    let admin = app.client();
    admin.sign_in(&boss).await;
    admin.enter_sudo(&boss).await;
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
        .bind(&both.id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(before, 2);
    admin
        .get(&format!("/account/users/{}/remove", both.id))
        .await;
    let removed = admin
        .post(&format!("/account/users/{}/remove", both.id), &[])
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    let after: Vec<Option<String>> =
        sqlx::query_scalar("SELECT account_id FROM sessions WHERE user_id = $1")
            .bind(&both.id)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(after, vec![Some(other.clone())]);
    assert!(is_signed_out(&in_acme).await);
    assert!(!is_signed_out(&in_other).await);
}

async fn two_factor_on_or_off_ends_the_other_sessions(app: TestApp) {
    let me = app.persona(Role::User).await;
    let here = app.client();
    here.sign_in(&me).await;
    let there = app.client();
    there.sign_in(&me).await;
    here.enter_sudo(&me).await;
    let page = here.get("/account/security/two-factor").await;
    let start = page.body.find("<code id=\"totp-secret\">").unwrap() + 23;
    let secret = page.body[start..page.body.find("</code>").unwrap()].to_owned();
    let code = totp_code(&secret, app.now()).unwrap();
    here.post("/account/security/two-factor", &[("code", &code)])
        .await
        .assert(200, "Your other sessions were signed out.");
    assert!(is_signed_out(&there).await);
    assert!(!is_signed_out(&here).await);
    // Off again: the same.
    let again = app.client();
    let step = again.submit_password(&me).await;
    assert_eq!(step.location(), "/login/two-factor");
    app.clock.advance(TOTP_STEP);
    again.get("/login/two-factor").await;
    let code = totp_code(&secret, app.now()).unwrap();
    assert_eq!(
        again
            .post("/login/two-factor", &[("code", &code)])
            .await
            .status,
        303
    );
    assert!(!is_signed_out(&again).await);
    here.get("/account/security").await;
    let off = here.post("/account/security/two-factor/disable", &[]).await;
    assert_eq!(off.location(), "/account/security?done=two-factor-off");
    assert!(is_signed_out(&again).await);
    assert!(!is_signed_out(&here).await);
}

async fn sudo_mode_shows_in_the_header_and_can_end(app: TestApp) {
    let me = app.persona(Role::User).await;
    let client = app.client();
    client.sign_in(&me).await;
    let page = client.get("/account/tokens").await;
    assert!(!page.body.contains("End sudo mode"));
    client.enter_sudo(&me).await;
    client
        .get("/account/security")
        .await
        .assert(200, "Sudo mode: 5 minutes left")
        .assert(200, "End sudo mode");
    app.clock.advance(4 * 60 + 30);
    client
        .get("/account/security")
        .await
        .assert(200, "Sudo mode: 1 minute left");
    let ended = client
        .raw()
        .post(client.url("/account/sudo/end"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("referer", client.url("/account/security"))
        .body(format!("csrf_token={}", client.csrf().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 303);
    assert_eq!(
        ended.headers().get("location").unwrap(),
        "/account/security"
    );
    let page = client.get("/account/security").await;
    assert!(!page.body.contains("End sudo mode"));
    assert_eq!(
        client.get("/account/tokens/new").await.status,
        303,
        "sudo mode is over"
    );
}

async fn recovery_codes_can_be_made_anew(app: TestApp) {
    let me = app.persona(Role::User).await;
    let secret = app.enrol_two_factor(&me).await;
    let client = app.client();
    client.submit_password(&me).await;
    app.clock.advance(TOTP_STEP);
    let code = totp_code(&secret, app.now()).unwrap();
    client.get("/login/two-factor").await;
    client.post("/login/two-factor", &[("code", &code)]).await;
    let page = client.get("/account/security").await;
    page.assert(200, "Regenerate recovery codes");
    // Without sudo mode the form asks for the password and a code.
    client
        .post("/account/security/recovery-codes", &[])
        .await
        .assert(401, "Enter your password.");
    app.clock.advance(TOTP_STEP);
    let code = totp_code(&secret, app.now()).unwrap();
    let first = client
        .post(
            "/account/security/recovery-codes",
            &[("password", &me.password), ("code", &code)],
        )
        .await;
    first.assert(200, "New recovery codes were made");
    let old: Vec<String> = first
        .body
        .split("<li><code>")
        .skip(1)
        .map(|c| c.split("</code>").next().unwrap().to_owned())
        .collect();
    assert_eq!(old.len(), 10);
    // In sudo mode now: no password asked; the old codes stop working.
    let second = client.post("/account/security/recovery-codes", &[]).await;
    second.assert(200, "New recovery codes were made");
    assert!(old.iter().all(|c| !second.body.contains(c.as_str())));
    assert!(app
        .event_types()
        .await
        .contains(&"two_factor_auth.recovery_codes_regenerate".to_owned()));
    let later = app.client();
    later.submit_password(&me).await;
    later.get("/login/two-factor").await;
    later
        .post("/login/two-factor", &[("code", &old[0])])
        .await
        .assert(401, "Incorrect code.");
}

async fn an_operator_resets_a_password_and_ends_the_sessions(app: TestApp) {
    let me = app.persona(Role::Superuser).await;
    let client = app.client();
    client.sign_in(&me).await;
    let (url, key) = app.database();
    let run = |args: &[&str], password: Option<&str>, stdin: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokenpanel"));
        command
            .args(args)
            .env("DATABASE_URL", url)
            .env("LOG_LEVEL", "warn")
            .env_remove("TOKENPANEL_PASSWORD")
            .env_remove("SECRET_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(key) = key {
            command.env("SECRET_KEY", key);
        }
        if let Some(password) = password {
            command.env("TOKENPANEL_PASSWORD", password);
        }
        let mut child = command.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let unknown = run(
        &["reset-password", "--email", "nobody@example.test"],
        Some("a long enough password"),
        "",
    );
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no user has the email nobody@example.test"));
    let weak = run(&["reset-password", "--email", &me.email], None, "short\n");
    assert_eq!(weak.status.code(), Some(1));
    assert!(!is_signed_out(&client).await);
    let done = run(
        &["reset-password", "--email", &me.email],
        None,
        "from standard input\n",
    );
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(is_signed_out(&client).await, "their sessions ended");
    let renewed = Persona {
        password: "from standard input".into(),
        ..me.clone()
    };
    assert_eq!(app.client().submit_password(&renewed).await.status, 303);
    let from_env = run(
        &["reset-password", "--email", &me.email.to_uppercase()],
        Some("from the environment"),
        "",
    );
    assert!(from_env.status.success());
    let renewed = Persona {
        password: "from the environment".into(),
        ..me
    };
    assert_eq!(app.client().submit_password(&renewed).await.status, 303);
}

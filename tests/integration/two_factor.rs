//! Two-factor authentication: enrolment, the second sign-in step, sudo with a code,
//! recovery codes, lockout, account-wide enforcement and the server key.

use tokenpanel::testkit::{
    on_both_databases, totp_code, Client, Persona, Role, TestApp, TOTP_STEP,
};

on_both_databases!(
    enrolment_needs_a_valid_code_and_shows_recovery_codes_once,
    sign_in_asks_for_the_code_and_refuses_replays,
    codes_one_step_away_work_and_two_steps_away_do_not,
    recovery_codes_work_once,
    five_wrong_codes_lock_the_second_step_for_15_minutes,
    pending_second_step_grants_nothing_and_expires,
    account_can_require_two_factor,
    turning_off_needs_sudo_with_a_code,
    sudo_asks_for_the_code,
    a_database_without_its_server_key_yields_no_valid_code,
);

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .map(|i| i + start.len())
        .unwrap_or_else(|| panic!("{start:?} not in page:\n{html}"));
    let to = html[from..].find(end).map(|i| i + from).unwrap();
    &html[from..to]
}

/// Enrols the signed-in client (enrolment is behind sudo mode, which it then ends);
/// returns the secret shown and the recovery codes.
async fn enrol(app: &TestApp, client: &Client, persona: &Persona) -> (String, Vec<String>) {
    assert_eq!(
        client.get("/account/security/two-factor").await.location(),
        "/account/sudo?next=%2Faccount%2Fsecurity%2Ftwo%2Dfactor",
        "enrolment asks for sudo mode"
    );
    client.enter_sudo(persona).await;
    let page = client.get("/account/security/two-factor").await;
    page.assert(200, "otpauth://totp/").assert(200, "<svg");
    let secret = between(&page.body, "<code id=\"totp-secret\">", "</code>").to_owned();
    let code = totp_code(&secret, app.now()).unwrap();
    let done = client
        .post("/account/security/two-factor", &[("code", &code)])
        .await;
    done.assert(200, "Recovery codes");
    let codes: Vec<String> = done
        .body
        .split("<li><code>")
        .skip(1)
        .map(|chunk| chunk.split("</code>").next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    assert_eq!(client.post("/account/sudo/end", &[]).await.status, 303);
    (secret, codes)
}

/// Signs in with the password and stops at the second step.
async fn password_step(client: &Client, persona: &Persona) {
    let page = client.submit_password(persona).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/login/two-factor");
    client
        .get("/login/two-factor")
        .await
        .assert(200, "Authentication code");
}

/// A user with two-factor enrolled, signed out, and the clock moved past the
/// enrolment code's step.
async fn enrolled_user(app: &TestApp) -> (Persona, String, Vec<String>) {
    let (client, persona) = app.signed_in(Role::User).await;
    let (secret, codes) = enrol(app, &client, &persona).await;
    client.post("/logout", &[]).await;
    app.clock.advance(TOTP_STEP);
    (persona, secret, codes)
}

async fn enrolment_needs_a_valid_code_and_shows_recovery_codes_once(app: TestApp) {
    let (client, persona) = app.signed_in(Role::User).await;
    client
        .get("/account/security")
        .await
        .assert(200, "Two-factor authentication is <strong>off</strong>");
    client.enter_sudo(&persona).await;
    let page = client.get("/account/security/two-factor").await;
    let secret = between(&page.body, "<code id=\"totp-secret\">", "</code>").to_owned();
    assert!(
        page.body.contains(&format!("secret={secret}")),
        "the otpauth URI carries the same secret"
    );
    let wrong = client
        .post("/account/security/two-factor", &[("code", "000000")])
        .await;
    wrong.assert(422, "That code is not right.");
    assert!(
        wrong.body.contains(&secret),
        "the same secret is offered again"
    );
    let stored: Option<String> = sqlx::query_scalar("SELECT totp_secret FROM users WHERE id = $1")
        .bind(&persona.id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, None, "nothing is saved before a valid code");
    let code = totp_code(&secret, app.now()).unwrap();
    let done = client
        .post("/account/security/two-factor", &[("code", &code)])
        .await;
    done.assert(200, "They will not be shown again");
    let codes: Vec<&str> = done
        .body
        .split("<li><code>")
        .skip(1)
        .map(|c| c.split("</code>").next().unwrap())
        .collect();
    assert_eq!(codes.len(), 10);
    let stored: String = sqlx::query_scalar("SELECT totp_secret FROM users WHERE id = $1")
        .bind(&persona.id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(!stored.contains(&secret), "the secret is encrypted at rest");
    let digests: Vec<String> = sqlx::query_scalar("SELECT code_digest FROM recovery_codes")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(digests.len(), 10);
    assert!(
        codes.iter().all(|c| !digests.iter().any(|d| d.contains(c))),
        "recovery codes are stored hashed"
    );
    let security = client.get("/account/security").await;
    security
        .assert(200, "Two-factor authentication is <strong>on</strong>")
        .assert(200, "10 of 10 recovery codes left");
    assert!(
        codes.iter().all(|c| !security.body.contains(c)),
        "never shown again"
    );
    assert!(app
        .event_types()
        .await
        .contains(&"two_factor_auth.enable".to_owned()));
}

async fn sign_in_asks_for_the_code_and_refuses_replays(app: TestApp) {
    let (persona, secret, _) = enrolled_user(&app).await;
    let client = app.client();
    password_step(&client, &persona).await;
    client
        .post("/login/two-factor", &[("code", "123456")])
        .await
        .assert(401, "Incorrect code.");
    let code = totp_code(&secret, app.now()).unwrap();
    let ok = client.post("/login/two-factor", &[("code", &code)]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location(), "/account/tokens");
    client
        .get("/account/tokens")
        .await
        .assert(200, "Personal tokens");
    // The same code again, in another sign-in within the same step: a replay.
    let other = app.client();
    password_step(&other, &persona).await;
    other
        .post("/login/two-factor", &[("code", &code)])
        .await
        .assert(401, "Incorrect code.");
    app.clock.advance(TOTP_STEP);
    let next = totp_code(&secret, app.now()).unwrap();
    assert_eq!(
        other
            .post("/login/two-factor", &[("code", &next)])
            .await
            .status,
        303
    );
}

async fn codes_one_step_away_work_and_two_steps_away_do_not(app: TestApp) {
    let (persona, secret, _) = enrolled_user(&app).await;
    // Leave room behind the enrolment step so "previous" steps are still newer than it.
    app.clock.advance(5 * TOTP_STEP);
    let client = app.client();
    password_step(&client, &persona).await;
    for offset in [-2, 2] {
        let code = totp_code(&secret, app.now() + offset * TOTP_STEP).unwrap();
        client
            .post("/login/two-factor", &[("code", &code)])
            .await
            .assert(401, "Incorrect code.");
    }
    let previous = totp_code(&secret, app.now() - TOTP_STEP).unwrap();
    assert_eq!(
        client
            .post("/login/two-factor", &[("code", &previous)])
            .await
            .status,
        303
    );
    let other = app.client();
    password_step(&other, &persona).await;
    let following = totp_code(&secret, app.now() + TOTP_STEP).unwrap();
    assert_eq!(
        other
            .post("/login/two-factor", &[("code", &following)])
            .await
            .status,
        303
    );
}

async fn recovery_codes_work_once(app: TestApp) {
    let (persona, _, codes) = enrolled_user(&app).await;
    let client = app.client();
    password_step(&client, &persona).await;
    let spaced = codes[3].to_uppercase().replace('-', " ");
    assert_eq!(
        client
            .post("/login/two-factor", &[("code", &spaced)])
            .await
            .status,
        303
    );
    client
        .get("/account/security")
        .await
        .assert(200, "9 of 10 recovery codes left");
    let other = app.client();
    password_step(&other, &persona).await;
    other
        .post("/login/two-factor", &[("code", &codes[3])])
        .await
        .assert(401, "Incorrect code.");
    assert_eq!(
        other
            .post("/login/two-factor", &[("code", &codes[4])])
            .await
            .status,
        303
    );
}

async fn five_wrong_codes_lock_the_second_step_for_15_minutes(app: TestApp) {
    let (persona, secret, _) = enrolled_user(&app).await;
    let client = app.client();
    password_step(&client, &persona).await;
    for _ in 0..4 {
        client
            .post("/login/two-factor", &[("code", "000000")])
            .await
            .assert(401, "Incorrect code.");
    }
    client
        .post("/login/two-factor", &[("code", "000000")])
        .await
        .assert(429, "try again in 15 minutes");
    let good = totp_code(&secret, app.now()).unwrap();
    client
        .post("/login/two-factor", &[("code", &good)])
        .await
        .assert(429, "Too many wrong codes");
    // Still locked after 14 minutes, for a new sign-in too (the pending step lasts 5).
    app.clock.advance(14 * 60);
    let again = app.client();
    password_step(&again, &persona).await;
    let good = totp_code(&secret, app.now()).unwrap();
    again
        .post("/login/two-factor", &[("code", &good)])
        .await
        .assert(429, "Too many wrong codes");
    app.clock.advance(61);
    let good = totp_code(&secret, app.now()).unwrap();
    let released = again.post("/login/two-factor", &[("code", &good)]).await;
    assert_eq!(released.status, 303, "{}", released.body);
    let failures = app
        .event_types()
        .await
        .iter()
        .filter(|e| *e == "user.login_failure")
        .count();
    assert_eq!(failures, 5);
}

async fn pending_second_step_grants_nothing_and_expires(app: TestApp) {
    let (persona, secret, _) = enrolled_user(&app).await;
    let client = app.client();
    password_step(&client, &persona).await;
    for path in [
        "/account/tokens",
        "/account/tokens/new",
        "/account/security",
        "/account/sudo",
    ] {
        let page = client.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert!(
            page.location().starts_with("/login"),
            "{path}: {}",
            page.location()
        );
    }
    assert_eq!(
        client
            .post("/account/sudo", &[("password", &persona.password)])
            .await
            .status,
        303
    );
    app.clock.advance(5 * 60 + 1);
    let code = totp_code(&secret, app.now()).unwrap();
    let expired = client.post("/login/two-factor", &[("code", &code)]).await;
    assert_eq!(expired.status, 303);
    assert_eq!(expired.location(), "/login");
    assert_eq!(client.get("/account/tokens").await.status, 303);
    assert_eq!(client.get("/login/two-factor").await.location(), "/login");
}

async fn account_can_require_two_factor(app: TestApp) {
    let (admin, admin_p) = app.signed_in(Role::Superuser).await;
    let user_p = app.member(&admin_p.account_id, Role::User).await;
    // Only superusers may change the setting.
    let user = app.client();
    user.sign_in(&user_p).await;
    user.post("/account/security/settings", &[("force_2fa", "on")])
        .await
        .assert(403, "Only superusers");
    let page = admin.get("/account/security").await;
    page.assert(200, "Require two-factor authentication")
        .assert(200, "Require single sign-on");
    assert!(!user
        .get("/account/security")
        .await
        .body
        .contains("Require single sign-on"));
    // Without sudo mode the form asks for the password.
    admin
        .post("/account/security/settings", &[("force_2fa", "on")])
        .await
        .assert(401, "Enter your password.");
    assert_eq!(
        admin
            .post(
                "/account/security/settings",
                &[("force_2fa", "on"), ("password", &admin_p.password)]
            )
            .await
            .status,
        303
    );
    assert!(app
        .event_types()
        .await
        .contains(&"account.update".to_owned()));
    // A user without two-factor is sent to enrolment and reaches nothing else.
    let fresh = app.client();
    fresh.sign_in(&user_p).await;
    for path in [
        "/account/tokens",
        "/account/security",
        "/account/tokens/new",
    ] {
        assert_eq!(
            fresh.get(path).await.location(),
            "/account/security/two-factor",
            "{path}"
        );
    }
    let (_, _) = enrol(&app, &fresh, &user_p).await;
    fresh
        .get("/account/tokens")
        .await
        .assert(200, "Personal tokens");
    // While required, it cannot be turned off.
    fresh.get("/account/security").await;
    fresh
        .post("/account/security/two-factor/disable", &[])
        .await
        .assert(403, "cannot be turned off");
}

async fn turning_off_needs_sudo_with_a_code(app: TestApp) {
    let (client, persona) = app.signed_in(Role::Engineer).await;
    let (secret, _) = enrol(&app, &client, &persona).await;
    app.clock.advance(TOTP_STEP);
    client
        .get("/account/security")
        .await
        .assert(200, "Turn off two-factor authentication");
    client
        .post(
            "/account/security/two-factor/disable",
            &[("password", &persona.password), ("code", "")],
        )
        .await
        .assert(401, "Enter the code from your authenticator app.");
    client
        .post(
            "/account/security/two-factor/disable",
            &[("password", &persona.password), ("code", "000000")],
        )
        .await
        .assert(401, "Incorrect password or authentication code.");
    let code = totp_code(&secret, app.now()).unwrap();
    let done = client
        .post(
            "/account/security/two-factor/disable",
            &[("password", &persona.password), ("code", &code)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    client
        .get("/account/security")
        .await
        .assert(200, "Two-factor authentication is <strong>off</strong>");
    assert_eq!(app.count("recovery_codes").await, 0);
    assert!(app
        .event_types()
        .await
        .contains(&"two_factor_auth.disable".to_owned()));
}

async fn sudo_asks_for_the_code(app: TestApp) {
    let (client, persona) = app.signed_in(Role::User).await;
    let (secret, _) = enrol(&app, &client, &persona).await;
    app.clock.advance(TOTP_STEP);
    client
        .get("/account/sudo")
        .await
        .assert(200, "Two-factor authentication code");
    client
        .post("/account/sudo", &[("password", &persona.password)])
        .await
        .assert(401, "Enter the code");
    client
        .post(
            "/account/sudo",
            &[("password", &persona.password), ("code", "111111")],
        )
        .await
        .assert(401, "Incorrect password or authentication code.");
    let code = totp_code(&secret, app.now()).unwrap();
    client
        .post(
            "/account/sudo",
            &[("password", "wrong password"), ("code", &code)],
        )
        .await
        .assert(401, "Incorrect");
    // The right code was not spent by the wrong password.
    let ok = client
        .post(
            "/account/sudo",
            &[("password", &persona.password), ("code", &code)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    client
        .get("/account/tokens/new")
        .await
        .assert(200, "Create a Token");
}

async fn a_database_without_its_server_key_yields_no_valid_code(app: TestApp) {
    let (persona, secret, _) = enrolled_user(&app).await;
    let thief = app.server_with_other_key().await;
    let client = thief.client();
    password_step(&client, &persona).await;
    let code = totp_code(&secret, app.now()).unwrap();
    client
        .post("/login/two-factor", &[("code", &code)])
        .await
        .assert(401, "Incorrect code.");
    // The real server, with its key, still accepts a code.
    let real = app.client();
    password_step(&real, &persona).await;
    app.clock.advance(TOTP_STEP);
    let code = totp_code(&secret, app.now()).unwrap();
    assert_eq!(
        real.post("/login/two-factor", &[("code", &code)])
            .await
            .status,
        303
    );
}

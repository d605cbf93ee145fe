//! Invitations (issue 13): the impostor flow, screens that say nothing about whether an
//! email exists elsewhere, decline, revoke, re-issue, someone else's browser, other
//! accounts, and the `/invitations` API.

use tokenpanel::testkit::{
    digest, invitation_link, on_both_databases, urlencode, Client, Page, Persona, Role, TestApp,
    TokenSpec,
};

on_both_databases!(
    an_impostor_of_another_account_cannot_join_without_the_link,
    the_inviting_superuser_sees_the_same_whether_or_not_the_email_exists,
    decline_revoke_and_reissue,
    a_signed_in_stranger_is_refused_without_naming_anyone,
    engineers_are_invited_with_their_service_limits,
    invitations_stay_in_their_account,
    invitations_over_the_api,
);

fn key_of(link: &str) -> String {
    link.trim_start_matches("/invitation?key=").to_owned()
}

/// The page with everything that legitimately differs between two invitations (the
/// email, ids, secrets, CSRF tokens, times) replaced by placeholders.
fn structure(page: &Page, email: &str) -> String {
    let mut body = page.body.replace(email, "EMAIL");
    for marker in [
        "/invitation?key=",
        "name=\"csrf_token\" value=\"",
        "\"X-CSRF-Token\": \"",
        "id=\"invitation-",
        "/account/users/invitations/",
        "name=\"issued\" value=\"",
    ] {
        let mut out = String::new();
        let mut rest = body.as_str();
        while let Some(i) = rest.find(marker) {
            out.push_str(&rest[..i + marker.len()]);
            out.push('X');
            rest = &rest[i + marker.len()..];
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            rest = &rest[end..];
        }
        out.push_str(rest);
        body = out;
    }
    // Expiry times may fall on either side of a minute between two requests.
    let mut out = String::new();
    for line in body.lines() {
        if line.contains(" UTC") {
            out.push_str("TIME\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

async fn signed_in_with_sudo(app: &TestApp, account: &str) -> (Client, Persona) {
    let boss = app.member(account, Role::Superuser).await;
    let client = app.client();
    client.sign_in(&boss).await;
    client.enter_sudo(&boss).await;
    (client, boss)
}

/// Account X's superuser makes alice@ (via an invitation they accept themselves, with a
/// password of their choosing). Account Y invites alice@: X's impostor signs in as
/// alice@, but without Y's link there is nothing to accept and no way into Y.
async fn an_impostor_of_another_account_cannot_join_without_the_link(app: TestApp) {
    let x = app.account("X Corp").await;
    let y = app.account("Y Corp").await;
    let (x_client, _) = signed_in_with_sudo(&app, &x).await;
    let (y_client, _) = signed_in_with_sudo(&app, &y).await;
    let alice = "alice@victim.example";
    let x_link = x_client.invite_link(alice, "user").await;
    let impostor = app.client();
    let made = impostor
        .accept_as_new_user(&x_link, "Alice (impostor)", "impostor password")
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let alice_id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(alice)
        .fetch_one(app.pool())
        .await
        .unwrap();

    let y_link = y_client.invite_link(alice, "superuser").await;
    // Signed in as alice@, the impostor sees no trace of Y's invitation.
    let home = impostor.get("/account/tokens").await;
    assert!(!home.body.contains("Y Corp"));
    assert_eq!(
        impostor
            .post("/account/switch", &[("account_id", &y)])
            .await
            .status,
        403
    );
    // Accepting needs Y's link: a guess, X's spent link, or none is not enough.
    for key in ["", "guess", key_of(&x_link).as_str(), &key_of(&y_link)[1..]] {
        impostor.get("/account/tokens").await;
        let tried = impostor.post("/invitation/accept", &[("key", key)]).await;
        tried.assert(404, "This invitation link does not work");
        assert!(!tried.body.contains("Y Corp"));
    }
    assert_eq!(app.role_in(&y, &alice_id).await, None);
    assert_eq!(app.count("invitations").await, 1, "Y's is still pending");
    // With the link, only the person who can sign in as alice@ joins: here that is the
    // impostor, which is why the link goes to the real person out of band.
    let real = app.client();
    real.get(&y_link)
        .await
        .assert(200, "Sign in to accept")
        .assert(200, "Y Corp");
    let refused = real
        .post(
            "/invitation/accept",
            &[
                ("key", &key_of(&y_link)),
                ("name", "Alice"),
                ("password", "the real password"),
                ("password_confirmation", "the real password"),
            ],
        )
        .await;
    assert_eq!(refused.status, 303, "a user exists: sign in first");
    assert_eq!(app.role_in(&y, &alice_id).await, None);
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email = $1 AND name = 'Alice'")
            .bind(alice)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(stored, 0, "no second alice@ and no renamed one");
}

/// Y's screens and answers while inviting alice@ are the same in structure whether or
/// not a user with that email exists anywhere.
async fn the_inviting_superuser_sees_the_same_whether_or_not_the_email_exists(app: TestApp) {
    let x = app.account("X Corp").await;
    let y = app.account("Y Corp").await;
    let existing = app.member(&x, Role::User).await;
    let fresh = "nobody-yet@example.test";
    let (y_client, y_boss) = signed_in_with_sudo(&app, &y).await;
    // A service, so the Account tokens owner filter is a list; then an email field.
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    for email in [existing.email.as_str(), fresh] {
        let mut pages = Vec::new();
        let invited = y_client.invite(email, "engineer", &[]).await;
        assert_eq!(invited.status, 200);
        pages.push(structure(&invited, email));
        let again = y_client.invite(email, "engineer", &[]).await;
        assert_eq!(again.status, 409);
        pages.push(structure(&again, email));
        let list = y_client.get("/account/users").await;
        pages.push(structure(&list, email));
        let filter = y_client
            .get(&format!(
                "/account/account-tokens?owner_email={}",
                urlencode(email)
            ))
            .await;
        pages.push(structure(&filter, email));
        let events = y_client.get("/account/events").await;
        assert_eq!(events.status, 200);
        let id: String = sqlx::query_scalar("SELECT id FROM invitations WHERE email = $1")
            .bind(email)
            .fetch_one(app.pool())
            .await
            .unwrap();
        let revoked = y_client
            .post(&format!("/account/users/invitations/{id}/revoke"), &[])
            .await;
        assert_eq!(revoked.status, 303);
        pages.push(structure(&y_client.get(revoked.location()).await, email));
        seen.push((email.to_owned(), pages));
    }
    let (first, second) = (&seen[0].1, &seen[1].1);
    for (i, (a, b)) in first.iter().zip(second.iter()).enumerate() {
        assert_eq!(a, b, "page {i} differs with the email's existence");
    }
    // Events in Y say nothing about the invitee being new or not.
    let metadata: Vec<String> =
        sqlx::query_scalar("SELECT metadata FROM events WHERE account_id = $1 AND event_type = 'invitation.create' ORDER BY created_at, id")
            .bind(&y)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(metadata.len(), 2);
    let _ = &y_boss;
    assert_eq!(
        metadata[0]
            .replace(&existing.email, "E")
            .split("invitation_id")
            .count(),
        metadata[1]
            .replace(fresh, "E")
            .split("invitation_id")
            .count()
    );
    // The superuser of Y still cannot see X's member through the owner filter.
    let filter = y_client
        .get(&format!(
            "/account/account-tokens?owner_email={}",
            urlencode(&existing.email)
        ))
        .await;
    filter.assert(200, "No member of this account has this email address.");
}

async fn decline_revoke_and_reissue(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    client.enter_sudo(&boss).await;
    let account = boss.account_id.clone();

    // Declined by whoever holds the link: it stops working.
    let link = client.invite_link("dora@example.test", "user").await;
    let dora = app.client();
    dora.get(&link).await.assert(200, "Decline the invitation");
    dora.post("/invitation/decline", &[("key", &key_of(&link))])
        .await
        .assert(200, "You declined the invitation");
    dora.get(&link)
        .await
        .assert(404, "This invitation link does not work");
    assert_eq!(app.count("invitations").await, 0);

    // Revoked by a superuser: the link stops working; the list no longer shows it.
    let link = client.invite_link("rex@example.test", "user").await;
    let id: String = sqlx::query_scalar("SELECT id FROM invitations")
        .fetch_one(app.pool())
        .await
        .unwrap();
    client
        .get("/account/users")
        .await
        .assert(200, "rex@example.test");
    let revoked = client
        .post(&format!("/account/users/invitations/{id}/revoke"), &[])
        .await;
    assert_eq!(revoked.location(), "/account/users?done=revoked");
    let list = client.get(revoked.location()).await;
    list.assert(200, "The invitation was revoked.");
    assert!(!list.body.contains("rex@example.test"));
    app.client()
        .get(&link)
        .await
        .assert(404, "This invitation link does not work");

    // Re-issued: a new link works, the old one does not; a re-posted form is spent.
    let old = client.invite_link("ria@example.test", "billing").await;
    let list = client.get("/account/users").await;
    let id: String = sqlx::query_scalar("SELECT id FROM invitations")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(list.body.contains(&format!("invitation-{id}")));
    let reissue = format!("/account/users/invitations/{id}/reissue");
    let fresh = client.post(&reissue, &[("issued", "1")]).await;
    fresh
        .assert(200, "Invitation link re-issued")
        .assert(200, "the old link no longer works");
    let new = invitation_link(&fresh.body).unwrap();
    assert_ne!(new, old);
    let stored: String = sqlx::query_scalar("SELECT secret_digest FROM invitations")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, digest(&key_of(&new)));
    let again = client.post(&reissue, &[("issued", "1")]).await;
    assert_eq!(again.status, 303, "a re-posted form shows no link");
    assert!(invitation_link(&again.body).is_none());
    app.client()
        .get(&old)
        .await
        .assert(404, "This invitation link does not work");
    let ria = app.client();
    let joined = ria
        .accept_as_new_user(&new, "Ria", "a long new password")
        .await;
    assert_eq!(joined.status, 303);
    // Re-issuing needs sudo mode; revoking a spent invitation finds nothing.
    let idle = app.client();
    idle.sign_in(&boss).await;
    let prompt = idle.post(&reissue, &[("issued", "2")]).await;
    assert!(prompt.location().starts_with("/account/sudo"));
    assert_eq!(
        client
            .post(&format!("/account/users/invitations/{id}/revoke"), &[])
            .await
            .status,
        404
    );
    let kinds = app.event_types().await;
    for (kind, n) in [
        ("invitation.create", 4),
        ("invitation.decline", 1),
        ("invitation.revoke", 1),
        ("invitation.accept", 1),
    ] {
        assert_eq!(kinds.iter().filter(|t| *t == kind).count(), n, "{kind}");
    }
    let ria_id: String =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'ria@example.test'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(
        app.role_in(&account, &ria_id).await.as_deref(),
        Some("billing")
    );
}

async fn a_signed_in_stranger_is_refused_without_naming_anyone(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    client.enter_sudo(&boss).await;
    let link = client.invite_link("zoe@example.test", "user").await;
    let (stranger, _) = app.signed_in(Role::User).await;
    for page in [
        stranger.get(&link).await,
        stranger
            .post("/invitation/accept", &[("key", &key_of(&link))])
            .await,
    ] {
        page.assert(403, "not for the user you are signed in as");
        assert!(!page.body.contains("zoe@example.test"));
        assert!(!page.body.contains("Acme"));
    }
    assert_eq!(app.count("invitations").await, 1, "still usable by zoe");
}

async fn engineers_are_invited_with_their_service_limits(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    client.enter_sudo(&boss).await;
    let account = boss.account_id.clone();
    let www = app.service(&account, "www").await;
    let api = app.service(&account, "api").await;
    let perm_www = format!("perm-{www}");
    let perm_api = format!("perm-{api}");
    client
        .invite("eng@example.test", "engineer", &[("limit", "some")])
        .await
        .assert(422, "Choose at least one service");
    let page = client
        .invite(
            "eng@example.test",
            "engineer",
            &[
                ("limit", "some"),
                (&perm_www, "purge_select"),
                (&perm_api, "read_only"),
            ],
        )
        .await;
    let link = invitation_link(&page.body).unwrap();
    // A service an invitation is limited to alone cannot be deleted; here two remain.
    let eng = app.client();
    assert_eq!(
        eng.accept_as_new_user(&link, "Eng", "a long new password")
            .await
            .status,
        303
    );
    let id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = 'eng@example.test'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    let mut limits = app.service_limits(&account, &id).await;
    limits.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (
            www.clone(),
            tokenpanel::testkit::ServicePermission::PurgeSelect,
        ),
        (
            api.clone(),
            tokenpanel::testkit::ServicePermission::ReadOnly,
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(limits, expected);
    // Limits apply to engineers only.
    let page = client
        .invite(
            "bill@example.test",
            "billing",
            &[("limit", "some"), (&perm_www, "full")],
        )
        .await;
    assert_eq!(page.status, 200);
    let only_www = client
        .invite(
            "solo@example.test",
            "engineer",
            &[("limit", "some"), (&perm_www, "full")],
        )
        .await;
    assert_eq!(only_www.status, 200);
    let services_of: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invitation_services")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(services_of, 1, "billing's choice was dropped; solo's kept");
    client
        .get(&format!("/account/services/{www}/delete"))
        .await
        .assert(200, "1 pending invitation is limited to this service alone");
}

async fn invitations_stay_in_their_account(app: TestApp) {
    let (client, boss) = app.signed_in(Role::Superuser).await;
    client.enter_sudo(&boss).await;
    let other = app.account("Other").await;
    let (their_client, _) = signed_in_with_sudo(&app, &other).await;
    their_client
        .invite_link("theirs@example.test", "user")
        .await;
    let id: String = sqlx::query_scalar("SELECT id FROM invitations")
        .fetch_one(app.pool())
        .await
        .unwrap();
    let list = client.get("/account/users").await;
    assert!(!list.body.contains("theirs@example.test"));
    client.get("/account/tokens").await;
    for path in [
        format!("/account/users/invitations/{id}/revoke"),
        format!("/account/users/invitations/{id}/reissue"),
    ] {
        let page = client.post(&path, &[("issued", "1")]).await;
        assert!(
            page.status == 404 || page.location() == "/account/users",
            "{path}: {}",
            page.status
        );
        assert!(invitation_link(&page.body).is_none());
    }
    assert_eq!(app.count("invitations").await, 1);
    // Other roles are refused the pages and the actions.
    for role in [Role::User, Role::Billing, Role::Engineer] {
        let member = app.member(&boss.account_id, role).await;
        let c = app.client();
        c.sign_in(&member).await;
        c.enter_sudo(&member).await;
        c.get("/account/users/new")
            .await
            .assert(403, "Ask a superuser");
        c.get("/account/tokens").await;
        assert_eq!(
            c.post(
                "/account/users/invitations",
                &[("email", "x@example.test"), ("role", "superuser")]
            )
            .await
            .status,
            403
        );
    }
    assert_eq!(app.count("invitations").await, 1);
}

async fn invitations_over_the_api(app: TestApp) {
    let boss = app.persona(Role::Superuser).await;
    let global = app.issue_token(TokenSpec::user(&boss)).await;
    let read = app
        .issue_token(TokenSpec::user(&boss).scope("global:read"))
        .await;
    let api = app.api();
    let body = serde_json::json!({
        "data": {"type": "invitation", "attributes": {"email": "Api@Example.test", "role": "engineer"}}
    });
    let created = api
        .post_json_api("/invitations", Some(&global.key), body.clone())
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("content-type"), "application/vnd.api+json");
    let json = created.json.clone();
    let id = json["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(json["data"]["type"], "invitation");
    assert_eq!(json["data"]["attributes"]["email"], "api@example.test");
    assert_eq!(json["data"]["attributes"]["role"], "engineer");
    assert_eq!(json["data"]["attributes"]["status_code"], 1);
    let url = json["meta"]["accept_url"].as_str().unwrap().to_owned();
    let path = &url[url.find("/invitation?key=").unwrap()..];
    assert_eq!(app.count("invitations").await, 1, "{}", created.text);
    app.client().get(path).await.assert(200, "Join Acme");
    let listed = api.get("/invitations", &global.key).await;
    assert_eq!(listed.status, 200);
    let list = listed.json.clone();
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(
        !listed.text.contains(&key_of(path)),
        "the link is shown once"
    );
    // global:read is not enough, even to list; nor is another role.
    assert_eq!(api.get("/invitations", &read.key).await.status, 403);
    let engineer = app.member(&boss.account_id, Role::Engineer).await;
    let eng_token = app.issue_token(TokenSpec::user(&engineer)).await;
    assert_eq!(api.get("/invitations", &eng_token.key).await.status, 403);
    assert_eq!(
        api.post_json("/invitations", Some(&eng_token.key), body.clone())
            .await
            .status,
        403
    );
    assert_eq!(
        api.delete(&format!("/invitations/{id}"), &read.key)
            .await
            .status,
        403
    );
    // Another account's superuser finds nothing.
    let stranger = app.persona(Role::Superuser).await;
    let theirs = app.issue_token(TokenSpec::user(&stranger)).await;
    assert_eq!(
        api.delete(&format!("/invitations/{id}"), &theirs.key)
            .await
            .status,
        404
    );
    assert_eq!(
        api.get("/invitations", &theirs.key).await.json["data"],
        serde_json::json!([])
    );
    let again = api
        .post_json_api("/invitations", Some(&global.key), body.clone())
        .await;
    assert_eq!(again.status, 409);
    let gone = api.delete(&format!("/invitations/{id}"), &global.key).await;
    assert_eq!(gone.status, 204);
    assert_eq!(app.count("invitations").await, 0);
    app.client()
        .get(path)
        .await
        .assert(404, "This invitation link does not work");
    let bad = api
        .post_json(
            "/invitations",
            Some(&global.key),
            serde_json::json!({"data": {"attributes": {"email": "nope"}}}),
        )
        .await;
    assert_eq!(bad.status, 422);
    let kinds = app.event_types().await;
    assert!(kinds.contains(&"invitation.create".to_owned()));
    assert!(kinds.contains(&"invitation.revoke".to_owned()));
}

//! Invitations: how people join an account. A superuser invites an email with a role
//! (and, for an engineer, service permissions) and hands the one-time link over out of
//! band; whoever opens it accepts (as a new user who sets a password, or by signing in
//! as the user who has that email) or declines. The link works once, within
//! `LINK_DAYS`; only its digest is stored.
//!
//! Nothing the inviting superuser is told depends on whether a user with the email
//! exists anywhere: inviting looks only at this account's members and invitations, and
//! no event written in the account says whether the invitee was a new user.

use super::membership::Acting;
use super::token_cache::{self, Change};
use super::Context;
use crate::db::event_store::{self, NewEvent};
use crate::db::invitation_store::{self, Invitation};
use crate::db::user_store::{self, User};
use crate::db::{account_store, is_unique_violation, member_store, throttle_store};
use crate::domain::event_type::EventType;
use crate::domain::ids::{AccountId, InvitationId, ServiceId, UserId};
use crate::domain::roles::{Role, ServicePermission};
use crate::domain::{random, secret};

/// How long an invitation link stays usable.
pub const LINK_DAYS: i64 = 7;
const LINK_SECONDS: i64 = LINK_DAYS * 86_400;

#[derive(Debug)]
pub enum InvitationError {
    /// The email is a member of this account already.
    AlreadyMember,
    /// The account has a pending invitation for this email already.
    AlreadyInvited,
    /// The link was used, revoked, replaced or has expired, or never existed; or the
    /// invitation is not (or no longer) the account's.
    Gone,
    /// Accepting as a new user, but a user with this email exists (made meanwhile).
    EmailTaken,
    /// Accepting while signed in as a user other than the invitee.
    WrongUser,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for InvitationError {
    fn from(e: sqlx::Error) -> Self {
        InvitationError::Database(e)
    }
}

/// A new link: the invitation, and the secret to put in the link (shown once).
pub struct Issued {
    pub invitation: Invitation,
    pub secret: String,
}

/// What a new invitation says.
pub struct NewInvitation<'a> {
    pub email: &'a str,
    pub role: Role,
    /// For an engineer: the services they will be limited to (empty: all services).
    /// Ignored for other roles.
    pub services: &'a [(ServiceId, ServicePermission)],
}

fn new_secret() -> String {
    random::base62(32)
}

/// Invites `new.email` into the acting superuser's account.
pub async fn invite(
    ctx: &Context,
    acting: Acting<'_>,
    new: &NewInvitation<'_>,
) -> Result<Issued, InvitationError> {
    let now = ctx.clock.unix();
    let id = InvitationId::generate();
    let secret = new_secret();
    let services: &[(ServiceId, ServicePermission)] = if new.role == Role::Engineer {
        new.services
    } else {
        &[]
    };
    let mut tx = ctx.db.begin().await?;
    if member_store::find_by_email(&mut *tx, acting.account_id, new.email)
        .await?
        .is_some()
    {
        return Err(InvitationError::AlreadyMember);
    }
    if let Err(e) = invitation_store::create(
        &mut *tx,
        acting.account_id,
        &id,
        new.email,
        new.role,
        acting.actor,
        &secret::digest(&secret),
        now,
        now + LINK_SECONDS,
    )
    .await
    {
        return Err(if is_unique_violation(&e) {
            InvitationError::AlreadyInvited
        } else {
            e.into()
        });
    }
    for (service_id, permission) in services {
        invitation_store::add_service(&mut *tx, &id, service_id, *permission).await?;
    }
    let limits: Vec<serde_json::Value> = services
        .iter()
        .map(|(s, p)| serde_json::json!({ "service_id": s, "permission": p.as_str() }))
        .collect();
    let event = acting
        .event(
            EventType::InvitationCreate,
            format!("Invited {} as {}", new.email, new.role.label()),
        )
        .metadata(serde_json::json!({
            "invitation_id": id,
            "email": new.email,
            "role": new.role.as_str(),
            "services": limits,
        }));
    event_store::record(&mut *tx, &event, now).await?;
    let invitation = invitation_store::find(&mut *tx, acting.account_id, &id)
        .await?
        .ok_or(InvitationError::Gone)?;
    tx.commit().await?;
    Ok(Issued { invitation, secret })
}

/// A new link for an invitation of the account, valid for another `LINK_DAYS`; the old
/// link stops working. `issued` is the count of links the superuser's form saw: when
/// the invitation has moved on (a reloaded page re-posting the form), nothing happens
/// and the answer is `Gone`.
pub async fn reissue(
    ctx: &Context,
    acting: Acting<'_>,
    id: &InvitationId,
    issued: i64,
) -> Result<Issued, InvitationError> {
    let now = ctx.clock.unix();
    let secret = new_secret();
    let mut tx = ctx.db.begin().await?;
    if !invitation_store::reissue(
        &mut *tx,
        acting.account_id,
        id,
        issued,
        &secret::digest(&secret),
        now + LINK_SECONDS,
    )
    .await?
    {
        return Err(InvitationError::Gone);
    }
    let invitation = invitation_store::find(&mut *tx, acting.account_id, id)
        .await?
        .ok_or(InvitationError::Gone)?;
    let event = acting
        .event(
            EventType::InvitationCreate,
            format!("Re-issued the invitation of {}", invitation.email),
        )
        .metadata(serde_json::json!({
            "invitation_id": id,
            "email": invitation.email,
            "role": invitation.role.as_str(),
            "reissued": true,
        }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(Issued { invitation, secret })
}

/// Revokes a pending invitation of the account: its link stops working.
pub async fn revoke(
    ctx: &Context,
    acting: Acting<'_>,
    id: &InvitationId,
) -> Result<(), InvitationError> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    let invitation = invitation_store::find(&mut *tx, acting.account_id, id)
        .await?
        .ok_or(InvitationError::Gone)?;
    if !invitation_store::delete(&mut *tx, acting.account_id, id).await? {
        return Err(InvitationError::Gone);
    }
    let event = acting
        .event(
            EventType::InvitationRevoke,
            format!("Revoked the invitation of {}", invitation.email),
        )
        .metadata(serde_json::json!({
            "invitation_id": id,
            "email": invitation.email,
            "role": invitation.role.as_str(),
        }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(())
}

/// An invitation as its link shows it to whoever opens it.
#[derive(Debug)]
pub struct Opened {
    pub invitation: Invitation,
    pub account_name: String,
    /// Whether a user has the invited email: they accept by signing in as that user.
    pub user_exists: bool,
}

/// Wrong invitation links one client address may present in a throttle window before
/// it is refused for the rest of the window. The links cannot be guessed; this keeps a
/// client from trying, and from making the server look them up without end.
pub const WRONG_LINKS_PER_ADDRESS: i64 = 30;

/// What presenting a link from an address gave.
#[derive(Debug)]
pub enum Opening {
    Opened(Box<Opened>),
    /// The link does not work (whatever the reason).
    Gone,
    /// Too many wrong links from this address: try again after this many seconds.
    Throttled(i64),
}

/// `open`, counted against the client address: each attempt takes a place first (so
/// concurrent attempts each count) and a link that works gives it back, so only wrong
/// links add up.
pub async fn open_from(ctx: &Context, link: &str, ip: &str) -> Result<Opening, sqlx::Error> {
    let (pool, now) = (&ctx.db.pool, ctx.clock.unix());
    let key = format!("invitation:ip:{ip}");
    let window = super::authentication::WINDOW_SECONDS;
    let (attempts, start) =
        throttle_store::reserve(pool, &key, now, window, WRONG_LINKS_PER_ADDRESS).await?;
    if attempts > WRONG_LINKS_PER_ADDRESS {
        return Ok(Opening::Throttled((start + window - now).max(1)));
    }
    match open(ctx, link).await? {
        Some(opened) => {
            throttle_store::release(pool, &key).await?;
            Ok(Opening::Opened(Box::new(opened)))
        }
        None => Ok(Opening::Gone),
    }
}

/// The invitation a link opens, while it is usable.
async fn open(ctx: &Context, link: &str) -> Result<Option<Opened>, sqlx::Error> {
    let pool = &ctx.db.pool;
    let Some(invitation) =
        invitation_store::find_current(pool, &secret::digest(link), ctx.clock.unix()).await?
    else {
        return Ok(None);
    };
    let Some(account) = account_store::find(pool, &invitation.account_id).await? else {
        return Ok(None);
    };
    let user_exists = user_store::find_by_email(pool, &invitation.email)
        .await?
        .is_some();
    Ok(Some(Opened {
        invitation,
        account_name: account.name,
        user_exists,
    }))
}

/// An invitation being accepted, with the service limits it carries (read before the
/// row, and with it its service rows, is deleted).
struct Spent {
    invitation: Invitation,
    services: Vec<(ServiceId, ServicePermission)>,
}

/// Spends the link inside `tx`: the invitation it opened, or `Gone`.
async fn spend(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    link: &str,
    now: i64,
) -> Result<Spent, InvitationError> {
    let digest = secret::digest(link);
    let invitation = invitation_store::find_current(&mut **tx, &digest, now)
        .await?
        .ok_or(InvitationError::Gone)?;
    let services = invitation_store::services(&mut **tx, &invitation.id).await?;
    // Deleting first makes two concurrent uses race for one row.
    match invitation_store::consume(&mut **tx, &digest, now).await? {
        Some(id) if id == invitation.id => Ok(Spent {
            invitation,
            services,
        }),
        _ => Err(InvitationError::Gone),
    }
}

/// Makes `user_id` a member as the invitation says, and records the acceptance.
async fn join(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    spent: &Spent,
    user_id: &UserId,
    ip: &str,
    now: i64,
) -> Result<(), InvitationError> {
    let (invitation, services) = (&spent.invitation, &spent.services);
    let account_id = &invitation.account_id;
    match member_store::add(&mut **tx, account_id, user_id, invitation.role, now).await {
        Err(e) if is_unique_violation(&e) => return Err(InvitationError::AlreadyMember),
        other => other?,
    }
    if invitation.role == Role::Engineer {
        for (service_id, permission) in services {
            member_store::set_service_permission(
                &mut **tx,
                account_id,
                user_id,
                service_id,
                *permission,
            )
            .await?;
        }
    }
    let event = NewEvent::new(
        EventType::InvitationAccept,
        format!(
            "{} accepted the invitation as {}",
            invitation.email,
            invitation.role.label()
        ),
    )
    .account(account_id)
    .actor(Some(user_id))
    .ip(Some(ip))
    .metadata(serde_json::json!({
        "invitation_id": invitation.id,
        "user_id": user_id,
        "email": invitation.email,
        "role": invitation.role.as_str(),
    }));
    event_store::record(&mut **tx, &event, now).await?;
    Ok(())
}

/// Accepts as a new user with this name and password (its argon2 hash): the new
/// user's id and the account they joined.
pub async fn accept_as_new_user(
    ctx: &Context,
    link: &str,
    name: &str,
    password_hash: &str,
    ip: &str,
) -> Result<(UserId, AccountId), InvitationError> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    let spent = spend(&mut tx, link, now).await?;
    let user_id = UserId::generate();
    match user_store::create(
        &mut *tx,
        &user_id,
        &spent.invitation.email,
        name,
        Some(password_hash),
        now,
    )
    .await
    {
        // Rolling back keeps the invitation: the person signs in and accepts instead.
        Err(e) if is_unique_violation(&e) => return Err(InvitationError::EmailTaken),
        other => other?,
    }
    join(&mut tx, &spent, &user_id, ip, now).await?;
    tx.commit().await?;
    Ok((user_id, spent.invitation.account_id))
}

/// Accepts as the signed-in `user`, who must have the invited email: the account they
/// joined. Already a member (added meanwhile): the link is spent all the same.
pub async fn accept_as_user(
    ctx: &Context,
    link: &str,
    user: &User,
    ip: &str,
) -> Result<AccountId, InvitationError> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    let spent = spend(&mut tx, link, now).await?;
    if spent.invitation.email != user.email {
        return Err(InvitationError::WrongUser);
    }
    let account_id = spent.invitation.account_id.clone();
    match join(&mut tx, &spent, &user.id, ip, now).await {
        Ok(()) => {}
        Err(InvitationError::AlreadyMember) => {
            // The failed insert aborted the transaction on PostgreSQL: spend the link
            // in a fresh one.
            tx.rollback().await?;
            let mut tx = ctx.db.begin().await?;
            spend(&mut tx, link, now).await?;
            tx.commit().await?;
            return Ok(account_id);
        }
        Err(e) => return Err(e),
    }
    // Tokens the user kept from an earlier membership work again.
    let member = Change::Member(account_id.clone(), user.id.clone());
    token_cache::commit(ctx, tx, &[member]).await?;
    Ok(account_id)
}

/// Declines: the link stops working. `actor` is the signed-in invitee, when they are.
pub async fn decline(
    ctx: &Context,
    link: &str,
    actor: Option<&UserId>,
    ip: &str,
) -> Result<(), InvitationError> {
    let now = ctx.clock.unix();
    let mut tx = ctx.db.begin().await?;
    let invitation = spend(&mut tx, link, now).await?.invitation;
    let event = NewEvent::new(
        EventType::InvitationDecline,
        format!("The invitation of {} was declined", invitation.email),
    )
    .account(&invitation.account_id)
    .actor(actor)
    .ip(Some(ip))
    .metadata(serde_json::json!({
        "invitation_id": invitation.id,
        "email": invitation.email,
        "role": invitation.role.as_str(),
    }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(())
}

//! Leaked-token revocation (`POST /tokens/revoke-leaked`), as secret scanners and
//! GitHub's credential-revocation API report them: every reported string with a valid
//! checksum that is a live token is revoked (through `token_lifecycle::revoke`, like
//! every revocation), kept as "Exposed" with the reported source, and announced to its
//! owner and the account's superusers (a notice on their next page view) and in the
//! event log (`token.exposed`). The reporter learns nothing: the API answers before
//! this runs, the same whatever was sent.

use std::collections::HashSet;

use super::token_lifecycle::{self, Revocation, RevokeError};
use super::Context;
use crate::db::event_store::{self, NewEvent};
use crate::db::exposure_store::{self, Found};
use crate::db::token_store::DeleteScope;
use crate::domain::event_type::EventType;
use crate::domain::secret::{self, TokenKind};

/// The most token strings one report may carry.
pub const MAX_TOKENS: usize = 1_000;
/// Reports one client address may send per window.
pub const REPORTS_PER_ADDRESS: i64 = 30;
pub const REPORT_WINDOW_SECONDS: i64 = 3_600;
/// Digests looked up per query.
const CHUNK: usize = 200;
/// The page exposed tokens are listed on.
pub const EXPOSED_PAGE: &str = "/account/tokens/exposed";

/// Whether a reported string is worth a lookup: our prefix and a valid checksum.
/// Legacy keys (no checksum) are never revoked this way.
fn checksummed(candidate: &str) -> bool {
    (candidate.starts_with("tpu_") || candidate.starts_with("tpa_"))
        && secret::check_shape(candidate).is_ok()
}

/// Counts a report against the client address; the seconds to wait when over the limit.
pub async fn reserve_report(ctx: &Context, ip: &str) -> Result<Option<i64>, sqlx::Error> {
    let now = ctx.clock.unix();
    let key = format!("revoke-leaked:ip:{ip}");
    let (reports, start) = crate::db::throttle_store::reserve(
        &ctx.db.pool,
        &key,
        now,
        REPORT_WINDOW_SECONDS,
        REPORTS_PER_ADDRESS,
    )
    .await?;
    Ok((reports > REPORTS_PER_ADDRESS).then(|| (start + REPORT_WINDOW_SECONDS - now).max(1)))
}

/// Revokes the live tokens among `candidates`; how many it revoked.
pub async fn revoke_reported(
    ctx: &Context,
    candidates: &[String],
    source_url: Option<&str>,
    ip: &str,
) -> Result<usize, sqlx::Error> {
    let mut seen = HashSet::new();
    let digests: Vec<String> = candidates
        .iter()
        .map(|c| c.trim())
        .filter(|c| checksummed(c))
        .map(secret::digest)
        .filter(|d| seen.insert(d.clone()))
        .collect();
    let mut revoked = 0;
    for chunk in digests.chunks(CHUNK) {
        for token in exposure_store::find_by_digests(&ctx.db.pool, chunk).await? {
            if revoke_one(ctx, &token, source_url, ip).await? {
                revoked += 1;
            }
        }
    }
    Ok(revoked)
}

async fn revoke_one(
    ctx: &Context,
    token: &Found,
    source_url: Option<&str>,
    ip: &str,
) -> Result<bool, sqlx::Error> {
    let revocation = Revocation {
        scope: DeleteScope {
            account_id: &token.account_id,
            owner: None,
            kind: None,
        },
        actor_id: None,
        via_token: None,
        reason: "exposed",
        ip: Some(ip),
    };
    match token_lifecycle::revoke(ctx, std::slice::from_ref(&token.id), &revocation).await {
        Ok(()) => {}
        // Revoked meanwhile by someone else: nothing to announce.
        Err(RevokeError::NotFound(_)) => return Ok(false),
        Err(RevokeError::Database(e)) => return Err(e),
    }
    let now = ctx.clock.unix();
    let source = source_url.map(|s| format!(" at {s}")).unwrap_or_default();
    let mut tx = ctx.db.begin().await?;
    exposure_store::record(&mut *tx, token, source_url, now).await?;
    let what = match (token.kind, &token.owner_name) {
        (TokenKind::Automation, _) => {
            format!("The automation token \u{201c}{}\u{201d}", token.name)
        }
        (TokenKind::User, Some(owner)) => {
            format!("{owner}\u{2019}s token \u{201c}{}\u{201d}", token.name)
        }
        (TokenKind::User, None) => format!("The token \u{201c}{}\u{201d}", token.name),
    };
    let told_owner = format!(
        "Your token \u{201c}{}\u{201d} was reported exposed{source} and has been revoked. Make a new one for whatever used it.",
        token.name
    );
    let told_superusers = format!("{what} was reported exposed{source} and has been revoked.");
    let mut told = Vec::new();
    if let Some(owner) = &token.user_id {
        exposure_store::add_notice(
            &mut *tx,
            &token.account_id,
            owner,
            &told_owner,
            Some(EXPOSED_PAGE),
            now,
        )
        .await?;
        told.push(owner.clone());
    }
    for superuser in exposure_store::superusers_of(&mut *tx, &token.account_id).await? {
        if told.contains(&superuser) {
            continue;
        }
        exposure_store::add_notice(
            &mut *tx,
            &token.account_id,
            &superuser,
            &told_superusers,
            Some(EXPOSED_PAGE),
            now,
        )
        .await?;
        told.push(superuser);
    }
    let event = NewEvent::new(
        EventType::TokenExposed,
        format!("{what} was reported exposed{source} and revoked"),
    )
    .account(&token.account_id)
    .token(&token.id)
    .ip(Some(ip))
    .metadata(serde_json::json!({
        "name": token.name,
        "kind": token.kind.as_str(),
        "owner": token.user_id,
        "source_url": source_url,
    }));
    event_store::record(&mut *tx, &event, now).await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secret::TokenSecret;

    #[test]
    fn only_checksummed_strings_are_looked_up() {
        let real = TokenSecret::generate(TokenKind::User);
        assert!(checksummed(real.expose()));
        assert!(checksummed(
            TokenSecret::generate(TokenKind::Automation).expose()
        ));
        let mut broken = real.expose().to_owned();
        broken.pop();
        broken.push(if real.expose().ends_with('a') {
            'b'
        } else {
            'a'
        });
        assert!(!checksummed(&broken));
        assert!(
            !checksummed("0123456789abcdef0123456789abcdef"),
            "legacy keys"
        );
        assert!(!checksummed(""));
    }
}

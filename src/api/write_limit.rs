//! Rate-limit headers and the hourly write budget on API write requests, as Fastly
//! sends them: `Fastly-RateLimit-Remaining` (writes left this hour) and
//! `Fastly-RateLimit-Reset` (when the budget is whole again, Unix seconds), 429 past
//! the budget. Reads are not limited.
//!
//! Who pays is only known once the `Caller` extractor has checked the token, so the
//! extractor charges the budget (refusing the request when it is spent) and notes it in
//! the request's notes, and the answer layer (`api::answer`) writes the headers on
//! whatever answer follows.

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::api_error::{ApiError, ApiResult};
use crate::domain::access::Principal;
use crate::http::{Notes, RequestNotes, WriteBudget};
use crate::ops::write_budget::{self, Spender};
use crate::ops::Context;

pub const REMAINING_HEADER: &str = "fastly-ratelimit-remaining";
pub const RESET_HEADER: &str = "fastly-ratelimit-reset";

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The headers, when the request was a charged write.
pub fn write(notes: &Notes, headers: &mut HeaderMap) {
    if let Some(budget) = notes.write_budget {
        for (name, value) in [
            (REMAINING_HEADER, budget.remaining),
            (RESET_HEADER, budget.reset_at),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
                headers.insert(name, value);
            }
        }
    }
}

/// Charges a write request of `principal` to its budget; refuses it with 429 when the
/// budget of this hour is spent. Reads cost nothing.
pub async fn charge(ctx: &Context, parts: &Parts, principal: &Principal) -> ApiResult<()> {
    if !is_write(&parts.method) {
        return Ok(());
    }
    let spender = match (&principal.user_id, &principal.token) {
        (Some(user), _) => Spender::User(user),
        (None, Some(token)) => Spender::Token(&token.id),
        (None, None) => return Ok(()),
    };
    let budget = write_budget::charge(ctx, spender).await?;
    RequestNotes::update(&parts.extensions, |n| {
        n.write_budget = Some(WriteBudget {
            remaining: budget.remaining(),
            reset_at: budget.reset_at,
        });
    });
    if budget.exceeded() {
        let wait = (budget.reset_at - ctx.clock.unix()).max(1);
        return Err(ApiError {
            retry_after: Some(wait),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "You have exceeded your hourly rate limit for API writes.",
            )
            .with_detail(format!(
                "{} write requests per hour; the budget is whole again at {}.",
                budget.limit,
                super::timestamp(budget.reset_at)
            ))
        });
    }
    Ok(())
}

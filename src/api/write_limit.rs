//! Rate-limit headers and the hourly write budget on API write requests, as Fastly
//! sends them: `Fastly-RateLimit-Remaining` (writes left this hour) and
//! `Fastly-RateLimit-Reset` (when the budget is whole again, Unix seconds), 429 past
//! the budget. Reads are not limited.
//!
//! Who pays is only known once the `Caller` extractor has checked the token, so the
//! middleware hands each write request an empty `WriteCharge` slot, the extractor
//! charges the budget and fills it (refusing the request when the budget is spent),
//! and the middleware writes the headers on whatever answer follows.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::api_error::{ApiError, ApiResult};
use crate::domain::access::Principal;
use crate::ops::write_budget::{self, Budget, Spender};
use crate::ops::Context;

pub const REMAINING_HEADER: &str = "fastly-ratelimit-remaining";
pub const RESET_HEADER: &str = "fastly-ratelimit-reset";

/// The budget a write request was charged to, once the extractor knows whose it is.
#[derive(Clone, Default)]
struct WriteCharge(Arc<Mutex<Option<Budget>>>);

impl WriteCharge {
    fn set(&self, budget: Budget) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(budget);
        }
    }

    fn get(&self) -> Option<Budget> {
        self.0.lock().ok().and_then(|slot| *slot)
    }
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Around the API's routes: gives write requests a slot and turns a charged budget into
/// the rate-limit headers.
pub async fn headers(mut request: Request, next: Next) -> Response {
    if !is_write(request.method()) {
        return next.run(request).await;
    }
    let charge = WriteCharge::default();
    request.extensions_mut().insert(charge.clone());
    let mut response = next.run(request).await;
    if let Some(budget) = charge.get() {
        let headers = response.headers_mut();
        for (name, value) in [
            (REMAINING_HEADER, budget.remaining()),
            (RESET_HEADER, budget.reset_at),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
                headers.insert(name, value);
            }
        }
    }
    response
}

/// Charges a write request of `principal` to its budget; refuses it with 429 when the
/// budget of this hour is spent. Reads (no slot) cost nothing.
pub async fn charge(ctx: &Context, parts: &Parts, principal: &Principal) -> ApiResult<()> {
    let Some(slot) = parts.extensions.get::<WriteCharge>() else {
        return Ok(());
    };
    let spender = match (&principal.user_id, &principal.token) {
        (Some(user), _) => Spender::User(user),
        (None, Some(token)) => Spender::Token(&token.id),
        (None, None) => return Ok(()),
    };
    let budget = write_budget::charge(ctx, spender).await?;
    slot.set(budget);
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

//! `POST /tokens/revoke-leaked`: no authentication, JSON `{"tokens": ["…"], "url": "…"}`
//! (at most 1,000 strings; `url`, the page they were found on, optional). The answer is
//! 202 with the same body whatever the strings were, sent before any of them is looked
//! up (the work runs after it, see `ops::leaked_tokens`), so neither the body nor the
//! time tells which were live. Only a malformed request (not that JSON shape, too many
//! strings) or too many reports from one address are answered otherwise.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::api_error::{ApiError, ApiResult};
use super::json;
use crate::http::ClientIp;
use crate::ops::leaked_tokens::{self, MAX_TOKENS};
use crate::state::AppState;

pub const ACCEPTED: &str =
    "Thank you. Every live token among those reported is being revoked, and its owner told.";
/// Longest source URL kept.
const MAX_URL: usize = 2_048;

/// The reported strings and source, or what is wrong with the request.
fn parse(body: &[u8]) -> ApiResult<(Vec<String>, Option<String>)> {
    let shape = || {
        ApiError::bad_request(
            "Send JSON: {\"tokens\": [\"…\"], \"url\": \"where they were found\"} (url optional).",
        )
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| shape())?;
    let Value::Array(list) = value.get("tokens").ok_or_else(shape)? else {
        return Err(shape());
    };
    if list.len() > MAX_TOKENS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("At most {MAX_TOKENS} tokens per request: send the rest in another."),
        ));
    }
    let tokens = list
        .iter()
        .map(|t| t.as_str().map(|s| s.chars().take(256).collect()))
        .collect::<Option<Vec<String>>>()
        .ok_or_else(shape)?;
    let url = match value.get("url") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) if url.len() <= MAX_URL => {
            Some(url.chars().filter(|c| !c.is_control()).collect())
        }
        Some(Value::String(_)) => {
            return Err(ApiError::bad_request(format!(
                "url is longer than {MAX_URL} characters."
            )))
        }
        Some(_) => return Err(shape()),
    };
    Ok((tokens, url))
}

pub async fn report(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> ApiResult<Response> {
    if let Some(wait) = leaked_tokens::reserve_report(&state, &ip).await? {
        return Err(ApiError::throttled(wait));
    }
    let (tokens, url) = parse(&body)?;
    tokio::spawn(async move {
        if let Err(e) = leaked_tokens::revoke_reported(&state, &tokens, url.as_deref(), &ip).await {
            tracing::warn!(error = %e, "could not revoke reported tokens");
        }
    });
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "msg": ACCEPTED }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_parsed_strictly() {
        let (tokens, url) =
            parse(br#"{"tokens": ["a", "b"], "url": "https://x.example/p"}"#).unwrap();
        assert_eq!(tokens, vec!["a", "b"]);
        assert_eq!(url.as_deref(), Some("https://x.example/p"));
        assert_eq!(parse(br#"{"tokens": []}"#).unwrap().1, None);
        for bad in [
            &b"not json"[..],
            br#"{"tokens": "a"}"#,
            br#"{"tokens": [1]}"#,
            br#"{"url": "x"}"#,
            br#"{"tokens": [], "url": 5}"#,
        ] {
            assert_eq!(parse(bad).unwrap_err().status, StatusCode::BAD_REQUEST);
        }
        let many = serde_json::json!({ "tokens": vec!["x"; MAX_TOKENS + 1] }).to_string();
        assert_eq!(
            parse(many.as_bytes()).unwrap_err().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let enough = serde_json::json!({ "tokens": vec!["x"; MAX_TOKENS] }).to_string();
        assert_eq!(parse(enough.as_bytes()).unwrap().0.len(), MAX_TOKENS);
    }
}

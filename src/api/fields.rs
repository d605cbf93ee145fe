//! Request bodies as Fastly's clients send them: form-encoded (`a=1&services[]=x`) or
//! JSON (flat, or JSON:API `{"data":{"attributes":{…}}}`). An empty body has no fields.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};

use super::api_error::ApiError;
use crate::http::Form;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, Default)]
pub struct Fields {
    values: Vec<(String, Value)>,
}

/// The media type of a request, without parameters, lower-cased.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
}

pub fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

fn scalar(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Fields {
    pub fn parse(media: Option<&str>, body: &[u8]) -> Result<Fields, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields::default());
        }
        match media {
            Some(m) if is_json(m) => Self::from_json(body),
            Some("application/x-www-form-urlencoded") | None => {
                let form = Form::parse(body).map_err(ApiError::bad_request)?;
                Ok(Fields {
                    values: form
                        .pairs()
                        .map(|(k, v)| (k.to_owned(), Value::Text(v.to_owned())))
                        .collect(),
                })
            }
            Some(other) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Send the body as application/json or application/x-www-form-urlencoded.",
            )
            .with_detail(format!("Content-Type {other} is not supported"))),
        }
    }

    fn from_json(body: &[u8]) -> Result<Fields, ApiError> {
        let invalid =
            |detail: String| ApiError::bad_request("Invalid JSON body").with_detail(detail);
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
        let serde_json::Value::Object(mut object) = value else {
            return Err(invalid("expected a JSON object".into()));
        };
        // JSON:API: {"data": {"attributes": {...}}}
        if let Some(serde_json::Value::Object(data)) = object.get("data") {
            if let Some(serde_json::Value::Object(attributes)) = data.get("attributes") {
                object = attributes.clone();
            }
        }
        let mut values = Vec::new();
        for (name, value) in object {
            match &value {
                serde_json::Value::Null => {}
                serde_json::Value::Array(items) => {
                    let list = items
                        .iter()
                        .map(scalar)
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| invalid(format!("{name}: expected a list of strings")))?;
                    values.push((name, Value::List(list)));
                }
                serde_json::Value::Object(_) => {
                    return Err(invalid(format!("{name}: unexpected object")));
                }
                other => {
                    if let Some(text) = scalar(other) {
                        values.push((name, Value::Text(text)));
                    }
                }
            }
        }
        Ok(Fields { values })
    }

    /// A single value (the first, when a form repeats the name).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values.iter().find_map(|(n, v)| match v {
            Value::Text(t) if n == name => Some(t.as_str()),
            _ => None,
        })
    }

    /// Every value under `name` or `name[]`: repeated form fields, a JSON list, or one
    /// value holding several separated by spaces or commas. None when absent.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        let bracketed = format!("{name}[]");
        let mut found = false;
        let mut out = Vec::new();
        for (n, v) in &self.values {
            if n != name && *n != bracketed {
                continue;
            }
            found = true;
            let items: Vec<&str> = match v {
                Value::Text(t) => vec![t.as_str()],
                Value::List(l) => l.iter().map(String::as_str).collect(),
            };
            for item in items {
                out.extend(
                    item.split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
            }
        }
        found.then_some(out)
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let media = media_type(request.headers());
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        Fields::parse(media.as_deref(), &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_json_read_alike() {
        let form = Fields::parse(
            Some("application/x-www-form-urlencoded"),
            b"name=ci&scope=purge_all+purge_select&services[]=a&services[]=b",
        )
        .unwrap();
        let json = Fields::parse(
            Some("application/json"),
            br#"{"name":"ci","scope":"purge_all purge_select","services":["a","b"],"x":null}"#,
        )
        .unwrap();
        for fields in [&form, &json] {
            assert_eq!(fields.text("name"), Some("ci"));
            assert_eq!(fields.text("scope"), Some("purge_all purge_select"));
            assert_eq!(fields.list("services"), Some(vec!["a".into(), "b".into()]));
            assert_eq!(fields.list("missing"), None);
        }
        assert_eq!(json.text("x"), None);
        let jsonapi = Fields::parse(
            Some("application/vnd.api+json"),
            br#"{"data":{"type":"automation_token","attributes":{"name":"ci","tls_access":true}}}"#,
        )
        .unwrap();
        assert_eq!(jsonapi.text("tls_access"), Some("true"));
    }

    #[test]
    fn empty_and_bad_bodies() {
        assert!(Fields::parse(Some("application/json"), b"")
            .unwrap()
            .values
            .is_empty());
        assert!(Fields::parse(None, b"  ").unwrap().values.is_empty());
        assert_eq!(
            Fields::parse(Some("application/json"), b"{nope")
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            Fields::parse(Some("application/json"), b"[1]")
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            Fields::parse(Some("text/plain"), b"x").unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            Fields::parse(Some("application/x-www-form-urlencoded"), b"a=%zz")
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn any_body_parses_or_is_refused_with_a_client_error() {
        let mut inputs = crate::domain::fuzz::Inputs::new(11);
        for _ in 0..20_000 {
            let body = inputs.bytes(24);
            for media in [
                Some("application/json"),
                Some("application/x-www-form-urlencoded"),
                None,
                Some("text/plain"),
            ] {
                match Fields::parse(media, &body) {
                    Ok(fields) => {
                        let _ = fields.list("services");
                        let _ = fields.text("name");
                    }
                    Err(e) => assert!(
                        e.status.is_client_error(),
                        "{media:?} {:?}: {}",
                        String::from_utf8_lossy(&body),
                        e.status
                    ),
                }
            }
        }
    }
}

//! Strict `application/x-www-form-urlencoded` parsing, for page forms, query strings and
//! API bodies. The pages' CSRF middleware parses a form body once and leaves the fields
//! in the request's extensions; page handlers take them with the `Form` extractor.
//! Repeated names (multi-selects, checkboxes) are kept in order.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use axum::http::StatusCode;

#[derive(Debug, Clone, Default)]
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Result<Form, String> {
        let text = std::str::from_utf8(body)
            .map_err(|_| "The form data is not valid UTF-8.".to_owned())?;
        let mut fields = Vec::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            fields.push((decode(name)?, decode(value)?));
        }
        Ok(Form { fields })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value, or the empty string when the field is absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every field, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let value = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| Some(hex(h[0])? * 16 + hex(h[1])?))
                    .ok_or_else(|| "The form data has a malformed %-escape.".to_owned())?;
                out.push(value);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "The form data is not valid UTF-8.".to_owned())
}

/// The form a page's CSRF check parsed. A request without one never reaches a handler
/// through the pages' router; elsewhere it is a 400.
impl<S: Send + Sync> FromRequestParts<S> for Form {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .remove::<Form>()
            .ok_or((StatusCode::BAD_REQUEST, "The request carried no form data."))
    }
}

impl Form {
    /// A query string, parsed like a form body.
    pub fn from_query(raw: Option<&str>) -> Result<Form, String> {
        Form::parse(raw.unwrap_or("").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeated_and_escaped_fields() {
        let form =
            Form::parse(b"name=a+b%21&scope=global&scope=global%3Aread&empty=&flag").unwrap();
        assert_eq!(form.get("name"), Some("a b!"));
        assert_eq!(form.all("scope"), vec!["global", "global:read"]);
        assert_eq!(form.get("empty"), Some(""));
        assert!(form.has("flag"));
        assert_eq!(form.text("missing"), "");
    }

    #[test]
    fn refuses_malformed_escapes_and_bad_utf8() {
        assert!(Form::parse(b"name=%zz").is_err());
        assert!(Form::parse(b"name=%4").is_err());
        assert!(Form::parse(b"name=%ff%fe").is_err());
        assert!(Form::parse(&[b'a', b'=', 0xff]).is_err());
    }

    #[test]
    fn any_bytes_parse_or_fail_cleanly_and_round_trip() {
        let mut inputs = crate::domain::fuzz::Inputs::new(7);
        let encode = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        for _ in 0..20_000 {
            let body = inputs.bytes(24);
            let Ok(form) = Form::parse(&body) else {
                continue;
            };
            // What was read is what an encoder would write for the same fields.
            let again: Vec<String> = form
                .pairs()
                .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
                .collect();
            let reread = Form::parse(again.join("&").as_bytes()).unwrap();
            assert!(
                reread.pairs().eq(form.pairs()),
                "{:?}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}

//! A client for the JSON API: no cookies, no redirects, the token in `Fastly-Key`.

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use super::app::Persona;

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// An API answer, its body read as JSON when it is JSON (else `Value::Null`).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// The error message (`{"msg": ...}`), or "".
    pub fn msg(&self) -> &str {
        self.json["msg"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// The status, the error message, and that errors are JSON.
    #[track_caller]
    pub fn expect_msg(&self, status: u16, msg: &str) -> &Self {
        self.expect(status);
        assert_eq!(self.msg(), msg, "body: {}", self.text);
        assert!(
            self.header("content-type").starts_with("application/json"),
            "errors are JSON"
        );
        self
    }
}

impl Api {
    pub(super) fn new(base: &str) -> Api {
        Api {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // Far beyond any answer of a healthy server: a hung request fails the test.
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
            base: base.to_owned(),
        }
    }

    /// A request to `path` (or to an absolute URL the server handed out), with `key` as
    /// `Fastly-Key` when given.
    pub fn request(&self, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        };
        let builder = self.http.request(method, url);
        match key {
            Some(key) => builder.header("Fastly-Key", key),
            None => builder,
        }
    }

    pub async fn send(&self, builder: RequestBuilder) -> Reply {
        let response = builder.send().await.expect("an API answer");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the answer");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    /// Like `send`, but None when no answer came (the server was killed meanwhile).
    pub async fn try_send(&self, builder: RequestBuilder) -> Option<Reply> {
        let response = builder.send().await.ok()?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.ok()?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Some(Reply {
            status,
            headers,
            text,
            json,
        })
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.send(self.request(Method::GET, path, Some(key))).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.send(self.request(Method::DELETE, path, Some(key)))
            .await
    }

    /// A POST without a body.
    pub async fn post(&self, path: &str, key: Option<&str>) -> Reply {
        self.send(self.request(Method::POST, path, key)).await
    }

    pub async fn post_form(&self, path: &str, key: Option<&str>, fields: &[(&str, &str)]) -> Reply {
        self.send(self.request(Method::POST, path, key).form(fields))
            .await
    }

    pub async fn post_json(&self, path: &str, key: Option<&str>, body: Value) -> Reply {
        self.send(self.request(Method::POST, path, key).json(&body))
            .await
    }

    /// A JSON:API body (`application/vnd.api+json`, as Fastly's clients send it).
    pub async fn post_json_api(&self, path: &str, key: Option<&str>, body: Value) -> Reply {
        self.send(
            self.request(Method::POST, path, key)
                .header("content-type", "application/vnd.api+json")
                .header("accept", "application/vnd.api+json")
                .body(body.to_string()),
        )
        .await
    }

    /// `host:port` of the server.
    pub fn authority(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Sends `request` exactly as given (request line, headers, body: what another
    /// client would put on the wire, byte for byte) on a fresh connection and reads one
    /// answer. The connection is kept alive, as clients keep it, so the answer is read
    /// by its `Content-Length` or chunks.
    pub async fn raw(&self, request: &[u8]) -> Reply {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(self.authority()).await?;
            stream.write_all(request).await?;
            let mut reader = BufReader::new(stream);
            let mut status_line = String::new();
            reader.read_line(&mut status_line).await?;
            let status: u16 = status_line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no status line: {status_line:?}"));
            let mut headers = reqwest::header::HeaderMap::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).await?;
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').expect("a header line");
                headers.append(
                    reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
                        .expect("a header name"),
                    reqwest::header::HeaderValue::from_str(value.trim()).expect("a header value"),
                );
            }
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let mut body = Vec::new();
            if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                loop {
                    let mut size = String::new();
                    reader.read_line(&mut size).await?;
                    let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
                    let mut chunk = vec![0; size + 2];
                    reader.read_exact(&mut chunk).await?;
                    if size == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..size]);
                }
            } else if let Some(length) = header("content-length") {
                body = vec![0; length.parse().expect("a length")];
                reader.read_exact(&mut body).await?;
            }
            std::io::Result::Ok((status, headers, body))
        };
        let (status, headers, body) = tokio::time::timeout(Duration::from_secs(60), exchange)
            .await
            .expect("an answer within a minute")
            .expect("an HTTP exchange");
        assert!(
            headers.get("content-encoding").is_none(),
            "the server compressed an answer"
        );
        let text = String::from_utf8(body).expect("a UTF-8 body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    /// `POST /sudo` with the owner's username and password: the token `key` is in sudo
    /// mode afterwards.
    pub async fn enter_sudo(&self, key: &str, owner: &Persona) {
        self.post_form(
            "/sudo",
            Some(key),
            &[("username", &owner.email), ("password", &owner.password)],
        )
        .await
        .expect(200);
    }
}

//! A browser-like client for the HTML pages: it keeps cookies, does not follow
//! redirects, and sends back the CSRF token of the last page it saw.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{redirect, Response, StatusCode};

use super::app::Persona;
use super::internals;

pub struct Client {
    http: reqwest::Client,
    /// The cookies the server set, readable by tests (`cookie_values`).
    jar: std::sync::Arc<reqwest::cookie::Jar>,
    base: String,
    csrf: std::sync::Mutex<Option<String>>,
}

/// A page as the client received it.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[track_caller]
    pub fn assert(&self, status: u16, contains: &str) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body:\n{}",
            self.body
        );
        assert!(
            self.body.contains(contains),
            "body lacks {contains:?}:\n{}",
            self.body
        );
        self
    }

    /// The session id this page's Set-Cookie gives the client, if it sets one.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                let rest = v.strip_prefix(&format!("{}=", internals::SESSION_COOKIE))?;
                Some(rest.split(';').next()?.to_owned())
            })
    }
}

/// The path and query of the invitation link shown on a page (`/invitation?key=…`).
pub fn invitation_link(html: &str) -> Option<String> {
    let start = html.find("/invitation?key=")?;
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The CSRF token of a page's forms.
pub fn csrf_in(html: &str) -> Option<String> {
    hidden(html, "csrf_token")
}

/// The value of the hidden input `name`.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Percent-encoding as an HTML form does it.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Client {
    pub(super) fn new(base: &str) -> Client {
        Client::with_agent(base, "tokenpanel-testkit")
    }

    pub(super) fn with_agent(base: &str, user_agent: &str) -> Client {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .user_agent(user_agent.to_owned())
            .redirect(redirect::Policy::none())
            // Far beyond any answer of a healthy server: a hung request fails the test.
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        Client {
            http,
            jar,
            base: base.to_owned(),
            csrf: std::sync::Mutex::new(None),
        }
    }

    /// The values of the cookies the client holds for the server (session id, CSRF
    /// cookie), for tests that look for them where they must not be.
    pub fn cookie_values(&self) -> Vec<String> {
        use reqwest::cookie::CookieStore;
        let Ok(url) = self.base.parse::<reqwest::Url>() else {
            return Vec::new();
        };
        let Some(header) = self.jar.cookies(&url) else {
            return Vec::new();
        };
        header
            .to_str()
            .unwrap_or("")
            .split(';')
            .filter_map(|pair| pair.split_once('=').map(|(_, v)| v.trim().to_owned()))
            .filter(|v| !v.is_empty())
            .collect()
    }

    async fn page(&self, response: Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("read the page");
        if let Some(token) = csrf_in(&body) {
            *self.csrf.lock().expect("the CSRF slot") = Some(token);
        }
        Page {
            status,
            headers,
            body,
        }
    }

    /// The underlying HTTP client (with this client's cookies), for hand-made requests.
    pub fn raw(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Page {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        self.page(response).await
    }

    /// A GET as htmx sends it (`HX-Request: true`).
    pub async fn get_htmx(&self, path: &str) -> Page {
        let response = self
            .http
            .get(self.url(path))
            .header("HX-Request", "true")
            .send()
            .await
            .expect("GET");
        self.page(response).await
    }

    /// The CSRF token of the last page seen.
    pub fn csrf(&self) -> Option<String> {
        self.csrf.lock().expect("the CSRF slot").clone()
    }

    /// Posts a form with the CSRF token of the last page seen.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts exactly these fields, no CSRF token added.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        self.page(response).await
    }

    /// Opens the sign-in page and posts the persona's email and password: the first
    /// (or only) step of signing in.
    pub async fn submit_password(&self, persona: &Persona) -> Page {
        self.get("/login").await;
        self.post(
            "/login",
            &[("email", &persona.email), ("password", &persona.password)],
        )
        .await
    }

    /// Signs in through the sign-in form (the persona has no second factor) and loads a
    /// signed-in page, so the new session's CSRF token is known.
    pub async fn sign_in(&self, persona: &Persona) -> Page {
        let page = self.submit_password(persona).await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "sign-in failed: {}",
            page.body
        );
        self.get("/account/tokens").await;
        page
    }

    /// Enters sudo mode through the re-authentication page, on the way to the create
    /// form.
    pub async fn enter_sudo(&self, persona: &Persona) {
        self.get("/account/sudo?next=/account/tokens/new").await;
        let page = self
            .post(
                "/account/sudo",
                &[
                    ("password", &persona.password),
                    ("next", "/account/tokens/new"),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
    }

    /// Enters sudo mode with the persona's password and a two-factor `code`.
    pub async fn enter_sudo_with_code(&self, persona: &Persona, code: &str) {
        self.get("/account/sudo?next=/account/security").await;
        let page = self
            .post(
                "/account/sudo",
                &[
                    ("password", &persona.password),
                    ("code", code),
                    ("next", "/account/security"),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
    }

    /// Opens the Invite user form (in sudo mode) and invites `email` as `role`, with
    /// these extra fields (an engineer's service limits); the answer as it came.
    pub async fn invite(&self, email: &str, role: &str, extra: &[(&str, &str)]) -> Page {
        let form = self.get("/account/users/new").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let mut fields = vec![("email", email), ("role", role)];
        fields.extend_from_slice(extra);
        self.post("/account/users/invitations", &fields).await
    }

    /// Invites `email` as `role` (in sudo mode) and returns the one-time link's path
    /// and query (`/invitation?key=…`).
    pub async fn invite_link(&self, email: &str, role: &str) -> String {
        let page = self.invite(email, role, &[]).await;
        page.assert(200, "One-time invitation link");
        invitation_link(&page.body).expect("the page shows the link")
    }

    /// Opens an invitation link and accepts as a new user with this name and password.
    pub async fn accept_as_new_user(&self, link: &str, name: &str, password: &str) -> Page {
        let page = self.get(link).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let key = hidden(&page.body, "key").expect("the link's key in the form");
        self.post(
            "/invitation/accept",
            &[
                ("key", &key),
                ("name", name),
                ("password", password),
                ("password_confirmation", password),
            ],
        )
        .await
    }

    /// Opens the create form (in sudo mode) and posts it with these fields.
    pub async fn create_token(&self, fields: &[(&str, &str)]) -> Page {
        let form = self.get("/account/tokens/new").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let nonce = hidden(&form.body, "nonce").expect("the form's nonce");
        let mut all = vec![("nonce", nonce.as_str())];
        all.extend_from_slice(fields);
        self.post("/account/tokens", &all).await
    }
}

//! The test harness: a real server on a random port with a fresh database, SQLite or
//! PostgreSQL, an injectable clock, and personas for each role.

use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::{redirect, Response, StatusCode};
use tokenpanel::app::{AppState, Server};
use tokenpanel::clock::{Clock, ShiftedClock};
use tokenpanel::config::Config;
use tokenpanel::db::{accounts, users};
use tokenpanel::domain::password::Password;
use tokenpanel::domain::random;
use tokenpanel::domain::roles::{Role, ScopeSet};
use tokenpanel::domain::secret::TokenKind;
use tokenpanel::tokens::{issue, IssueError, Issued, TokenRequest};
use tokio::sync::oneshot;

/// Runs each named `async fn(TestApp)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestApp::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::common::TestApp::postgres().await {
                        super::$name(app).await
                    }
                }
            )*
        }
    };
}

pub const TEST_SECRET_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub enum TestDb {
    Sqlite(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    fn url(&self) -> String {
        match self {
            TestDb::Sqlite(path) => format!("sqlite://{}", path.display()),
            TestDb::Postgres { admin_url, name } => replace_database(admin_url, name),
        }
    }
}

/// `postgres://user@host:port/db?x` with another database name.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map(|(b, q)| (b, format!("?{q}")))
        .unwrap_or((url, String::new()));
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..host_end])
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm", ".key"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            TestDb::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Best effort, on a thread of its own: Drop cannot await.
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async move {
                        sqlx::any::install_default_drivers();
                        if let Ok(pool) = sqlx::AnyPool::connect(&admin_url).await {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&pool)
                            .await;
                            pool.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

pub struct TestApp {
    pub addr: String,
    pub state: AppState,
    pub clock: Arc<ShiftedClock>,
    pub db_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _db: TestDb,
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        let path = std::env::temp_dir().join(format!("tokenpanel-test-{}.db", random::base62(12)));
        Self::start(TestDb::Sqlite(path)).await
    }

    /// None (with a printed line) when TEST_DATABASE_URL is unset outside CI; in CI a
    /// missing PostgreSQL fails the test.
    pub async fn postgres() -> Option<TestApp> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("TEST_DATABASE_URL must point at PostgreSQL in CI");
            }
            eprintln!("skipped on PostgreSQL: set TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres to run it");
            return None;
        };
        sqlx::any::install_default_drivers();
        let name = format!("tokenpanel_test_{}", random::base62(12).to_lowercase());
        let pool = sqlx::AnyPool::connect(&admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("create the test database");
        pool.close().await;
        Some(Self::start(TestDb::Postgres { admin_url, name }).await)
    }

    async fn start(db: TestDb) -> TestApp {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt().try_init();
        }
        let clock = Arc::new(ShiftedClock::default());
        let db_url = db.url();
        let mut app = Self::serve(&db_url, clock.clone()).await;
        app._db = db;
        app
    }

    async fn serve(db_url: &str, clock: Arc<ShiftedClock>) -> TestApp {
        let mut config = Config::for_database(db_url);
        if db_url.starts_with("postgres") {
            // PostgreSQL needs a configured server key (SQLite generates one beside the file).
            config.secret_key = Some(TEST_SECRET_KEY.to_owned());
        }
        Self::serve_with(config, clock).await
    }

    /// Another server on the same database with another server key: what someone
    /// holding only a copy of the database could run.
    pub async fn server_with_other_key(&self) -> TestApp {
        let mut config = Config::for_database(&self.db_url);
        config.secret_key = Some(tokenpanel::domain::crypto::SecretKey::generate().to_hex());
        Self::serve_with(config, self.clock.clone()).await
    }

    async fn serve_with(config: Config, clock: Arc<ShiftedClock>) -> TestApp {
        let db_url = config.database_url.clone();
        let db_url = db_url.as_str();
        let server = Server::build(&config, clock.clone())
            .await
            .expect("server starts");
        let addr = format!("127.0.0.1:{}", server.addr.port());
        let state = server.state.clone();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(async move {
            server
                .run(async {
                    let _ = rx.await;
                })
                .await
                .expect("server runs");
        });
        TestApp {
            addr,
            state,
            clock,
            db_url: db_url.to_owned(),
            shutdown: Some(tx),
            server: Some(handle),
            _db: TestDb::Sqlite(std::path::PathBuf::new()),
        }
    }

    /// Stops this server and starts another on the same database (a restart).
    pub async fn restart(mut self) -> TestApp {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            let _ = handle.await;
        }
        self.state.db.pool.close().await;
        let mut next = Self::serve(&self.db_url, self.clock.clone()).await;
        std::mem::swap(&mut next._db, &mut self._db);
        next
    }

    /// Another server on the same database and clock, as a second node behind a load
    /// balancer would be. Dropping it stops it; the database stays with `self`.
    pub async fn second_node(&self) -> TestApp {
        Self::serve(&self.db_url, self.clock.clone()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn client(&self) -> Client {
        Client::new(self)
    }

    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    pub async fn account(&self, name: &str) -> String {
        let id = random::id();
        accounts::create(&self.state.db.pool, &id, name, self.now())
            .await
            .unwrap();
        id
    }

    pub async fn service(&self, account_id: &str, name: &str) -> String {
        let id = random::id();
        accounts::create_service(&self.state.db.pool, &id, account_id, name, self.now())
            .await
            .unwrap();
        id
    }

    /// A user with `role` in `account_id`.
    pub async fn persona(&self, account_id: &str, role: Role) -> Persona {
        let id = random::id();
        let email = format!(
            "{}-{}@example.test",
            role.as_str(),
            random::base62(6).to_lowercase()
        );
        let password = format!("pw-{}", random::base62(16));
        let hash = self
            .state
            .passwords
            .hash(&Password::new(password.clone()))
            .await
            .unwrap();
        users::create(
            &self.state.db.pool,
            &id,
            &email,
            &format!("Test {}", role.label()),
            Some(&hash),
            self.now(),
        )
        .await
        .unwrap();
        accounts::add_member(&self.state.db.pool, account_id, &id, role, self.now())
            .await
            .unwrap();
        Persona {
            id,
            email,
            password,
            account_id: account_id.to_owned(),
        }
    }

    /// A client signed in as a fresh persona of `role` in a fresh account.
    pub async fn signed_in(&self, role: Role) -> (Client, Persona) {
        let account = self.account("Acme").await;
        let persona = self.persona(&account, role).await;
        let client = self.client();
        client.sign_in(&persona).await;
        (client, persona)
    }

    pub async fn event_types(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT event_type FROM events ORDER BY created_at, id")
            .fetch_all(&self.state.db.pool)
            .await
            .unwrap()
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.state.db.pool)
            .await
            .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Issues a `global` user token without expiry to `user` in `account`, for setting the
/// scene; `services` empty means all services. Takes the state, not the app, so that
/// spawned tasks can race it.
pub async fn issue_global_token(
    state: &AppState,
    account: &str,
    user: &str,
    name: &str,
    services: &[String],
) -> Result<Issued, IssueError> {
    let scopes = ScopeSet::parse("global").expect("a valid scope");
    let request = TokenRequest {
        kind: TokenKind::User,
        account_id: account,
        actor_id: user,
        name,
        scopes: &scopes,
        services,
        role: None,
        tls_access: false,
        expires_at: None,
        ip: None,
    };
    issue(state, &request).await
}

#[derive(Debug, Clone)]
pub struct Persona {
    pub id: String,
    pub email: String,
    pub password: String,
    pub account_id: String,
}

/// A browser-like client: keeps cookies, does not follow redirects, and knows the
/// CSRF token of the last page it saw.
pub struct Client {
    http: reqwest::Client,
    base: String,
    csrf: std::sync::Mutex<Option<String>>,
}

pub fn csrf_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The value of the hidden input `name`.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

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
}

impl Client {
    fn new(app: &TestApp) -> Client {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(redirect::Policy::none())
            .build()
            .unwrap();
        Client {
            http,
            base: format!("http://{}", app.addr),
            csrf: std::sync::Mutex::new(None),
        }
    }

    async fn page(&self, response: Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        if let Some(token) = csrf_in(&body) {
            *self.csrf.lock().unwrap() = Some(token);
        }
        Page {
            status,
            headers,
            body,
        }
    }

    pub fn raw(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Page {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        self.page(response).await
    }

    pub async fn get_htmx(&self, path: &str) -> Page {
        let response = self
            .http
            .get(self.url(path))
            .header("HX-Request", "true")
            .send()
            .await
            .unwrap();
        self.page(response).await
    }

    pub fn csrf(&self) -> Option<String> {
        self.csrf.lock().unwrap().clone()
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
            .unwrap();
        self.page(response).await
    }

    pub async fn sign_in(&self, persona: &Persona) -> Page {
        self.get("/login").await;
        let page = self
            .post(
                "/login",
                &[("email", &persona.email), ("password", &persona.password)],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "sign-in failed: {}",
            page.body
        );
        // Load a signed-in page so the CSRF token of the new session is known.
        self.get("/account/tokens").await;
        page
    }
}

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

/// The session id the client's jar would send, read from a Set-Cookie we captured.
pub fn session_cookie_from(page: &Page) -> Option<String> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let rest = v.strip_prefix(&format!("{}=", tokenpanel::web::SESSION_COOKIE))?;
            Some(rest.split(';').next()?.to_owned())
        })
}

//! A real server on a random port over a fresh database, and the scene-setting a test
//! does before it acts: accounts, services, personas, memberships, tokens.

use sqlx::AnyPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::api::Api;
use super::database::TestDb;
use super::internals::{
    self, ImportError, IssueError, Role, ServicePermission, State, TestClock, TokenKind, Viewer,
};
use super::pages::Client;

/// The server key of PostgreSQL test servers (SQLite ones generate theirs beside the
/// file), fixed so that a restart or a second node reads the same secrets.
pub const TEST_SECRET_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A user with a password and a role in an account.
#[derive(Debug, Clone)]
pub struct Persona {
    pub id: String,
    pub email: String,
    pub password: String,
    pub account_id: String,
}

/// What to issue: a user token for its owner, or an automation token made by a
/// superuser. By default a `global` user token named "test token", for all services,
/// never expiring.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub(super) kind: TokenKind,
    pub(super) account_id: String,
    pub(super) actor_id: String,
    pub(super) name: String,
    pub(super) scope: String,
    pub(super) services: Vec<String>,
    pub(super) role: Option<Role>,
    pub(super) tls_access: bool,
    pub(super) expires_at: Option<i64>,
    pub(super) description: Option<String>,
    pub(super) allowed_cidrs: Vec<String>,
}

impl TokenSpec {
    /// A user token of `owner`, in the owner's account.
    pub fn user(owner: &Persona) -> TokenSpec {
        TokenSpec {
            kind: TokenKind::User,
            account_id: owner.account_id.clone(),
            actor_id: owner.id.clone(),
            name: "test token".to_owned(),
            scope: "global".to_owned(),
            services: Vec::new(),
            role: None,
            tls_access: false,
            expires_at: None,
            description: None,
            allowed_cidrs: Vec::new(),
        }
    }

    /// An automation token with `role`, made by `creator` in the creator's account,
    /// named "robot".
    pub fn automation(creator: &Persona, role: Role) -> TokenSpec {
        TokenSpec {
            kind: TokenKind::Automation,
            name: "robot".to_owned(),
            role: Some(role),
            ..TokenSpec::user(creator)
        }
    }

    /// In another account the persona also belongs to.
    pub fn in_account(mut self, account: &str) -> TokenSpec {
        self.account_id = account.to_owned();
        self
    }

    pub fn named(mut self, name: &str) -> TokenSpec {
        self.name = name.to_owned();
        self
    }

    /// Space-separated scopes, as stored (`"purge_select global:read"`).
    pub fn scope(mut self, scope: &str) -> TokenSpec {
        self.scope = scope.to_owned();
        self
    }

    /// Limited to these services (none: all services).
    pub fn services(mut self, services: &[String]) -> TokenSpec {
        self.services = services.to_vec();
        self
    }

    pub fn expires_at(mut self, unix: i64) -> TokenSpec {
        self.expires_at = Some(unix);
        self
    }

    pub fn described(mut self, description: &str) -> TokenSpec {
        self.description = Some(description.to_owned());
        self
    }

    /// Usable only from these addresses or ranges.
    pub fn allowed_from(mut self, cidrs: &[&str]) -> TokenSpec {
        self.allowed_cidrs = cidrs.iter().map(|c| (*c).to_owned()).collect();
        self
    }
}

impl From<&Persona> for TokenSpec {
    fn from(owner: &Persona) -> TokenSpec {
        TokenSpec::user(owner)
    }
}

/// An event to record directly (`TestApp::record_event`), as the panel would have.
#[derive(Debug, Default, Clone)]
pub struct EventSpec<'a> {
    pub account_id: Option<&'a str>,
    /// e.g. `token.create`
    pub event_type: &'a str,
    pub description: &'a str,
    /// The user who acted; None for an automation token or the system.
    pub actor_id: Option<&'a str>,
    /// The token the event is about (or that acted).
    pub token_id: Option<&'a str>,
    pub service_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    /// Details, stored as JSON (`{}` when None).
    pub metadata: Option<serde_json::Value>,
}

/// A node's verified-token cache counters (`TestApp::token_cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCacheStats {
    pub hits: u64,
    pub loads: u64,
    pub flushes: u64,
    pub entries: usize,
}

/// An issued token: its id and the string that authenticates (shown once in the panel).
#[derive(Debug, Clone)]
pub struct Token {
    pub id: String,
    pub key: String,
}

/// Issues tokens from spawned tasks (to race each other or a request).
#[derive(Clone)]
pub struct Issuer(State);

impl Issuer {
    pub async fn issue(&self, spec: impl Into<TokenSpec>) -> Result<Token, IssueError> {
        let (id, key) = internals::issue(&self.0, &spec.into()).await?;
        Ok(Token { id, key })
    }
}

/// A server on a random port with its database, and an injectable clock.
pub struct TestApp {
    /// `127.0.0.1:port`
    pub addr: String,
    /// `127.0.0.1:port` of the metrics listener.
    pub metrics_addr: String,
    pub clock: TestClock,
    state: State,
    db_url: String,
    secret_key: Option<String>,
    trust_forwarded_for: bool,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// None for a second node or a thief's server: the database belongs to the first.
    db: Option<TestDb>,
}

impl TestApp {
    /// On a fresh SQLite file.
    pub async fn sqlite() -> TestApp {
        TestApp::start_on(TestDb::sqlite().await).await
    }

    /// On a fresh database of the PostgreSQL server in TEST_DATABASE_URL. None (with a
    /// printed line) when it is unset outside CI; under `CI=true` it must be set.
    pub async fn postgres() -> Option<TestApp> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("TEST_DATABASE_URL must point at PostgreSQL in CI");
            }
            eprintln!("skipped on PostgreSQL: set TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres to run it");
            return None;
        };
        Some(TestApp::start_on(TestDb::postgres(&admin_url).await).await)
    }

    /// On `db`, which the app removes when dropped (unless it is kept).
    pub async fn start_on(db: TestDb) -> TestApp {
        TestApp::start(db, false).await
    }

    /// On `db`, taking the client address from `X-Forwarded-For` as behind a proxy.
    pub async fn start_behind_proxy(db: TestDb) -> TestApp {
        TestApp::start(db, true).await
    }

    async fn start(db: TestDb, trust_forwarded_for: bool) -> TestApp {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt().try_init();
        }
        // PostgreSQL needs a configured server key (SQLite generates one beside the file).
        let secret_key = db.is_postgres().then(|| TEST_SECRET_KEY.to_owned());
        let db_url = db.url().to_owned();
        let mut app = TestApp::serve(
            &db_url,
            secret_key,
            trust_forwarded_for,
            TestClock::default(),
        )
        .await;
        app.db = Some(db);
        app
    }

    async fn serve(
        db_url: &str,
        secret_key: Option<String>,
        trust_forwarded_for: bool,
        clock: TestClock,
    ) -> TestApp {
        let config = internals::config(db_url, secret_key.clone(), trust_forwarded_for);
        let running = internals::start_server(&config, &clock).await;
        TestApp {
            addr: format!("127.0.0.1:{}", running.addr.port()),
            metrics_addr: running
                .metrics_addr
                .map(|a| a.to_string())
                .unwrap_or_default(),
            clock,
            state: running.state,
            db_url: db_url.to_owned(),
            secret_key,
            trust_forwarded_for,
            shutdown: Some(running.shutdown),
            server: Some(running.task),
            db: None,
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
        internals::pool(&self.state).close().await;
        let mut next = TestApp::serve(
            &self.db_url,
            self.secret_key.clone(),
            self.trust_forwarded_for,
            self.clock.clone(),
        )
        .await;
        next.db = self.db.take();
        next
    }

    /// Another server on the same database and clock, as a second node behind a load
    /// balancer would be. Dropping it stops it; the database stays with `self`.
    pub async fn second_node(&self) -> TestApp {
        TestApp::serve(
            &self.db_url,
            self.secret_key.clone(),
            self.trust_forwarded_for,
            self.clock.clone(),
        )
        .await
    }

    /// Another server on the same database and clock that takes the client address from
    /// `X-Forwarded-For`, as behind a proxy: requests can come "from" any address.
    pub async fn node_behind_proxy(&self) -> TestApp {
        TestApp::serve(
            &self.db_url,
            self.secret_key.clone(),
            true,
            self.clock.clone(),
        )
        .await
    }

    /// Another server on the same database with another server key: what someone
    /// holding only a copy of the database could run.
    pub async fn server_with_other_key(&self) -> TestApp {
        TestApp::serve(
            &self.db_url,
            Some(internals::generated_secret_key()),
            self.trust_forwarded_for,
            self.clock.clone(),
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The database URL and the server key (None: SQLite's key file) this server runs
    /// with, for running the `tokenpanel` binary against the same database.
    pub fn database(&self) -> (&str, Option<&str>) {
        (&self.db_url, self.secret_key.as_deref())
    }

    /// A browser-like client for the pages.
    pub fn client(&self) -> Client {
        Client::new(&self.url(""))
    }

    /// A browser-like client that sends this User-Agent.
    pub fn client_with_agent(&self, user_agent: &str) -> Client {
        Client::with_agent(&self.url(""), user_agent)
    }

    /// A client for the JSON API.
    pub fn api(&self) -> Api {
        Api::new(&self.url(""))
    }

    /// The Prometheus text of the metrics listener.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .expect("scrape /metrics")
            .text()
            .await
            .expect("read /metrics")
    }

    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// The database, for direct SQL in assertions and scene-setting.
    pub fn pool(&self) -> &AnyPool {
        internals::pool(&self.state)
    }

    pub fn is_postgres(&self) -> bool {
        internals::is_postgres(&self.state)
    }

    /// "sqlite" or "postgresql".
    pub fn backend_name(&self) -> &'static str {
        if self.is_postgres() {
            "postgresql"
        } else {
            "sqlite"
        }
    }

    /// Closes the server's database connections (the server keeps running).
    pub async fn close_database(&self) {
        self.pool().close().await;
    }

    pub async fn account(&self, name: &str) -> String {
        internals::create_account(&self.state, name).await
    }

    pub async fn service(&self, account: &str, name: &str) -> String {
        internals::create_service(&self.state, account, name).await
    }

    /// A user with `role` in an account of their own ("Acme") and a password.
    pub async fn persona(&self, role: Role) -> Persona {
        let account = self.account("Acme").await;
        self.member(&account, role).await
    }

    /// A user with `role` in `account` and a password of their own.
    pub async fn member(&self, account: &str, role: Role) -> Persona {
        let email = format!(
            "{}-{}@example.test",
            role.as_str(),
            internals::random_base62(6).to_lowercase()
        );
        let password = format!("pw-{}", internals::random_base62(16));
        self.persona_with_login(account, role, &email, &password)
            .await
    }

    /// A persona whose email and password the caller chooses.
    pub async fn persona_with_login(
        &self,
        account: &str,
        role: Role,
        email: &str,
        password: &str,
    ) -> Persona {
        let name = format!("Test {}", role.label());
        let id = internals::create_member(&self.state, account, email, &name, Some(password), role)
            .await;
        Persona {
            id,
            email: email.to_owned(),
            password: password.to_owned(),
            account_id: account.to_owned(),
        }
    }

    /// A client signed in as a fresh persona of `role` in a fresh account.
    pub async fn signed_in(&self, role: Role) -> (Client, Persona) {
        let persona = self.persona(role).await;
        let client = self.client();
        client.sign_in(&persona).await;
        (client, persona)
    }

    /// A member without a password (who cannot sign in); returns the user id.
    pub async fn member_without_password(
        &self,
        account: &str,
        email: &str,
        name: &str,
        role: Role,
    ) -> String {
        internals::create_member(&self.state, account, email, name, None, role).await
    }

    /// Many members without a password (who cannot sign in), in one transaction:
    /// (email, name, role) each.
    pub async fn members_without_password(
        &self,
        account: &str,
        members: &[(String, String, Role)],
    ) -> Vec<Persona> {
        let ids = internals::create_members(&self.state, account, members).await;
        ids.into_iter()
            .zip(members)
            .map(|(id, (email, _, _))| Persona {
                id,
                email: email.clone(),
                password: String::new(),
                account_id: account.to_owned(),
            })
            .collect()
    }

    /// Makes `persona` a member of another account too.
    pub async fn add_member(&self, account: &str, persona: &Persona, role: Role) {
        internals::add_member(&self.state, account, &persona.id, role).await;
    }

    /// Limits `persona` (an engineer) to `service` in their account, with `permission`.
    pub async fn limit_to(&self, persona: &Persona, service: &str, permission: ServicePermission) {
        internals::limit_to(
            &self.state,
            &persona.account_id,
            &persona.id,
            service,
            permission,
        )
        .await;
    }

    /// The services `user` is limited to in `account`, with the permission on each.
    pub async fn service_limits(
        &self,
        account: &str,
        user: &str,
    ) -> Vec<(String, ServicePermission)> {
        internals::service_limits(&self.state, account, user).await
    }

    /// Issues a token directly (no page, no grant checks), as if made earlier.
    pub async fn issue_token(&self, spec: impl Into<TokenSpec>) -> Token {
        self.try_issue_token(spec)
            .await
            .expect("the token is issued")
    }

    pub async fn try_issue_token(&self, spec: impl Into<TokenSpec>) -> Result<Token, IssueError> {
        self.issuer().issue(spec).await
    }

    pub fn issuer(&self) -> Issuer {
        Issuer(self.state.clone())
    }

    /// Turns two-factor authentication on for `persona` as enrolment would; returns the
    /// TOTP secret (base32) an authenticator app would hold.
    pub async fn enrol_two_factor(&self, persona: &Persona) -> String {
        internals::enrol_two_factor(&self.state, &persona.id).await
    }

    /// While no user exists, a one-time setup path; None afterwards.
    pub async fn setup_path(&self) -> Option<String> {
        internals::setup_path(&self.state).await
    }

    /// Sets the token policy of `superuser`'s account, as they would on Security.
    pub async fn set_token_policy(&self, superuser: &Persona, policy: &internals::TokenPolicy) {
        internals::set_token_policy(&self.state, &superuser.account_id, &superuser.id, policy).await
    }

    /// Runs the two-year sweep now; returns how many tokens it deleted.
    /// The housekeeping of rolled tokens: deletes those whose overlap is over.
    pub async fn sweep_rolled(&self) -> u64 {
        internals::sweep_rolled(&self.state).await
    }

    pub async fn sweep_unused(&self) -> u64 {
        internals::sweep_unused(&self.state).await
    }

    pub async fn import_legacy_key(&self, account: &str, key: &str) -> Result<String, ImportError> {
        internals::import_legacy_key(&self.state, account, key).await
    }

    /// Token uses the last-use recorder has written so far (one a token a flush).
    pub fn usage_writes(&self) -> u64 {
        internals::usage_writes(&self.state)
    }

    /// Writes a use at `at` of every token in the database, in transactions of
    /// `per_transaction`, as a flush writes them or (`one_a_statement`) one UPDATE a
    /// use; returns how many. For the token-use benchmark.
    pub async fn write_a_use_of_every_token(
        &self,
        at: i64,
        per_transaction: usize,
        one_a_statement: bool,
    ) -> usize {
        internals::write_a_use_of_every_token(&self.state, at, per_transaction, one_a_statement)
            .await
    }

    /// This node's verified-token cache: how many lookups it answered from memory, how
    /// many tokens it read from the database, how often it was emptied, and how many
    /// tokens it holds.
    pub fn token_cache(&self) -> TokenCacheStats {
        let (hits, loads, flushes, entries) = internals::token_cache_stats(&self.state);
        TokenCacheStats {
            hits,
            loads,
            flushes,
            entries,
        }
    }

    /// Waits (up to 5 seconds) until this node's token cache serves: on PostgreSQL, once
    /// its LISTEN connection is up.
    pub async fn token_cache_ready(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !internals::token_cache_live(&self.state) {
            assert!(
                std::time::Instant::now() < deadline,
                "the token cache never started listening"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Tells every node to forget every token it holds, as an operator does after
    /// editing the database by hand (`tokenpanel forget-cached-tokens`).
    pub async fn forget_cached_tokens(&self) {
        internals::forget_cached_tokens(&self.state).await;
    }

    /// Tells every node to forget what it holds of `user`'s tokens, as after an edit
    /// of the user made by hand.
    pub async fn announce_user_change(&self, user: &Persona) {
        internals::user_changed(&self.state, &user.id).await;
    }

    /// PostgreSQL: ends every token-cache LISTEN connection on this database, as a
    /// network failure would; the number ended.
    pub async fn kill_token_cache_listeners(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1 AND datname = current_database()",
        )
        .bind(internals::TOKEN_CACHE_LISTENER)
        .fetch_one(self.pool())
        .await
        .expect("end the LISTEN connections")
    }

    /// argon2 computations (password hashes and checks) this server has run so far.
    pub fn password_checks(&self) -> u64 {
        internals::password_checks(&self.state)
    }

    /// The ids of `account`'s events that the domain rule lets `viewer` see (what the
    /// event log must show).
    pub async fn visible_by_rule(
        &self,
        account: &str,
        role: Role,
        viewer: Viewer,
        limits: Option<Vec<String>>,
    ) -> Vec<String> {
        internals::visible_by_rule(&self.state, account, role, viewer, limits).await
    }

    /// Records `event` at Unix time `at`.
    pub async fn record_event(&self, event: &EventSpec<'_>, at: i64) {
        internals::record_event(&self.state, event, at).await;
    }

    /// Every event type recorded, oldest first.
    pub async fn event_types(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT event_type FROM events ORDER BY created_at, id")
            .fetch_all(self.pool())
            .await
            .expect("read the event types")
    }

    /// The names of the stored tokens, sorted.
    pub async fn token_names(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT name FROM tokens ORDER BY name")
            .fetch_all(self.pool())
            .await
            .expect("read the token names")
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.pool())
            .await
            .expect("count rows")
    }

    pub async fn token_exists(&self, id: &str) -> bool {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_one(self.pool())
            .await
            .expect("look for a token");
        n == 1
    }

    /// `user`'s role in `account` as stored, None when not a member.
    pub async fn role_in(&self, account: &str, user: &str) -> Option<String> {
        sqlx::query_scalar("SELECT role FROM memberships WHERE account_id = $1 AND user_id = $2")
            .bind(account)
            .bind(user)
            .fetch_optional(self.pool())
            .await
            .expect("read a membership")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

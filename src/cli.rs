//! The command line: `serve` (default), `migrate`, `create-superuser`, `reset-password`,
//! `sweep`, `backup`, `import-legacy-key`, `forget-cached-tokens` and `demo`.
//! Every failure ends the program with one clear line and a non-zero status.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::{self, Server, StartupError};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::user_store;
use crate::domain::ids::{AccountId, ServiceId};
use crate::domain::password::{Password, Passwords};
use crate::domain::roles::{Role, ScopeSet, ServicePermission};
use crate::domain::secret::TokenKind;
use crate::domain::{random, validate};
use crate::ops::membership::{self, Acting};
use crate::ops::token_cache;
use crate::ops::token_lifecycle::{self, TokenRequest};
use crate::ops::{account_security, first_run, service_catalog};
use crate::state::AppState;
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(name = "tokenpanel", version, about = "A control panel for API tokens")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web panel and API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create a superuser. The password is read from TOKENPANEL_PASSWORD or, when that
    /// is unset, from the first line of standard input.
    CreateSuperuser {
        /// Account name; created when no account has it.
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Set the password of a user who is locked out, and end every session of theirs.
    /// The password is read from TOKENPANEL_PASSWORD or, when that is unset, from the
    /// first line of standard input.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
    /// Delete tokens unused for two years (the server also does this hourly).
    Sweep,
    /// Import a legacy API key, read from standard input, as a global token of the
    /// account's synthetic "Global API Token" user.
    ImportLegacyKey {
        /// The id of the account the key belongs to.
        #[arg(long)]
        account: String,
    },
    /// Write a consistent copy of the SQLite database to PATH while the server runs
    /// (`VACUUM INTO`). For PostgreSQL use `pg_dump` (README, Backups).
    Backup {
        /// Where the copy goes; must not exist yet.
        path: std::path::PathBuf,
    },
    /// Make every running server re-read every token from the database, after an edit
    /// made by hand (servers re-read them within 30 seconds anyway).
    ForgetCachedTokens,
    /// Seed a demo account with one user per role, services and tokens; prints the logins.
    Demo {
        /// Seed even though the database already has users.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    // Held to the end: dropping it writes the log lines still queued.
    let _log = match telemetry::logging::init(&cli.config.log_level, cli.config.log_format) {
        Ok(guard) => guard,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config).await,
        Command::Migrate => app::open_database(&cli.config)
            .await
            .map(|_| println!("Migrations applied.")),
        Command::CreateSuperuser {
            account,
            email,
            name,
        } => create_superuser(&cli.config, &account, &email, &name).await,
        Command::ResetPassword { email } => reset_password(&cli.config, &email).await,
        Command::Demo { force } => demo(&cli.config, force).await,
        Command::Sweep => sweep(&cli.config).await,
        Command::Backup { path } => backup(&cli.config, &path).await,
        Command::ImportLegacyKey { account } => import_legacy_key(&cli.config, &account).await,
        Command::ForgetCachedTokens => forget_cached_tokens(&cli.config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: &Config) -> Result<(), StartupError> {
    let server = Server::build(config, Arc::new(SystemClock)).await?;
    let addr = server.addr;
    tracing::info!(%addr, backend = ?server.state.db.backend, "tokenpanel listening");
    println!("tokenpanel is listening on http://{addr}");
    if let Some(metrics) = server.metrics_addr {
        tracing::info!(%metrics, "metrics listening");
        println!("Metrics are served on http://{metrics}/metrics");
    }
    if let Some(path) = first_run::setup_path(&server.state)
        .await
        .map_err(|e| StartupError(e.to_string()))?
    {
        println!("No user exists yet. Open this one-time setup URL to create the account and its first superuser:");
        println!("  http://{addr}{path}");
    }
    server
        .run(shutdown_signal())
        .await
        .map_err(|e| StartupError(format!("server error: {e}")))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Prints a line, ignoring a closed standard output (e.g. piped into `head`).
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn read_password() -> Result<String, StartupError> {
    if let Ok(password) = std::env::var("TOKENPANEL_PASSWORD") {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| StartupError(format!("cannot read the password from standard input: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn create_superuser(
    config: &Config,
    account: &str,
    email: &str,
    name: &str,
) -> Result<(), StartupError> {
    let account_name = validate::name(account, "Account").map_err(StartupError)?;
    let name = validate::name(name, "Name").map_err(StartupError)?;
    let email = validate::email(email).map_err(StartupError)?;
    let password = read_password()?;
    validate::new_password(&password, &password)
        .map_err(|e| StartupError(format!("password: {e}")))?;
    let db = app::open_database(config).await?;
    let passwords = Passwords::new(1, 1).map_err(|e| StartupError(e.to_string()))?;
    let hash = passwords
        .hash(&Password::new(password))
        .await
        .map_err(|e| StartupError(e.to_string()))?;
    let now = SystemClock.unix();
    let taken = || StartupError(format!("a user with the email {email} already exists"));
    if user_store::find_by_email(&db.pool, &email)
        .await
        .map_err(database)?
        .is_some()
    {
        return Err(taken());
    }
    let account_id = first_run::account_named(&db, &account_name, now)
        .await
        .map_err(database)?;
    membership::create_member(
        &db,
        &account_id,
        &email,
        &name,
        Some(&hash),
        Role::Superuser,
        now,
    )
    .await
    .map_err(database)?
    .ok_or_else(taken)?;
    println!("Created superuser {email} in account {account_name:?}.");
    Ok(())
}

async fn reset_password(config: &Config, email: &str) -> Result<(), StartupError> {
    let email = validate::email(email).map_err(StartupError)?;
    let password = read_password()?;
    validate::new_password(&password, &password)
        .map_err(|e| StartupError(format!("password: {e}")))?;
    let state = command_state(config).await?;
    let hash = state
        .passwords
        .hash(&Password::new(password))
        .await
        .map_err(|e| StartupError(e.to_string()))?;
    if !account_security::reset_password(&state, &email, &hash)
        .await
        .map_err(database)?
    {
        return Err(StartupError(format!("no user has the email {email}")));
    }
    println!("Set a new password for {email} and ended their sessions.");
    Ok(())
}

async fn forget_cached_tokens(config: &Config) -> Result<(), StartupError> {
    let state = command_state(config).await?;
    token_cache::announce(&state, &[token_cache::Change::Everything])
        .await
        .map_err(database)?;
    println!("Every running server reads tokens from the database again.");
    Ok(())
}

fn database(e: sqlx::Error) -> StartupError {
    StartupError(format!("database: {e}"))
}

/// The state a one-shot command works with.
async fn command_state(config: &Config) -> Result<AppState, StartupError> {
    let secret_key = app::load_secret_key(config)?;
    let db = app::open_database(config).await?;
    AppState::new(config, db, Arc::new(SystemClock), secret_key, false).map_err(StartupError)
}

async fn sweep(config: &Config) -> Result<(), StartupError> {
    let state = command_state(config).await?;
    let deleted = token_lifecycle::sweep_unused(&state)
        .await
        .map_err(database)?;
    println!("Deleted {deleted} token(s) unused for two years.");
    let rolled = token_lifecycle::sweep_rolled(&state)
        .await
        .map_err(database)?;
    if rolled > 0 {
        println!("Deleted {rolled} rolled token(s) whose overlap had ended.");
    }
    Ok(())
}

async fn backup(config: &Config, path: &std::path::Path) -> Result<(), StartupError> {
    if config.sqlite_path().is_none() {
        return Err(StartupError(
            "backup copies SQLite databases; for PostgreSQL use pg_dump (see the README's Backups section)".into(),
        ));
    }
    if path.exists() {
        return Err(StartupError(format!(
            "{} already exists; choose a new file for the backup",
            path.display()
        )));
    }
    let target = path
        .to_str()
        .ok_or_else(|| StartupError("the backup path must be valid UTF-8".into()))?;
    let db = app::open_database(config).await?;
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(&db.pool)
        .await
        .map_err(|e| StartupError(format!("cannot write the backup to {target}: {e}")))?;
    db.pool.close().await;
    println!("Wrote a copy of the database to {target}.");
    let key_file = config.key_file().filter(|_| config.secret_key.is_none());
    if let Some(key) = key_file.filter(|key| key.exists()) {
        println!(
            "Keep the server key {} safe too, apart from the copy: without it the two-factor secrets in the copy cannot be read.",
            key.display()
        );
    }
    Ok(())
}

async fn import_legacy_key(config: &Config, account: &str) -> Result<(), StartupError> {
    let mut key = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut key)
        .map_err(|e| StartupError(format!("cannot read the key from standard input: {e}")))?;
    let state = command_state(config).await?;
    let token_id = token_lifecycle::import_legacy_key(
        &state,
        &AccountId::from_raw(account),
        key.trim_end_matches(['\r', '\n']),
    )
    .await
    .map_err(|e| StartupError(e.to_string()))?;
    println!("Imported the legacy API key as token {token_id} of the user \"Global API Token\".");
    Ok(())
}

async fn demo(config: &Config, force: bool) -> Result<(), StartupError> {
    let state = command_state(config).await?;
    if !force && user_store::count(&state.db.pool).await.map_err(database)? > 0 {
        return Err(StartupError(
            "the database already has users; run `demo --force` to add the demo account anyway"
                .into(),
        ));
    }
    let now = state.clock.unix();
    let suffix = random::base62(4).to_lowercase();
    let account_name = format!("Demo account {suffix}");
    let account_id = first_run::create_account(&state.db, &account_name, now)
        .await
        .map_err(database)?;
    let mut logins = Vec::new();
    for role in [Role::Superuser, Role::Engineer, Role::User, Role::Billing] {
        let email = format!("{}-{suffix}@demo.example", role.as_str());
        let password = random::base62(16);
        let hash = state
            .passwords
            .hash(&Password::new(password.clone()))
            .await
            .map_err(|e| StartupError(e.to_string()))?;
        let user_id = membership::create_member(
            &state.db,
            &account_id,
            &email,
            &format!("Demo {}", role.label()),
            Some(&hash),
            role,
            now,
        )
        .await
        .map_err(database)?
        .ok_or_else(|| StartupError(format!("a user with the email {email} already exists")))?;
        logins.push((role, user_id, email, password));
    }
    // The superuser sets the account up, as they would in the panel.
    let boss = &logins[0].1;
    let acting = Acting {
        account_id: &account_id,
        actor: boss,
        ip: "127.0.0.1",
    };
    let mut services: Vec<ServiceId> = Vec::new();
    for service in ["www.example.com", "api.example.com", "static.example.com"] {
        let id = service_catalog::create(&state, &account_id, boss, service, acting.ip)
            .await
            .map_err(|e| StartupError(format!("cannot create a demo service: {e:?}")))?;
        services.push(id);
    }
    say(&format!("Demo account \"{account_name}\" (id {account_id}) with services www, api and static.example.com."));
    say("Logins:");
    for (role, user_id, email, password) in &logins {
        if *role == Role::Engineer {
            let limits = [
                (services[0].clone(), ServicePermission::Full),
                (services[1].clone(), ServicePermission::PurgeSelect),
            ];
            membership::set_service_access(&state, acting, user_id, &limits)
                .await
                .map_err(|e| StartupError(format!("cannot limit the demo engineer: {e:?}")))?;
        }
        let scopes = ScopeSet::parse(if *role == Role::Engineer {
            "global purge_select"
        } else {
            "global:read"
        })
        .map_err(StartupError)?;
        let token_services: Vec<ServiceId> = if *role == Role::Engineer {
            vec![services[0].clone()]
        } else {
            Vec::new()
        };
        let request = TokenRequest {
            kind: TokenKind::User,
            account_id: &account_id,
            actor_id: user_id,
            name: "Demo token",
            scopes: &scopes,
            services: &token_services,
            role: None,
            tls_access: false,
            expires_at: Some(now + 90 * 86_400),
            description: None,
            allowed_cidrs: None,
            rolled: None,
            ip: None,
        };
        token_lifecycle::issue(&state, &request)
            .await
            .map_err(|e| StartupError(format!("cannot create a demo token: {e:?}")))?;
        say(&format!(
            "  {:<10} {email:<40} password: {password}",
            role.as_str()
        ));
    }
    Ok(())
}

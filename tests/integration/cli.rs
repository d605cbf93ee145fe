//! The `tokenpanel` binary: subcommands, and one clear line for every bad setting.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use tokenpanel::testkit::random_base62;

fn tokenpanel(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokenpanel"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("BIND")
        .env_remove("TOKENPANEL_PASSWORD")
        .env_remove("SECRET_KEY")
        .env_remove("METRICS_BIND")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails with exactly one line on standard error, starting with "error:".
#[track_caller]
fn assert_one_clear_line(output: &Output, contains: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line, no backtrace: {stderr}"
    );
    assert!(
        stderr.starts_with("error: ") && stderr.contains(contains),
        "{stderr}"
    );
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tokenpanel-cli-{}", random_base62(10)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn bad_settings_stop_with_one_clear_line() {
    let dir = temp_dir();
    assert_one_clear_line(
        &tokenpanel(&dir, &["migrate"], &[("DATABASE_URL", "mysql://x")], ""),
        "DATABASE_URL must start with",
    );
    assert_one_clear_line(
        &tokenpanel(&dir, &["--bind", "nonsense"], &[], ""),
        "BIND must be an address",
    );
    assert_one_clear_line(
        &tokenpanel(
            &dir,
            &["migrate"],
            &[("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")],
            "",
        ),
        "cannot connect to the database",
    );
    assert_one_clear_line(
        &tokenpanel(
            &dir,
            &["sweep"],
            &[("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x")],
            "",
        ),
        "SECRET_KEY is required with PostgreSQL",
    );
    assert_one_clear_line(
        &tokenpanel(&dir, &["sweep", "--secret-key", "abc"], &[], ""),
        "SECRET_KEY must be 64 hexadecimal",
    );
    assert_one_clear_line(
        &tokenpanel(&dir, &["migrate", "--log-level", "=="], &[], ""),
        "LOG_LEVEL",
    );
    // A port already in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    assert_one_clear_line(
        &tokenpanel(&dir, &["serve", "--bind", &bind], &[], ""),
        "cannot listen on",
    );
    assert_one_clear_line(
        &tokenpanel(
            &dir,
            &["serve", "--bind", "127.0.0.1:0"],
            &[("METRICS_BIND", &bind)],
            "",
        ),
        "(METRICS_BIND)",
    );
    assert_one_clear_line(
        &tokenpanel(&dir, &["serve"], &[("METRICS_BIND", "nine")], ""),
        "METRICS_BIND must be an address",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn migrate_create_superuser_demo_and_legacy_import() {
    let dir = temp_dir();
    let migrate = tokenpanel(&dir, &["migrate"], &[], "");
    assert!(migrate.status.success(), "{}", text(&migrate.stderr));
    assert!(
        dir.join("tokenpanel.db").exists(),
        "the default SQLite file is created"
    );

    let args = [
        "create-superuser",
        "--account",
        "Acme",
        "--email",
        "Ada@Example.com",
        "--name",
        "Ada",
    ];
    let short = tokenpanel(&dir, &args, &[], "short\n");
    assert_one_clear_line(&short, "password");
    let created = tokenpanel(&dir, &args, &[], "correct horse battery\n");
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(text(&created.stdout).contains("Created superuser ada@example.com"));
    assert_one_clear_line(
        &tokenpanel(
            &dir,
            &args,
            &[("TOKENPANEL_PASSWORD", "correct horse battery")],
            "",
        ),
        "already exists",
    );

    assert_one_clear_line(&tokenpanel(&dir, &["demo"], &[], ""), "already has users");
    let demo = tokenpanel(&dir, &["demo", "--force"], &[], "");
    assert!(demo.status.success(), "{}", text(&demo.stderr));
    let out = text(&demo.stdout);
    for role in ["superuser", "engineer", "user", "billing"] {
        assert!(out.contains(&format!("  {role} ")), "{out}");
    }

    assert_one_clear_line(
        &tokenpanel(
            &dir,
            &["import-legacy-key", "--account", "nope"],
            &[],
            "0123456789abcdef0123\n",
        ),
        "no account",
    );
    let sweep = tokenpanel(&dir, &["sweep"], &[], "");
    assert!(text(&sweep.stdout).contains("Deleted 0 token(s)"));
    assert!(
        dir.join("tokenpanel.db.key").exists(),
        "the server key is generated beside the database"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `tokenpanel` serving a fresh SQLite database in `dir` on a free port, and the first
/// line of its standard output (a pipe) that `wanted` picks, within 30 seconds.
async fn serve_until(
    dir: &std::path::Path,
    log_level: &str,
    wanted: impl Fn(&str) -> bool,
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokenpanel"))
        .args(["--bind", "127.0.0.1:0", "--log-level", log_level])
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("SECRET_KEY")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if wanted(&line) {
                return line;
            }
        }
        panic!("the server printed no such line");
    })
    .await
    .unwrap();
    (child, line)
}

#[tokio::test]
async fn serve_on_a_fresh_directory_prints_a_working_setup_url() {
    let dir = temp_dir();
    let (mut child, line) = serve_until(&dir, "warn", |line| {
        line.contains("http://") && line.contains("/setup?key=")
    })
    .await;
    let url = line[line.find("http://").unwrap()..].trim().to_owned();
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Set up tokenpanel"));
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Logs written to a pipe or a file carry no terminal colour codes.
#[tokio::test]
async fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = temp_dir();
    // The info line the server logs once it listens (not the plain println).
    let (mut child, logged) = serve_until(&dir, "info", |line| {
        line.contains("INFO") && line.contains("listening")
    })
    .await;
    assert!(!logged.contains('\u{1b}'), "colour codes in {logged:?}");
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn backup_copies_sqlite_and_points_postgresql_at_pg_dump() {
    let dir = temp_dir();
    let args = [
        "create-superuser",
        "--account",
        "Acme",
        "--email",
        "ada@example.com",
        "--name",
        "Ada",
    ];
    let created = tokenpanel(&dir, &args, &[], "correct horse battery\n");
    assert!(created.status.success(), "{}", text(&created.stderr));
    // Any command with the server key writes the key file beside the database.
    assert!(tokenpanel(&dir, &["sweep"], &[], "").status.success());
    let copy = dir.join("copy of it.db");
    let path = copy.to_str().unwrap();
    let backup = tokenpanel(&dir, &["backup", path], &[], "");
    assert!(backup.status.success(), "{}", text(&backup.stderr));
    assert!(
        text(&backup.stdout).contains("tokenpanel.db.key"),
        "the key is mentioned"
    );
    // The copy holds the user: creating them again there is refused.
    std::fs::copy(dir.join("tokenpanel.db.key"), dir.join("copy of it.db.key")).unwrap();
    let url = format!("sqlite://{path}");
    assert_one_clear_line(
        &tokenpanel(
            &dir,
            &args,
            &[("DATABASE_URL", &url)],
            "correct horse battery\n",
        ),
        "already exists",
    );
    assert_one_clear_line(
        &tokenpanel(&dir, &["backup", path], &[], ""),
        "already exists",
    );
    assert_one_clear_line(
        &tokenpanel(
            &dir,
            &["backup", "elsewhere.db"],
            &[(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            )],
            "",
        ),
        "pg_dump",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! The built `tokenpanel` binary as a child process, for what only a real process
//! shows: its log on standard output, SIGTERM and SIGKILL. Integration tests pass
//! `env!("CARGO_BIN_EXE_tokenpanel")`, which only they know.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::api::Api;
use super::pages::Client;

/// A running `tokenpanel serve` on a random port.
pub struct ServerProcess {
    child: Child,
    /// `127.0.0.1:port`
    pub addr: String,
    /// `127.0.0.1:port` of `/metrics`, when `METRICS_BIND` was given.
    pub metrics_addr: Option<String>,
    output: Arc<Mutex<Vec<String>>>,
}

const LISTENING: &str = "tokenpanel is listening on http://";
const METRICS: &str = "Metrics are served on http://";

fn collect(stream: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            into.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
}

impl ServerProcess {
    /// Starts `binary` on `database` (URL and server key, as `TestApp::database` gives
    /// them) with these extra environment variables, and waits until it listens.
    pub async fn start(
        binary: &str,
        database: (&str, Option<&str>),
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let (url, key) = database;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env_remove("SECRET_KEY")
            .env_remove("METRICS_BIND")
            .env_remove("LOG_FORMAT")
            .env_remove("ACCESS_LOG")
            .env("DATABASE_URL", url)
            .env("BIND", "127.0.0.1:0")
            .env("LOG_LEVEL", "info")
            .env("COOKIE_SECURE", "never")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(key) = key {
            command.env("SECRET_KEY", key);
        }
        let mut child = command.spawn().expect("start the tokenpanel binary");
        let output = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            collect(stdout, output.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            collect(stderr, output.clone());
        }
        let mut process = ServerProcess {
            child,
            addr: String::new(),
            metrics_addr: None,
            output,
        };
        let started = Instant::now();
        loop {
            let lines = process.output();
            let find = |prefix: &str| {
                lines
                    .iter()
                    .find_map(|l| l.strip_prefix(prefix))
                    .map(|rest| rest.trim_end_matches("/metrics").to_owned())
            };
            if let Some(addr) = find(LISTENING) {
                process.addr = addr;
                process.metrics_addr = find(METRICS);
                let wants_metrics = env.iter().any(|(k, _)| *k == "METRICS_BIND");
                if !wants_metrics || process.metrics_addr.is_some() {
                    return process;
                }
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "tokenpanel exited ({status}) before listening:\n{}",
                    lines.join("\n")
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "tokenpanel did not start:\n{}",
                lines.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A client for the JSON API.
    pub fn api(&self) -> Api {
        Api::new(&self.url(""))
    }

    /// A browser-like client for the pages.
    pub fn client(&self) -> Client {
        Client::new(&self.url(""))
    }

    /// Every line the process wrote so far, standard output and error together.
    pub fn output(&self) -> Vec<String> {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The first output line containing `text`, waiting up to ten seconds for it.
    pub async fn line_with(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.output().into_iter().find(|l| l.contains(text)) {
                return line;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no line with {text:?} in:\n{}",
                self.output().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process ends at once, whatever it was doing.
    pub async fn kill(mut self) {
        let _ = self.child.kill();
        self.wait().await;
    }

    /// SIGTERM, as a service manager stops a server, then waits for the exit.
    pub async fn terminate(self) -> (ExitStatus, Vec<String>) {
        self.send_sigterm();
        self.exited().await
    }

    /// SIGTERM without waiting: for what the server does while it stops.
    pub fn send_sigterm(&self) {
        self.signal("TERM");
    }

    /// Waits (up to a minute) for the process to exit on its own; its status and
    /// everything it wrote.
    pub async fn exited(mut self) -> (ExitStatus, Vec<String>) {
        let status = self.wait().await;
        // The output threads read until the pipes close.
        tokio::time::sleep(Duration::from_millis(100)).await;
        (status, self.output())
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} failed");
    }

    async fn wait(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "tokenpanel did not stop"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

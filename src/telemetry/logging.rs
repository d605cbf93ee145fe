//! The process-wide log subscriber: `LOG_FORMAT=text` (the default; colour only on a
//! terminal) or `json` (one object per line), filtered by `LOG_LEVEL`.
//!
//! Lines reach standard output from a thread of their own (`LineQueue`): a request
//! hands over its access-log line's fields ([`access`]) and goes on; that thread formats
//! them, and it never waits for a terminal, a pipe or a disk. Should the queue fill up
//! (output stalled), lines are dropped rather than requests slowed, and the number
//! dropped is written once output moves again.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use clap::ValueEnum;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::access_log::AccessLine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Lines waiting for standard output at most.
const QUEUED_LINES: usize = 16_384;
/// How long a line waits, at most, before it is written.
const FLUSH_AFTER: Duration = Duration::from_millis(50);

/// Installs the subscriber. Keep the guard until the program ends: dropping it writes
/// the lines still queued.
pub fn init(filter: &str, format: LogFormat) -> Result<LogGuard, String> {
    let targets: tracing_subscriber::filter::Targets = filter
        .parse()
        .map_err(|e| format!("LOG_LEVEL {filter:?} is not a valid filter: {e}"))?;
    // Colour only for a person at a terminal: escape codes garble files and pipes.
    let colour = format == LogFormat::Text && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let (queue, guard) = LineQueue::start(std::io::stdout(), QUEUED_LINES, format, colour);
    let access_queue = queue.clone();
    let (text, json) = match format {
        LogFormat::Text => {
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(queue)
                .with_target(false)
                .with_ansi(colour);
            (Some(layer), None)
        }
        LogFormat::Json => {
            // The event's fields at the top level beside `timestamp` and `level`; the
            // request span (request id, method, route) under `span`.
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(queue)
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_target(false)
                .with_ansi(false);
            (None, Some(layer))
        }
    };
    tracing_subscriber::registry()
        .with(text)
        .with(json)
        .with(targets)
        .try_init()
        .map_err(|e| e.to_string())?;
    // Only the process whose subscriber this is writes access lines itself.
    let _ = ACCESS.set(access_queue);
    Ok(guard)
}

/// The queue of the process's own subscriber, once `init` has installed it.
static ACCESS: OnceLock<LineQueue> = OnceLock::new();

/// Queues an access-log line, formatted by the output thread; without our subscriber
/// (the test kit's in-process servers), the line goes through whichever is installed.
pub fn access(line: AccessLine) {
    match ACCESS.get() {
        Some(queue) => queue.send(Entry::Access(Box::new(line))),
        None => line.emit(),
    }
}

/// What the output thread is handed.
enum Entry {
    /// A line the subscriber formatted.
    Line(Vec<u8>),
    /// An access-log line's fields, formatted by the output thread.
    Access(Box<AccessLine>),
    /// Write what is queued and stop.
    Finish,
}

/// Where the subscriber writes: each line (event) is handed to the output thread whole.
#[derive(Clone)]
struct LineQueue {
    lines: SyncSender<Entry>,
    dropped: Arc<AtomicU64>,
}

/// Writes what is still queued when dropped.
pub struct LogGuard {
    queue: Option<LineQueue>,
    output: Option<JoinHandle<()>>,
}

impl LineQueue {
    fn start(
        out: impl Write + Send + 'static,
        capacity: usize,
        format: LogFormat,
        colour: bool,
    ) -> (LineQueue, LogGuard) {
        let (lines, received) = mpsc::sync_channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        let output = std::thread::Builder::new()
            .name("log output".into())
            .spawn(move || write_lines(received, out, &counted, format, colour))
            .ok();
        let queue = LineQueue { lines, dropped };
        let guard = LogGuard {
            queue: Some(queue.clone()),
            output,
        };
        (queue, guard)
    }

    /// Hands an entry over, or counts it as dropped when the queue is full.
    fn send(&self, entry: Entry) {
        match self.lines.try_send(entry) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The output thread: every [`FLUSH_AFTER`], writes the lines queued since in one batch
/// (64 KiB writes at most), until the guard's `Finish`. One write per batch, not per
/// line: the thread shares the cores with the requests.
fn write_lines(
    received: Receiver<Entry>,
    out: impl Write,
    dropped: &AtomicU64,
    format: LogFormat,
    colour: bool,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    // Access lines are formatted here, one after the other, in the same buffer.
    let mut scratch = Vec::with_capacity(512);
    // Output that fails (a closed pipe) has nowhere to be reported: errors are ignored.
    let settle = |out: &mut std::io::BufWriter<_>| {
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let _ = writeln!(out, "{lost} log lines were dropped: output was too slow");
        }
        let _ = out.flush();
    };
    loop {
        // Sleeps rather than waits on the channel: a waiting thread has to be woken for
        // every line, a system call and a context switch that the request sending it
        // pays for.
        std::thread::sleep(FLUSH_AFTER);
        loop {
            match received.try_recv() {
                Ok(Entry::Line(line)) => {
                    let _ = out.write_all(&line);
                }
                Ok(Entry::Access(line)) => {
                    scratch.clear();
                    match format {
                        LogFormat::Text => line.write_text(&mut scratch, colour),
                        LogFormat::Json => line.write_json(&mut scratch),
                    }
                    let _ = out.write_all(&scratch);
                }
                Ok(Entry::Finish) | Err(TryRecvError::Disconnected) => {
                    settle(&mut out);
                    return;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        settle(&mut out);
    }
}

/// One event's line, handed over whole when the subscriber is done writing it.
struct LineWriter {
    line: Vec<u8>,
    queue: LineQueue,
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        self.queue.send(Entry::Line(std::mem::take(&mut self.line)));
    }
}

impl<'a> MakeWriter<'a> for LineQueue {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            line: Vec::with_capacity(256),
            queue: self.clone(),
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // The subscriber keeps a sender for as long as the process lives, so the thread
        // never sees the channel close: `Finish` tells it to.
        if let Some(queue) = self.queue.take() {
            let _ = queue.lines.send(Entry::Finish);
        }
        if let Some(output) = self.output.take() {
            let _ = output.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Output that a test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_is_dropped() {
        let out = Captured::default();
        let (queue, guard) = LineQueue::start(out.clone(), 10_000, LogFormat::Text, false);
        for n in 0..1000 {
            let mut writer = queue.make_writer();
            writeln!(writer, "line {n}").unwrap();
        }
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..1000).map(|n| format!("line {n}\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn a_line_is_written_soon_while_the_server_runs_on() {
        let out = Captured::default();
        let (queue, _guard) = LineQueue::start(out.clone(), 100, LogFormat::Text, false);
        writeln!(queue.make_writer(), "alone").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while out.0.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(out.0.lock().unwrap().as_slice(), b"alone\n");
    }

    #[test]
    fn access_lines_are_formatted_by_the_output_thread_in_the_chosen_format() {
        for (format, expected) in [
            (
                LogFormat::Json,
                "{\"timestamp\":\"1970-01-01T00:00:01.000000Z\",\"level\":\"INFO\"",
            ),
            (
                LogFormat::Text,
                "1970-01-01T00:00:01.000000Z  INFO request request_id=-",
            ),
        ] {
            let out = Captured::default();
            let (queue, guard) = LineQueue::start(out.clone(), 10, format, false);
            queue.send(Entry::Access(Box::new(AccessLine {
                at: std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1),
                failed: false,
                request_id: None,
                method: "GET",
                route: crate::telemetry::Metrics::new().route("/healthz"),
                status: 200,
                latency_micros: 250,
                client: "127.0.0.1".to_owned(),
                user_id: None,
                token_id: None,
            })));
            drop(guard);
            let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
            assert!(text.starts_with(expected), "{text}");
            assert_eq!(text.lines().count(), 1, "{text}");
        }
    }

    /// Output that does not move until the test lets it.
    struct Stalled(Arc<Mutex<()>>, Captured);

    impl Write for Stalled {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _wait = self.0.lock().unwrap();
            self.1.write(bytes)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_output_drops_lines_instead_of_blocking_and_says_how_many() {
        let gate = Arc::new(Mutex::new(()));
        let out = Captured::default();
        let held = gate.lock().unwrap();
        let (queue, guard) = LineQueue::start(
            Stalled(gate.clone(), out.clone()),
            4,
            LogFormat::Text,
            false,
        );
        // The first line reaches the (stalled) output thread; four more fill the queue;
        // the rest would block a request, and are dropped instead.
        let started = std::time::Instant::now();
        for n in 0..200 {
            let mut writer = queue.make_writer();
            // Lines longer than the output's buffer reach the stalled writer at once.
            let mut line = vec![b'0' + (n % 10) as u8; 70_000];
            line.push(b'\n');
            writer.write_all(&line).unwrap();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        drop(held);
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let written = text.lines().filter(|l| l.len() == 70_000).count();
        assert!((1..200).contains(&written), "{written} lines written");
        assert!(
            text.contains(&format!("{} log lines were dropped", 200 - written)),
            "{}",
            &text[text.len().saturating_sub(200)..]
        );
    }
}

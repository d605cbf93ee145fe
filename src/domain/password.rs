//! Password hashing with argon2id (m=19456 KiB, t=2, p=1).
//!
//! Hashing is CPU- and memory-heavy, so it runs on a fixed set of worker threads, one per
//! core, each reusing one argon2 memory block (19 MiB) for every hash it computes: a
//! burst of sign-ins costs at most workers × 19 MiB, once, instead of a fresh block per
//! hash that the allocator keeps afterwards. A worker that has had nothing to do for
//! `IDLE_RELEASE` gives its block back, so memory returns to idle after a burst. Work
//! waits in a bounded queue; past it the
//! caller is told at once that the server is busy (`HashError::Busy`) rather than
//! queueing without end. An unknown user is checked against a dummy hash so that "no
//! such email" and "wrong password" take the same time.

use std::fmt;
#[cfg(any(test, feature = "testkit"))]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// A password in clear; `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(clear: impl Into<String>) -> Self {
        Password(clear.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[derive(Debug)]
pub enum HashError {
    /// Every worker is busy and the queue is full: try again in a moment.
    Busy,
    Failed(String),
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashError::Busy => f.write_str("password checks are busy"),
            HashError::Failed(e) => write!(f, "password hashing failed: {e}"),
        }
    }
}

impl std::error::Error for HashError {}

/// Seconds a caller told `Busy` is asked to wait before trying again.
pub const BUSY_RETRY_SECONDS: i64 = 1;

const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const OUTPUT_LEN: usize = 32;

/// The hash unknown users are checked against: of a random password nobody has (made
/// once with these parameters), so checking it costs what a real check costs.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$n81AtetE/3tP7u3q7RwjTw$TukVTuvOenz2qfSplDZA0dnDcbgbbyBjvx7AORQX9yU";

fn params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, 1, Some(OUTPUT_LEN))
        .expect("constant argon2 parameters are valid")
}

/// How long a worker keeps its 19 MiB block without work before giving it back. Long
/// enough that a burst reuses it, short enough that a quiet server is small again.
const IDLE_RELEASE: Duration = Duration::from_secs(15);

/// Counters that test builds read: argon2 computations done, workers holding a block.
#[cfg(any(test, feature = "testkit"))]
#[derive(Clone, Default)]
struct Counters {
    computed: Arc<AtomicU64>,
    holding: Arc<AtomicU64>,
}

/// A worker's argon2 memory: allocated on its first hash, then reused until the worker
/// idles.
struct Memory {
    blocks: Vec<Block>,
    #[cfg(any(test, feature = "testkit"))]
    counters: Counters,
}

impl Memory {
    fn new(#[cfg(any(test, feature = "testkit"))] counters: Counters) -> Memory {
        Memory {
            blocks: Vec::new(),
            #[cfg(any(test, feature = "testkit"))]
            counters,
        }
    }

    /// The blocks for one argon2 computation.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        #[cfg(any(test, feature = "testkit"))]
        {
            self.counters.computed.fetch_add(1, Ordering::Relaxed);
            if self.blocks.is_empty() {
                self.counters.holding.fetch_add(1, Ordering::Relaxed);
            }
        }
        if self.blocks.len() < count {
            self.blocks = vec![Block::default(); count];
        }
        &mut self.blocks[..count]
    }

    /// Gives the block back to the operating system.
    fn release(&mut self) {
        if self.blocks.is_empty() {
            return;
        }
        #[cfg(any(test, feature = "testkit"))]
        self.counters.holding.fetch_sub(1, Ordering::Relaxed);
        self.blocks = Vec::new();
        // glibc may keep the freed block in this thread's arena instead of unmapping it.
        crate::allocator::give_back_free_memory();
    }
}

fn hash_with(memory: &mut Memory, password: &str) -> Result<String, HashError> {
    let fail = |e: &dyn fmt::Display| HashError::Failed(e.to_string());
    let mut salt_bytes = [0u8; 16];
    super::random::fill(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| fail(&e))?;
    let params = params();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt_bytes,
            &mut out,
            memory.blocks(params.block_count()),
        )
        .map_err(|e| fail(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string `stored`, computed in `memory`.
fn verify_with(memory: &mut Memory, password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    argon2
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            memory.blocks(blocks),
        )
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;
type WaitObserver = Arc<dyn Fn(std::time::Duration) + Send + Sync>;

/// The password hasher: a handle on the worker threads.
#[derive(Clone)]
pub struct Passwords {
    queue: SyncSender<Job>,
    /// Jobs sent and not yet started, for the metrics.
    waiting: Arc<AtomicI64>,
    /// Told how long each job waited for a worker (the metrics' histogram).
    on_wait: Option<WaitObserver>,
    /// Hashes asked for and not yet done: running or waiting.
    in_flight: Arc<AtomicUsize>,
    /// The most there may be: the workers plus the waiting places. Counted here rather
    /// than by the channel's capacity, which only counts jobs no worker has taken yet,
    /// so on a starved machine (workers not yet woken) it would refuse work that fits.
    most_in_flight: usize,
    #[cfg(any(test, feature = "testkit"))]
    counters: Counters,
}

/// Ends a hash's place in `in_flight` when its job is done or dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

fn work(jobs: Arc<Mutex<Receiver<Job>>>, mut memory: Memory, idle_release: Duration) {
    loop {
        // One worker at a time waits on the queue, the others on the lock; a worker that
        // waited out `idle_release` lets the next one wait, so every idle worker gets
        // its turn to give its block back. A poisoned lock only means another worker
        // panicked while waiting: go on.
        let job = {
            let receiver = jobs.lock().unwrap_or_else(|e| e.into_inner());
            receiver.recv_timeout(idle_release)
        };
        match job {
            Ok(job) => job(&mut memory),
            Err(RecvTimeoutError::Timeout) => memory.release(),
            // Every handle is gone: the server is shutting down.
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

impl Passwords {
    /// `workers` hashes run at once, each on a thread of its own; at most `waiting`
    /// more wait for one.
    pub fn new(workers: usize, waiting: usize) -> Result<Self, HashError> {
        Self::with_idle_release(workers, waiting, IDLE_RELEASE)
    }

    fn with_idle_release(
        workers: usize,
        waiting: usize,
        idle_release: Duration,
    ) -> Result<Self, HashError> {
        let most_in_flight = workers.max(1) + waiting.max(1);
        let (queue, jobs) = sync_channel::<Job>(most_in_flight);
        let jobs = Arc::new(Mutex::new(jobs));
        #[cfg(any(test, feature = "testkit"))]
        let counters = Counters::default();
        for n in 0..workers.max(1) {
            let jobs = jobs.clone();
            let memory = Memory::new(
                #[cfg(any(test, feature = "testkit"))]
                counters.clone(),
            );
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(jobs, memory, idle_release))
                .map_err(|e| HashError::Failed(e.to_string()))?;
        }
        Ok(Passwords {
            queue,
            waiting: Arc::new(AtomicI64::new(0)),
            on_wait: None,
            in_flight: Arc::new(AtomicUsize::new(0)),
            most_in_flight,
            #[cfg(any(test, feature = "testkit"))]
            counters,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.most_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        let place = InFlight(self.in_flight.clone());
        let (reply, answer) = oneshot::channel();
        let queued_at = std::time::Instant::now();
        let waiting = self.waiting.clone();
        let on_wait = self.on_wait.clone();
        let job: Job = Box::new(move |memory| {
            waiting.fetch_sub(1, Ordering::Relaxed);
            if let Some(observe) = &on_wait {
                observe(queued_at.elapsed());
            }
            let answer = job(memory);
            // The place is free before the caller hears back, so its next hash fits.
            drop(place);
            // The caller may have gone away meanwhile; nobody is left to tell.
            let _ = reply.send(answer);
        });
        // Counted before sending, so a worker that starts at once never takes it below 0.
        self.waiting.fetch_add(1, Ordering::Relaxed);
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                return Err(HashError::Busy);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                return Err(HashError::Failed("the password workers stopped".into()));
            }
        }
        answer
            .await
            .map_err(|_| HashError::Failed("a password worker stopped".into()))
    }

    /// Calls `observe` with the time each later job waited for a worker.
    pub fn observe_waits(
        mut self,
        observe: impl Fn(std::time::Duration) + Send + Sync + 'static,
    ) -> Self {
        self.on_wait = Some(Arc::new(observe));
        self
    }

    /// Password checks waiting for a worker now.
    pub fn waiting(&self) -> i64 {
        self.waiting.load(Ordering::Relaxed)
    }

    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let clear = password.0.clone();
        self.run(move |memory| hash_with(memory, &clear)).await?
    }

    /// True when `password` matches `hash`. With no hash (unknown user, or a user who
    /// cannot sign in) the dummy hash is checked and the answer is always false.
    pub async fn verify(&self, password: &Password, hash: Option<&str>) -> Result<bool, HashError> {
        let clear = password.0.clone();
        let (target, real) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (DUMMY_HASH.to_owned(), false),
        };
        let matched = self
            .run(move |memory| verify_with(memory, &clear, &target))
            .await?;
        Ok(matched && real)
    }

    /// How many argon2 computations have run (tests count them).
    #[cfg(any(test, feature = "testkit"))]
    pub fn computed(&self) -> u64 {
        self.counters.computed.load(Ordering::Relaxed)
    }

    /// How many workers hold an argon2 block now.
    #[cfg(test)]
    fn holding(&self) -> u64 {
        self.counters.holding.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_dummy_never_matches() {
        let passwords = Passwords::new(2, 4).unwrap();
        let pw = Password::new("correct horse battery staple");
        let hash = passwords.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(passwords.verify(&pw, Some(&hash)).await.unwrap());
        assert!(!passwords
            .verify(&Password::new("wrong"), Some(&hash))
            .await
            .unwrap());
        assert!(!passwords.verify(&pw, None).await.unwrap());
        assert!(!passwords.verify(&pw, Some("not a hash")).await.unwrap());
        assert!(!format!("{pw:?}").contains("horse"));
        assert_eq!(passwords.computed(), 4, "the malformed hash costs nothing");
    }

    #[test]
    fn hashes_of_the_standard_library_form_verify_here() {
        // A PHC string made by argon2's own `PasswordHasher` (as stored before the
        // workers existed) verifies with the workers' code, and the dummy hash parses.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"old password", &salt)
            .unwrap()
            .to_string();
        let mut memory = Memory::new(Counters::default());
        assert!(verify_with(&mut memory, "old password", &stored));
        assert!(!verify_with(&mut memory, "other", &stored));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_with(&mut memory, "", DUMMY_HASH));
        let made = hash_with(&mut memory, "new").unwrap();
        assert!(Argon2::default()
            .verify_password(b"new", &PasswordHash::new(&made).unwrap())
            .is_ok());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        // One worker, one place in the queue: of many hashes asked at once, at least
        // one is refused straight away instead of waiting.
        let passwords = Passwords::new(1, 1).unwrap();
        let pw = Password::new("pw");
        let attempts: Vec<_> = (0..6)
            .map(|_| {
                let passwords = passwords.clone();
                let pw = pw.clone();
                tokio::spawn(async move { passwords.verify(&pw, None).await })
            })
            .collect();
        let mut busy = 0;
        for attempt in attempts {
            if let Err(HashError::Busy) = attempt.await.unwrap() {
                busy += 1;
            }
        }
        assert!(busy >= 1, "a full queue must refuse");
        assert!(passwords.computed() <= 5);
    }

    #[tokio::test]
    async fn idle_workers_give_their_blocks_back() {
        // Two workers busy at once each take a block, still hold it when the work is
        // done, and give it back once nothing has come for the idle period (how soon
        // after the work depends on how far apart the two finished, so it is not timed).
        let passwords = Passwords::with_idle_release(2, 4, Duration::from_millis(300)).unwrap();
        let pw = Password::new("pw");
        let (a, b) = tokio::join!(passwords.verify(&pw, None), passwords.verify(&pw, None));
        assert!(!a.unwrap() && !b.unwrap());
        assert_eq!(
            passwords.holding(),
            2,
            "both workers hashed and hold a block"
        );
        let mut waited = Duration::ZERO;
        while passwords.holding() > 0 && waited < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += Duration::from_millis(50);
        }
        assert_eq!(passwords.holding(), 0, "idle workers released their blocks");
        // A released worker hashes again, taking a fresh block.
        assert!(!passwords.verify(&pw, None).await.unwrap());
        assert_eq!(passwords.holding(), 1);
        assert_eq!(passwords.computed(), 3);
    }

    #[tokio::test]
    async fn work_that_fits_is_taken_even_before_a_worker_wakes() {
        // One worker and one waiting place: two hashes asked in the same instant both
        // run, although the second is queued before the worker has taken the first.
        let passwords = Passwords::new(1, 1).unwrap();
        let pw = Password::new("pw");
        for _ in 0..5 {
            let (a, b) = tokio::join!(passwords.verify(&pw, None), passwords.verify(&pw, None));
            assert!(matches!((&a, &b), (Ok(false), Ok(false))), "{a:?} {b:?}");
        }
        assert_eq!(passwords.in_flight.load(Ordering::Acquire), 0);
    }
}

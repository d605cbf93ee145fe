//! What the process asks of glibc's allocator, so that memory freed after a burst goes
//! back to the operating system instead of staying in the process's RSS.

/// How many arenas glibc may make. Its default is eight per core, and a thread that
/// finds the arenas busy gets one of its own: every SQLite connection's worker thread,
/// each tokio worker and blocking thread. Memory freed in one arena is not reused by
/// another, so after a burst each kept its own high-water mark (about 10 MB more RSS on
/// SQLite after a run at full load with every key).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: i32 = 2;

/// Tunes glibc's allocator; to be called first thing in `main`, before any thread is
/// started (arenas are made as threads first allocate).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    // SAFETY: mallopt takes no pointers; M_ARENA_MAX only bounds arenas made later.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}

/// Returns the free pages of every glibc arena to the operating system. glibc keeps a
/// freed block in its thread's arena rather than unmapping it (once larger allocations
/// have been freed, it raises its threshold for mapping them apart), so without this the
/// memory of a burst stays resident.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn give_back_free_memory() {
    // SAFETY: malloc_trim takes no pointers and only releases memory the allocator holds
    // free; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back_free_memory() {}

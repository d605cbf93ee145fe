//! What the shared stack's own tower layers (`telemetry::access_log`, `api::answer`)
//! have in common: how they call the service they wrap.

/// The service that was polled ready, to call now; a fresh clone stays in its place and
/// waits for the next `poll_ready` (tower's rule: only a service that said it is ready
/// may be called).
pub fn take_ready<S: Clone>(service: &mut S) -> S {
    let clone = service.clone();
    std::mem::replace(service, clone)
}

//! What an operator watches: the log (text or JSON lines, one access-log line per
//! request) and the Prometheus metrics.

pub mod access_log;
pub mod logging;
pub mod metrics;
pub mod text;

pub use metrics::Metrics;

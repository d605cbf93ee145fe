//! The `tokenpanel` binary: everything lives in the library so tests can drive it.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tokenpanel::cli::run().await
}

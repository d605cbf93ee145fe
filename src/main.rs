//! The `tokenpanel` binary: everything lives in the library so tests can drive it.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before the runtime starts its threads.
    tokenpanel::allocator::tune();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(tokenpanel::cli::run()),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The reference of `bench/api.sh`: a bare axum handler answering "ok", on the same
//! axum, hyper and tokio (multi-threaded runtime, one worker per core) as tokenpanel,
//! with no middleware and no state. What the API is measured against.
//!
//! Usage: bare_axum [ADDRESS] (default 127.0.0.1:3901)

use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3901".to_owned());
    let app = Router::new().route("/", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{addr}");
    axum::serve(listener, app).await
}

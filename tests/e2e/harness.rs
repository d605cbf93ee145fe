//! The harness must be able to fail: axe-core reports a page with known violations, with
//! JavaScript on and off.

use crate::browser::{Browser, Js};

/// An image without a text alternative (critical) and an unlabelled field (critical).
const BROKEN_PAGE: &str = "data:text/html;charset=utf-8,<!doctype html><html lang=en><title>t</title><main><img src=x.png><input type=text></main></html>";

async fn reports_violations(js: Js, test: &str) {
    let Some(b) = Browser::open(test, js).await else {
        return;
    };
    b.goto(BROKEN_PAGE).await.expect("open the test page");
    let error = b
        .check_accessibility()
        .await
        .expect_err("axe-core must report the broken page");
    let message = error.to_string();
    assert!(message.contains("image-alt"), "{message}");
    assert!(message.contains("label"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_reports_serious_violations() {
    reports_violations(Js::On, "axe_reports_serious_violations").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_reports_serious_violations_without_javascript() {
    reports_violations(Js::Off, "axe_reports_serious_violations_without_javascript").await;
}

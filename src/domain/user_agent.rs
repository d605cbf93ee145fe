//! A browser and operating system, told from a User-Agent header for the Sessions page.
//! Only the common families are named; anything else is "Unknown browser"/"unknown OS".
//! Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari", and so on.

/// "Firefox on Linux", "Chrome on Windows", "Safari on iOS", "curl".
pub fn describe(user_agent: &str) -> String {
    let browser = browser(user_agent);
    match os(user_agent) {
        Some(os) => format!("{browser} on {os}"),
        None if browser == UNKNOWN => "Unknown browser".to_owned(),
        None => browser.to_owned(),
    }
}

const UNKNOWN: &str = "Unknown browser";

fn browser(ua: &str) -> &'static str {
    let has = |s: &str| ua.contains(s);
    if ua.is_empty() {
        UNKNOWN
    } else if has("Edg/") || has("Edge/") || has("EdgA/") || has("EdgiOS/") {
        "Edge"
    } else if has("OPR/") || has("Opera") {
        "Opera"
    } else if has("Firefox/") || has("FxiOS/") {
        "Firefox"
    } else if has("HeadlessChrome/") {
        "Headless Chrome"
    } else if has("Chromium/") {
        "Chromium"
    } else if has("Chrome/") || has("CriOS/") {
        "Chrome"
    } else if has("Safari/") && has("Version/") {
        "Safari"
    } else if ua.starts_with("curl/") {
        "curl"
    } else {
        UNKNOWN
    }
}

fn os(ua: &str) -> Option<&'static str> {
    let has = |s: &str| ua.contains(s);
    Some(if has("iPhone") || has("iPad") || has("iPod") {
        "iOS"
    } else if has("Android") {
        "Android"
    } else if has("CrOS") {
        "ChromeOS"
    } else if has("Windows") {
        "Windows"
    } else if has("Mac OS X") || has("Macintosh") {
        "macOS"
    } else if has("Linux") || has("X11") {
        "Linux"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn common_browsers_and_systems() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "Chrome on Windows"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "Edge on Windows"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iOS"),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36", "Headless Chrome on Linux"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0", "Opera on Windows"),
            ("curl/8.8.0", "curl"),
            ("", "Unknown browser"),
            ("something else", "Unknown browser"),
        ];
        for (ua, expected) in cases {
            assert_eq!(describe(ua), expected, "{ua}");
        }
    }
}

//! Robot-check and block detection from the status, headers and body.
//!
//! Amazon answers suspected bots in a few ways: a 200 or 503 page with a
//! "Type the characters you see" form posting to `/errors/validateCaptcha`;
//! AWS WAF challenges (`x-amzn-waf-action: captcha|challenge`, often with
//! status 202 or 405); a plain 403. The extraction's page kind `captcha`
//! is a second opinion the fetcher also honours.
//!
//! Judgement call: markers are matched case-insensitively in the first
//! 256 KiB only. Robot-check pages are small (about 7 KB); product pages
//! can be megabytes, and their head never carries these markers.

/// What kind of refusal a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A robot check (CAPTCHA or WAF challenge).
    Captcha,
    /// An explicit block (403).
    Blocked,
}

const SCAN_LIMIT: usize = 256 * 1024;

/// Body markers of Amazon's robot-check page (lower case).
const BODY_MARKERS: &[&str] = &[
    "/errors/validatecaptcha",
    "id=\"captchacharacters\"",
    "name=\"amzn-captcha-",
    "type the characters you see in this image",
    "make sure you're not a robot",
    "make sure you&#39;re not a robot",
    "<title dir=\"ltr\">robot check</title>",
    "<title>robot check</title>",
    "to discuss automated access to amazon data please contact",
    "awswafcaptcha",
    "aws-waf-token",
];

/// Classifies a response. `header` looks a header up by lower-case name.
pub fn detect<'a>(
    status: u16,
    header: impl Fn(&str) -> Option<&'a str>,
    body: &str,
) -> Option<Refusal> {
    if let Some(action) = header("x-amzn-waf-action") {
        let action = action.to_ascii_lowercase();
        if action.contains("captcha") || action.contains("challenge") {
            return Some(Refusal::Captcha);
        }
    }
    if body_is_robot_check(body) {
        return Some(Refusal::Captcha);
    }
    if status == 403 {
        return Some(Refusal::Blocked);
    }
    None
}

/// Whether the body is a robot-check page.
pub fn body_is_robot_check(body: &str) -> bool {
    let mut end = body.len().min(SCAN_LIMIT);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let head = body[..end].to_ascii_lowercase();
    BODY_MARKERS.iter().any(|m| head.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<&'static str> {
        None
    }

    #[test]
    fn amazon_robot_check_page_is_a_captcha() {
        let page = r#"<html><head><title dir="ltr">Robot Check</title></head><body>
            <h4>Type the characters you see in this image:</h4>
            <form method="get" action="/errors/validateCaptcha" name="">
            <input autocomplete="off" id="captchacharacters" name="field-keywords"></form></body></html>"#;
        assert_eq!(detect(200, none, page), Some(Refusal::Captcha));
        assert_eq!(detect(503, none, page), Some(Refusal::Captcha));
    }

    #[test]
    fn each_marker_alone_is_enough() {
        for m in BODY_MARKERS {
            let page = format!("<html><body>{}</body></html>", m.to_uppercase());
            assert_eq!(detect(200, none, &page), Some(Refusal::Captcha), "{m}");
        }
    }

    #[test]
    fn waf_header_is_a_captcha() {
        let h = |n: &str| (n == "x-amzn-waf-action").then_some("captcha");
        assert_eq!(detect(405, h, ""), Some(Refusal::Captcha));
        let h = |n: &str| (n == "x-amzn-waf-action").then_some("Challenge");
        assert_eq!(detect(202, h, ""), Some(Refusal::Captcha));
    }

    #[test]
    fn forbidden_is_a_block_and_normal_pages_pass() {
        assert_eq!(
            detect(403, none, "<html>Forbidden</html>"),
            Some(Refusal::Blocked)
        );
        let product = r#"<html><head><title>Amazon.com: Kindle</title></head><body>
            <span id="productTitle">Kindle</span><span class="a-offscreen">$89.99</span>
            <a href="/gp/help/customer/display.html">Help</a></body></html>"#;
        assert_eq!(detect(200, none, product), None);
        assert_eq!(detect(503, none, "<html>Service Unavailable</html>"), None);
        assert_eq!(detect(404, none, "<html>Page Not Found</html>"), None);
    }

    #[test]
    fn markers_beyond_the_scan_limit_are_ignored_and_utf8_is_safe() {
        let mut big = "é".repeat(SCAN_LIMIT); // 2 bytes each: the cut lands mid-char
        big.push_str("/errors/validateCaptcha");
        assert!(!body_is_robot_check(&big));
    }
}

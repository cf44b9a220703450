//! CAPTCHA detection over the real Amazon corpus
//! (`../shared/fixtures/amazon`): the robot-check page is recognised, and
//! none of the 30 product pages (2015-2025, eight stores) is mistaken for
//! one. Skipped with a note when the corpus is absent, failed in CI.

use std::path::PathBuf;
use verifier::captcha::{detect, Refusal};

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/amazon");
    if dir.join("INDEX.tsv").is_file() {
        return Some(dir);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !(v.is_empty() || v == "0" || v == "false"));
    assert!(!ci, "CI is set but {} is missing", dir.display());
    eprintln!("skipped: the corpus {} is absent", dir.display());
    None
}

#[test]
fn robot_check_is_told_apart_from_every_product_page() {
    let Some(dir) = corpus() else {
        return;
    };
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("index");
    let mut pages = 0;
    let mut captchas = 0;
    for line in index.lines().skip(1) {
        let file = line.split('\t').next().expect("file column");
        let bytes = std::fs::read(dir.join(file)).expect("page");
        let html = String::from_utf8_lossy(&bytes);
        let none = |_: &str| None;
        let got = detect(200, none, &html);
        if file.contains("captcha") {
            captchas += 1;
            assert_eq!(got, Some(Refusal::Captcha), "{file}");
            // Amazon also serves it with 503: still a CAPTCHA, not a retry.
            assert_eq!(detect(503, none, &html), Some(Refusal::Captcha), "{file}");
        } else {
            pages += 1;
            assert_eq!(got, None, "{file} is a product page");
        }
    }
    assert_eq!((pages, captchas), (30, 1));
}

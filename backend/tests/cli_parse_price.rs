//! `pricewatch parse-price` end to end: the built binary, its JSON lines,
//! its errors.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn pricewatch(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pricewatch"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pricewatch");
    {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("wait for pricewatch")
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

#[test]
fn one_argument() {
    let out = pricewatch(
        &["parse-price", "--marketplace", "amazon.de", "1.234,56 €"],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        json_lines(&out),
        vec![serde_json::json!({
            "input": "1.234,56 €", "amount": "1234.56", "minor": 123456, "currency": "EUR"
        })]
    );
    // Key order is part of the format.
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        text,
        "{\"input\":\"1.234,56 €\",\"amount\":\"1234.56\",\"minor\":123456,\"currency\":\"EUR\"}\n"
    );
    // The marketplace settles the ambiguous "1.234".
    let out = pricewatch(
        &["parse-price", "--marketplace", "amazon.de", "1.234"],
        None,
    );
    assert_eq!(json_lines(&out)[0]["minor"], 123400);
    let out = pricewatch(
        &["parse-price", "--marketplace", "amazon.com", "1.234"],
        None,
    );
    assert_eq!(json_lines(&out)[0]["minor"], serde_json::Value::Null);
}

#[test]
fn jpy_and_no_price() {
    let out = pricewatch(
        &["parse-price", "--marketplace", "amazon.co.jp", "￥32,970"],
        None,
    );
    assert!(out.status.success());
    assert_eq!(
        json_lines(&out),
        vec![
            serde_json::json!({"input": "￥32,970", "amount": "32970", "minor": 32970, "currency": "JPY"})
        ]
    );
    let out = pricewatch(
        &[
            "parse-price",
            "$10.99 - $24.99",
            "--marketplace",
            "amazon.com",
        ],
        None,
    );
    assert!(out.status.success());
    assert_eq!(
        json_lines(&out),
        vec![
            serde_json::json!({"input": "$10.99 - $24.99", "amount": null, "minor": null, "currency": null})
        ]
    );
}

#[test]
fn without_marketplace() {
    let out = pricewatch(&["parse-price", "R$ 1.234,90"], None);
    assert!(out.status.success());
    assert_eq!(json_lines(&out)[0]["minor"], 123490);
    assert_eq!(json_lines(&out)[0]["currency"], "BRL");
    // A bare dollar is ambiguous without a marketplace.
    let out = pricewatch(&["parse-price", "$9.99"], None);
    assert_eq!(json_lines(&out)[0]["minor"], serde_json::Value::Null);
}

#[test]
fn stdin_one_input_per_line() {
    let input = "$1,234.56\r\nList Price: $13.97\n\n($6.24 / Pack)\n$ 9 . 98\n$1,234";
    let out = pricewatch(
        &["parse-price", "--marketplace", "www.amazon.com", "--stdin"],
        Some(input),
    );
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines(&out);
    let got: Vec<(String, serde_json::Value)> = lines
        .iter()
        .map(|v| {
            (
                v["input"].as_str().unwrap_or("?").to_owned(),
                v["minor"].clone(),
            )
        })
        .collect();
    let want = vec![
        ("$1,234.56".to_owned(), serde_json::json!(123456)),
        ("List Price: $13.97".to_owned(), serde_json::Value::Null),
        (String::new(), serde_json::Value::Null),
        ("($6.24 / Pack)".to_owned(), serde_json::Value::Null),
        ("$ 9 . 98".to_owned(), serde_json::json!(998)),
        ("$1,234".to_owned(), serde_json::json!(123400)),
    ];
    assert_eq!(got, want);
    assert_eq!(lines[0]["amount"], "1234.56");
    assert_eq!(lines[0]["currency"], "USD");
}

#[test]
fn empty_stdin_prints_nothing() {
    let out = pricewatch(&["parse-price", "--stdin"], Some(""));
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_marketplace_is_a_clear_error() {
    let out = pricewatch(
        &["parse-price", "--marketplace", "amazon.xx", "12,99 €"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).expect("utf-8");
    assert!(err.contains("unknown marketplace \"amazon.xx\""), "{err}");
    assert!(err.contains("amazon.de"), "{err}");
}

#[test]
fn text_or_stdin_is_required() {
    let out = pricewatch(&["parse-price"], None);
    assert_eq!(out.status.code(), Some(2));
    let out = pricewatch(&["parse-price", "--stdin", "12,99 €"], None);
    assert_eq!(out.status.code(), Some(2));
}

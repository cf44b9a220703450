//! Native tests of the signed report protocol (`PROTOCOL.md`): every test
//! vector, the field grammar, strict JSON, strict Ed25519 and proof of work.

#[path = "support/vectors.rs"]
mod vectors;

use wasm_core::marketplace::Marketplace;
use wasm_core::protocol::{
    b64u_decode, b64u_encode, check_freshness, check_request_time, leading_zero_bits,
    normalize_title, pow_check, pow_digest, pow_solve, sha256_hex, verify_request, verify_strict,
    FieldError, FreshnessError, Keypair, Observation, ProtocolError, PublicKey, Registration,
    Report, ReportError, OBSERVATION_MAX_AGE_MS, OBSERVATION_MAX_FUTURE_MS, REQUEST_CLOCK_SKEW_MS,
};
use wasm_core::types::{Availability, Condition, Seller};

const SEED: [u8; 32] = [7u8; 32];

fn sample(kp: &Keypair) -> Observation {
    Observation {
        key: kp.public_b64u(),
        asin: "B08N5WRWNW".into(),
        marketplace: "amazon.com".into(),
        condition: Condition::New,
        price_minor: Some(12999),
        currency: "USD".into(),
        availability: Availability::InStock,
        seller: Seller::Amazon,
        title: "Echo Dot".into(),
        observed_at: 1_763_800_000_000,
        nonce: b64u_encode(&[9u8; 16]),
    }
}

fn sample_json() -> serde_json::Value {
    let kp = Keypair::from_seed(&SEED);
    serde_json::to_value(sample(&kp).into_report(&kp).expect("signs")).expect("to json")
}

#[test]
fn vectors_reproduced_natively() {
    let counts = vectors::check_all(vectors::VECTORS_JSON);
    assert_eq!(
        counts,
        vectors::Counts {
            obs: 5,
            req: 3,
            register: 3,
            pow: 3
        }
    );
}

#[test]
fn vectors_copy_matches_shared_contract() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/protocol/vectors.json"
    );
    match std::fs::read_to_string(shared) {
        Ok(text) => assert_eq!(
            text,
            vectors::VECTORS_JSON,
            "tests/data/vectors.json drifted from ../shared/protocol/vectors.json"
        ),
        Err(_) => eprintln!("skipped: {shared} not present (fresh clone)"),
    }
}

#[test]
fn pow_solver_finds_the_vector_counters() {
    // The vectors' proofs of work are the first 8-byte big-endian counter
    // from 0 that reaches 12 bits; the solver must find exactly those, in
    // one call or in slices.
    for (key, pow) in [
        ("A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg", "AAAAAAAAEi0"),
        ("6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw", "AAAAAAAABbo"),
        ("vka5x5FMWt85YOgrbYOC1Y-oP-3V1SfRZhl0rB4ajc0", "AAAAAAAABks"),
    ] {
        assert_eq!(pow_solve(key, 12, 0, 1 << 20).as_deref(), Some(pow));
        let mut start = 0;
        let found = loop {
            if let Some(p) = pow_solve(key, 12, start, 1000) {
                break p;
            }
            start += 1000;
            assert!(start < 1 << 20, "solver never found {pow}");
        };
        assert_eq!(found, pow);
        pow_check(key, &found, 12).expect("solution checks");
    }
    // A slice that stops before the solution says so.
    assert_eq!(
        pow_solve("A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg", 12, 0, 4653),
        None
    );
    assert_eq!(pow_solve("k", 257, 0, 10), None);
    assert_eq!(pow_solve("k", 0, 5, 1).as_deref(), Some("AAAAAAAAAAU"));
}

#[test]
fn pow_grammar_is_checked() {
    let key = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg";
    assert_eq!(
        pow_check(key, "", 0),
        Err(ProtocolError::BadLength {
            expected: 32,
            got: 0
        })
    );
    assert!(matches!(
        pow_check(key, &b64u_encode(&[0u8; 33]), 0),
        Err(ProtocolError::BadLength { got: 33, .. })
    ));
    assert_eq!(
        pow_check(key, "AAAAAAAAEi0=", 0),
        Err(ProtocolError::BadBase64)
    );
    pow_check(key, &b64u_encode(&[0u8; 32]), 0).expect("32 bytes is allowed");
    pow_check(key, "AA", 0).expect("1 byte is allowed");
    assert_eq!(
        pow_check(key, "AAAAAAAAEi0", 20),
        Err(ProtocolError::InsufficientWork { need: 20, got: 12 })
    );
    assert_eq!(leading_zero_bits(&pow_digest(key, "AAAAAAAAEi0")), 12);
}

#[test]
fn registration_rejects_forgery_and_bad_keys() {
    let kp = Keypair::from_seed(&SEED);
    let pow = pow_solve(&kp.public_b64u(), 8, 0, 1 << 16).expect("8 bits is quick");
    let reg = Registration::new(&kp, &pow);
    reg.verify(8).expect("valid registration");
    // Someone else's signature over the same key and pow.
    let other = Keypair::from_seed(&[8u8; 32]);
    let forged = Registration {
        sig: other.sign(&wasm_core::protocol::register_canonical(&reg.key, &pow)),
        ..reg.clone()
    };
    assert_eq!(forged.verify(8), Err(ProtocolError::BadSignature));
    // Signature over another pow.
    let swapped = Registration {
        pow: "AA".into(),
        ..reg.clone()
    };
    assert_eq!(swapped.verify(0), Err(ProtocolError::BadSignature));
    let small = Registration {
        key: b64u_encode(&IDENTITY),
        ..reg.clone()
    };
    assert_eq!(small.verify(0), Err(ProtocolError::BadKey));
    // Strict JSON for registrations too.
    let json = r#"{"key":"a","pow":"b","sig":"c","extra":1}"#;
    assert!(serde_json::from_str::<Registration>(json).is_err());
}

#[test]
fn b64u_is_strict() {
    assert_eq!(b64u_encode(&[0xfb, 0xff]), "-_8");
    assert_eq!(b64u_decode("-_8").expect("valid"), vec![0xfb, 0xff]);
    assert_eq!(b64u_decode("").expect("empty"), Vec::<u8>::new());
    for bad in [
        "-_8=",       // padding
        "+/8",        // standard alphabet
        "-_9",        // non-canonical trailing bits
        "AAAAAAAAEj", // non-canonical trailing bits (8 bytes need 11 chars)
        "A",          // impossible length
        "AA AA",      // whitespace
        "AA\n",
        "AAé",
    ] {
        assert_eq!(b64u_decode(bad), Err(ProtocolError::BadBase64), "{bad:?}");
    }
    // Every byte string has exactly one spelling.
    for n in 0..40u8 {
        let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
        let s = b64u_encode(&bytes);
        assert!(!s.contains('='));
        assert_eq!(b64u_decode(&s).expect("round trip"), bytes);
    }
}

#[test]
fn sha256_hex_known_answers() {
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

/// A grammar check: `edit` breaks one field, `field` is what must be named.
fn check_rejected(field: &str, edit: impl FnOnce(&mut Observation)) {
    let kp = Keypair::from_seed(&SEED);
    let mut obs = sample(&kp);
    obs.validate().expect("sample is valid");
    edit(&mut obs);
    let err: FieldError = obs.validate().expect_err("must be rejected");
    assert_eq!(err.field, field, "{err}");
    assert_eq!(obs.canonical_bytes().map(|_| ()), Err(err.clone()));
    assert_eq!(obs.sign(&kp).map(|_| ()), Err(err.clone()));
    // Even with a signature over the broken bytes, the report is rejected
    // as an invalid field, not accepted.
    let report = Report {
        sig: kp.sign(b"anything"),
        obs,
        meta: None,
    };
    assert_eq!(report.verify(), Err(ReportError::InvalidField(err)));
    assert_eq!(
        report.verify().map_err(|e| e.reason()),
        Err("invalid_field")
    );
}

#[test]
fn grammar_rejections_name_the_field() {
    check_rejected("asin", |o| o.asin = "b08n5wrwnw".into());
    check_rejected("asin", |o| o.asin = "B08N5WRWN".into());
    check_rejected("asin", |o| o.asin = "B08N5WRWNW1".into());
    check_rejected("asin", |o| o.asin = "B08N5-RWNW".into());
    check_rejected("asin", |o| o.asin = "B08N5WRWNＷ".into());
    check_rejected("marketplace", |o| o.marketplace = "amazon.cn".into());
    check_rejected("marketplace", |o| o.marketplace = "www.amazon.com".into());
    check_rejected("marketplace", |o| o.marketplace = "Amazon.com".into());
    check_rejected("marketplace", |o| o.marketplace = "amazon.com\n".into());
    check_rejected("currency", |o| o.currency = "usd".into());
    check_rejected("currency", |o| o.currency = "US".into());
    check_rejected("currency", |o| o.currency = "USDX".into());
    check_rejected("currency", |o| o.currency = "€".into());
    check_rejected("title", |o| o.title = "Echo\nDot".into());
    check_rejected("title", |o| o.title = "Echo\tDot".into());
    check_rejected("title", |o| o.title = "Echo  Dot".into());
    check_rejected("title", |o| o.title = " Echo".into());
    check_rejected("title", |o| o.title = "Echo ".into());
    check_rejected("title", |o| o.title = " ".into());
    check_rejected("title", |o| o.title = "Echo\u{a0}Dot".into());
    check_rejected("title", |o| o.title = "Echo\u{2028}Dot".into());
    check_rejected("title", |o| o.title = "x".repeat(401));
    check_rejected("title", |o| o.title = "é".repeat(401));
    check_rejected("observed_at", |o| o.observed_at = -1);
    check_rejected("nonce", |o| o.nonce = b64u_encode(&[1u8; 15]));
    check_rejected("nonce", |o| o.nonce = b64u_encode(&[1u8; 17]));
    check_rejected("nonce", |o| o.nonce = "AQEBAQEBAQEBAQEBAQEBAQ==".into());
    check_rejected("nonce", |o| o.nonce = "AQEBAQEBAQEBAQEBAQEBAR".into());
    check_rejected("key", |o| o.key = b64u_encode(&[1u8; 31]));
    check_rejected("key", |o| o.key.push('='));
    check_rejected("key", |o| o.key = o.key.replace(['-', '_'], "+"));
    check_rejected("key", |o| o.key = String::new());
}

/// The marketplace list of `PROTOCOL.md` §1, verbatim.
const PROTOCOL_MARKETPLACES: [&str; 21] = [
    "amazon.com",
    "amazon.co.uk",
    "amazon.de",
    "amazon.fr",
    "amazon.it",
    "amazon.es",
    "amazon.nl",
    "amazon.se",
    "amazon.pl",
    "amazon.com.be",
    "amazon.ca",
    "amazon.com.mx",
    "amazon.com.br",
    "amazon.co.jp",
    "amazon.in",
    "amazon.com.au",
    "amazon.sg",
    "amazon.ae",
    "amazon.sa",
    "amazon.com.tr",
    "amazon.eg",
];

#[test]
fn marketplace_grammar_is_exactly_the_protocol_list() {
    let domains: Vec<&str> = Marketplace::all().iter().map(|m| m.domain()).collect();
    assert_eq!(domains, PROTOCOL_MARKETPLACES);
}

#[test]
fn grammar_accepts_the_edges() {
    let kp = Keypair::from_seed(&SEED);
    let mut obs = sample(&kp);
    for t in [
        String::new(),
        "x".repeat(400),
        "é".repeat(400),
        "a b".into(),
        "Apple AirPods Pro（第2世代）".into(),
    ] {
        obs.title = t;
        obs.validate().expect("valid title");
    }
    obs.observed_at = 0;
    obs.price_minor = Some(0);
    obs.validate().expect("zero time and price");
    obs.price_minor = Some(u64::MAX);
    obs.observed_at = i64::MAX;
    let canon = String::from_utf8(obs.canonical_bytes().expect("valid")).expect("utf8");
    assert!(canon.contains("\nprice_minor=18446744073709551615\n"));
    assert!(canon.contains("\nobserved_at=9223372036854775807\n"));
    for m in PROTOCOL_MARKETPLACES {
        obs.marketplace = m.to_owned();
        obs.validate().expect("listed marketplace");
    }
    obs.price_minor = None;
    let canon = String::from_utf8(obs.canonical_bytes().expect("valid")).expect("utf8");
    assert!(canon.contains("\nprice_minor=\ncurrency="), "{canon}");
}

#[test]
fn normalize_title_output_always_validates() {
    let kp = Keypair::from_seed(&SEED);
    let mut obs = sample(&kp);
    for raw in [
        "  Echo\n\n Dot \t(4th Gen)\r\n",
        "\u{3000}全角\u{3000}\u{3000}スペース\u{3000}",
        &("word ".repeat(200)),
        &("x".repeat(399) + "      y"),
        &"é".repeat(1000),
    ] {
        obs.title = normalize_title(raw);
        obs.validate()
            .unwrap_or_else(|e| panic!("normalised {raw:?} -> {:?}: {e}", obs.title));
        assert_eq!(normalize_title(&obs.title), obs.title, "idempotent");
    }
    assert_eq!(
        normalize_title("  Echo\n\n Dot \t(4th Gen)\r\n"),
        "Echo Dot (4th Gen)"
    );
}

#[test]
fn strict_json() {
    let good = sample_json();
    let text = good.to_string();
    let report = Report::from_json(&text).expect("good report parses");
    report.verify().expect("and verifies");

    let malformed = |json: &str, what: &str| match Report::from_json(json) {
        Err(ReportError::Malformed(msg)) => msg,
        other => panic!("{what}: expected Malformed, got {other:?}"),
    };

    // Unknown fields, at each level.
    let mut v = good.clone();
    v["extra"] = 1.into();
    malformed(&v.to_string(), "unknown top-level field");
    let mut v = good.clone();
    v["obs"]["price"] = 1.into();
    malformed(&v.to_string(), "unknown obs field");
    let mut v = good.clone();
    v["meta"] = serde_json::json!({"extractor": "1", "rule": "r", "x": 1});
    malformed(&v.to_string(), "unknown meta field");

    // Meta is accepted, unsigned, and may be partial.
    let mut v = good.clone();
    v["meta"] = serde_json::json!({"extractor": "0.1.0", "rule": "buybox-json"});
    let r = Report::from_json(&v.to_string()).expect("meta accepted");
    r.verify().expect("meta is not signed");
    assert_eq!(
        r.meta.as_ref().and_then(|m| m.rule.as_deref()),
        Some("buybox-json")
    );
    let mut v = good.clone();
    v["meta"] = serde_json::json!({"rule": "r"});
    Report::from_json(&v.to_string()).expect("partial meta accepted");
    assert!(!serde_json::to_string(&report)
        .expect("ser")
        .contains("meta"));

    // Duplicate keys (serde_json::Value would silently keep the last one;
    // the typed parser must refuse).
    let obs_text = good["obs"].to_string();
    let dup_obs = obs_text.replacen("{", "{\"asin\":\"B000000000\",", 1);
    let dup = format!(r#"{{"obs":{dup_obs},"sig":{}}}"#, good["sig"]);
    let msg = malformed(&dup, "duplicate obs key");
    assert!(msg.contains("duplicate field"), "{msg}");
    let dup = format!(r#"{{"obs":{obs_text},"sig":{0},"sig":{0}}}"#, good["sig"]);
    malformed(&dup, "duplicate top-level key");

    // Types and values.
    let mut v = good.clone();
    v["obs"]["price_minor"] = (-1).into();
    malformed(&v.to_string(), "negative price");
    let mut v = good.clone();
    v["obs"]["price_minor"] = serde_json::json!(12.99);
    malformed(&v.to_string(), "float price");
    let mut v = good.clone();
    v["obs"]["price_minor"] = "12999".into();
    malformed(&v.to_string(), "string price");
    let mut v = good.clone();
    v["obs"]
        .as_object_mut()
        .expect("object")
        .remove("price_minor");
    malformed(
        &v.to_string(),
        "missing price_minor (must be explicit null)",
    );
    let mut v = good.clone();
    v["obs"]["condition"] = "New".into();
    malformed(&v.to_string(), "unknown condition");
    let mut v = good.clone();
    v["obs"]["seller"] = "amazon.com".into();
    malformed(&v.to_string(), "unknown seller");
    let mut v = good.clone();
    v["obs"]["availability"] = "available".into();
    malformed(&v.to_string(), "unknown availability");
    let mut v = good.clone();
    v["obs"]["observed_at"] = serde_json::json!(1.5);
    malformed(&v.to_string(), "float time");
    malformed("{", "truncated");
    malformed("[]", "not an object");

    // price_minor null <-> empty in the canonical bytes.
    let kp = Keypair::from_seed(&SEED);
    let mut obs = sample(&kp);
    obs.price_minor = None;
    let r = obs.into_report(&kp).expect("signs");
    let json = serde_json::to_string(&r).expect("ser");
    assert!(json.contains("\"price_minor\":null"), "{json}");
    let back = Report::from_json(&json).expect("parses");
    assert_eq!(back.obs.price_minor, None);
    back.verify().expect("verifies");
}

#[test]
fn report_signature_failures_are_bad_signature() {
    let kp = Keypair::from_seed(&SEED);
    let report = sample(&kp).into_report(&kp).expect("signs");
    report.verify().expect("valid");

    let mut r = report.clone();
    r.obs.price_minor = Some(1);
    assert_eq!(
        r.verify(),
        Err(ReportError::BadSignature(ProtocolError::BadSignature))
    );
    assert_eq!(r.verify().map_err(|e| e.reason()), Err("bad_signature"));

    let mut r = report.clone();
    r.sig = b64u_encode(&[0u8; 63]);
    assert_eq!(
        r.verify(),
        Err(ReportError::BadSignature(ProtocolError::BadLength {
            expected: 64,
            got: 63
        }))
    );

    let mut r = report.clone();
    r.sig.push('=');
    assert!(matches!(r.verify(), Err(ReportError::BadSignature(_))));

    // Another key's valid signature over the same bytes.
    let other = Keypair::from_seed(&[8u8; 32]);
    let mut r = report.clone();
    r.sig = other.sign(&report.obs.canonical_bytes().expect("valid"));
    assert!(matches!(r.verify(), Err(ReportError::BadSignature(_))));
    // verify_with refuses a key that is not the observation's.
    let other_pk = PublicKey::from_b64u(&other.public_b64u()).expect("valid");
    assert!(matches!(
        report.verify_with(&other_pk),
        Err(ReportError::BadSignature(ProtocolError::BadKey))
    ));
    // A producer cannot sign an observation that names another key.
    assert_eq!(report.obs.sign(&other).map_err(|e| e.field), Err("key"));
}

/// The identity point: order 1.
const IDENTITY: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
};

/// Ed25519's group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = (s & 0xff) as u8;
        carry = s >> 8;
    }
    out
}

#[test]
fn small_order_keys_are_rejected() {
    // The eight small-order points (torsion subgroup), in their usual
    // encodings, and the identity with its sign bit set.
    let mut order2 = [0xffu8; 32];
    order2[0] = 0xec;
    order2[31] = 0x7f; // y = -1
    let mut order4 = [0u8; 32]; // y = 0
    order4[31] = 0x00;
    let mut order4_neg = order4;
    order4_neg[31] = 0x80;
    let order8: [u8; 32] = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ];
    let mut order8_neg = order8;
    order8_neg[31] |= 0x80;
    for key in [IDENTITY, order2, order4, order4_neg, order8, order8_neg] {
        assert_eq!(
            PublicKey::from_bytes(&key),
            Err(ProtocolError::BadKey),
            "{key:02x?}"
        );
        // With R = identity and S = 0, a small-order key would verify any
        // message under a non-strict check.
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&IDENTITY);
        assert_eq!(
            verify_strict(&b64u_encode(&key), b"msg", &b64u_encode(&sig)),
            Err(ProtocolError::BadKey)
        );
    }
}

#[test]
fn non_canonical_key_encoding_is_rejected() {
    // y + p for small y: the same point as y, spelled non-canonically.
    // p = 2^255 - 19, so y + p = (y - 19) + 2^255, which only fits for
    // y < 19 with the top bit clear: bytes (y + 0xed), 0xff.., 0x7f.
    let mut found = 0;
    for y in 2u8..19 {
        let mut bytes = [0xffu8; 32];
        bytes[0] = 0xed + y;
        bytes[31] = 0x7f;
        let mut canonical = [0u8; 32];
        canonical[0] = y;
        if PublicKey::from_bytes(&canonical).is_ok() {
            found += 1;
            assert_eq!(
                PublicKey::from_bytes(&bytes),
                Err(ProtocolError::BadKey),
                "y = {y} spelled as y + p"
            );
        }
    }
    assert!(found > 0, "some small y is a large-order point");
}

#[test]
fn non_canonical_s_and_small_order_r_are_rejected() {
    let kp = Keypair::from_seed(&SEED);
    let pk = PublicKey::from_b64u(&kp.public_b64u()).expect("valid");
    let msg = b"pricewatch";
    let sig: [u8; 64] = b64u_decode(&kp.sign(msg))
        .expect("b64u")
        .try_into()
        .expect("64 bytes");
    pk.verify_bytes(msg, &sig).expect("valid signature");

    // S + L is the same scalar mod L: a malleated signature.
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig[32..]);
    let mut malleated = sig;
    malleated[32..].copy_from_slice(&add_le(&s, &L));
    assert_eq!(
        pk.verify_bytes(msg, &malleated),
        Err(ProtocolError::BadSignature)
    );
    assert_eq!(
        pk.verify(msg, &b64u_encode(&malleated)),
        Err(ProtocolError::BadSignature)
    );

    // Small-order R with S = 0.
    let mut weak = [0u8; 64];
    weak[..32].copy_from_slice(&IDENTITY);
    assert_eq!(
        pk.verify_bytes(msg, &weak),
        Err(ProtocolError::BadSignature)
    );
}

#[test]
fn signed_requests() {
    let kp = Keypair::from_seed(&SEED);
    let key = kp.public_b64u();
    let nonce = b64u_encode(&[3u8; 16]);
    let body = br#"{"asin":"B08N5WRWNW"}"#;
    let sig = wasm_core::protocol::sign_request(&kp, "POST", "/v1/watches", 5, &nonce, body);
    verify_request(&key, "POST", "/v1/watches", 5, &nonce, body, &sig).expect("valid");
    assert_eq!(
        verify_request(&key, "PUT", "/v1/watches", 5, &nonce, body, &sig),
        Err(ProtocolError::BadSignature)
    );
    assert_eq!(
        verify_request(&key, "POST", "/v1/watches?x=1", 5, &nonce, body, &sig),
        Err(ProtocolError::BadSignature)
    );
    assert_eq!(
        verify_request(&key, "POST", "/v1/watches", 6, &nonce, body, &sig),
        Err(ProtocolError::BadSignature)
    );
    for (method, path, ts, nonce, field) in [
        ("post", "/v1/watches", 5, nonce.as_str(), "method"),
        ("", "/v1/watches", 5, nonce.as_str(), "method"),
        ("POST", "v1/watches", 5, nonce.as_str(), "path"),
        ("POST", "/v1/watches\n5", 5, nonce.as_str(), "path"),
        ("POST", "/v1/w atches", 5, nonce.as_str(), "path"),
        ("POST", "/v1/watches", -5, nonce.as_str(), "timestamp"),
        ("POST", "/v1/watches", 5, "AAAA", "nonce"),
    ] {
        assert_eq!(
            verify_request(&key, method, path, ts, nonce, body, &sig),
            Err(ProtocolError::BadRequestField(field))
        );
    }
}

#[test]
fn freshness_windows() {
    let now = 1_763_800_000_000;
    assert_eq!(check_freshness(now, now), Ok(()));
    assert_eq!(check_freshness(now - OBSERVATION_MAX_AGE_MS, now), Ok(()));
    assert_eq!(
        check_freshness(now - OBSERVATION_MAX_AGE_MS - 1, now),
        Err(FreshnessError::Stale)
    );
    assert_eq!(
        check_freshness(now + OBSERVATION_MAX_FUTURE_MS, now),
        Ok(())
    );
    assert_eq!(
        check_freshness(now + OBSERVATION_MAX_FUTURE_MS + 1, now),
        Err(FreshnessError::Future)
    );
    assert_eq!(check_freshness(0, now), Err(FreshnessError::Stale));
    assert_eq!(check_freshness(i64::MAX, i64::MAX), Ok(()));
    assert_eq!(check_freshness(i64::MIN, 0), Err(FreshnessError::Stale));
    assert_eq!(FreshnessError::Stale.reason(), "stale");
    assert_eq!(FreshnessError::Future.reason(), "future");
    assert_eq!(OBSERVATION_MAX_AGE_MS, 86_400_000);
    assert_eq!(OBSERVATION_MAX_FUTURE_MS, 300_000);

    assert_eq!(REQUEST_CLOCK_SKEW_MS, 300_000);
    assert_eq!(check_request_time(now + 300_000, now), Ok(()));
    assert_eq!(check_request_time(now - 300_000, now), Ok(()));
    assert_eq!(
        check_request_time(now + 300_001, now),
        Err(ProtocolError::ClockSkew)
    );
    assert_eq!(
        check_request_time(now - 300_001, now),
        Err(ProtocolError::ClockSkew)
    );
    assert_eq!(
        check_request_time(i64::MIN, i64::MAX),
        Err(ProtocolError::ClockSkew)
    );
}

#[test]
fn keypair_debug_hides_the_secret() {
    let kp = Keypair::from_seed(&SEED);
    let dbg = format!("{kp:?}");
    assert!(dbg.contains(&kp.public_b64u()));
    assert!(!dbg.contains("7, 7"), "{dbg}");
    assert_eq!(kp.seed(), SEED);
}

//! The protocol on wasm32, run for real (under node, by
//! `scripts/wasm-core-test` through `wasm-bindgen-test-runner`).
//!
//! The extension signs with the wasm32 build of this crate and the backend
//! verifies with the native one: the test vectors must come out
//! byte-identical on both. The vectors are embedded with `include_str!`
//! (no file system in wasm) by the module shared with `tests/protocol.rs`.
//!
//! On native targets this file compiles to nothing.
#![cfg(target_arch = "wasm32")]

#[path = "support/vectors.rs"]
mod vectors;

use wasm_bindgen_test::wasm_bindgen_test;
use wasm_core::protocol::{
    b64u_decode, b64u_encode, pow_check, pow_solve, verify_strict, Keypair, Observation,
    ProtocolError, PublicKey, Report, ReportError,
};
use wasm_core::types::{Availability, Condition, Seller};

#[wasm_bindgen_test]
fn runs_on_wasm32() {
    // Guards against the file being run on the host by mistake.
    assert_eq!(std::env::consts::ARCH, "wasm32");
    assert_eq!(core::mem::size_of::<usize>(), 4);
}

#[wasm_bindgen_test]
fn vectors_reproduced_in_wasm32() {
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

#[wasm_bindgen_test]
fn pow_solver_in_slices_matches_native() {
    // Same first solution as natively (tests/protocol.rs), found in the
    // slices the extension's service worker uses.
    let key = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg";
    let mut start = 0u64;
    let pow = loop {
        if let Some(p) = pow_solve(key, 12, start, 512) {
            break p;
        }
        start += 512;
        assert!(start < 1 << 20, "no solution found");
    };
    assert_eq!(pow, "AAAAAAAAEi0");
    assert_eq!(pow_check(key, &pow, 12), Ok(()));
}

#[wasm_bindgen_test]
fn strictness_holds_in_wasm32() {
    // Small-order key (the identity).
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(PublicKey::from_bytes(&identity), Err(ProtocolError::BadKey));

    // Non-canonical S (S + L).
    let kp = Keypair::from_seed(&[7u8; 32]);
    let msg = b"pricewatch";
    let sig = b64u_decode(&kp.sign(msg)).expect("b64u");
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut malleated = sig.clone();
    let mut carry = 0u16;
    for i in 0..32 {
        let s = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        malleated[32 + i] = (s & 0xff) as u8;
        carry = s >> 8;
    }
    let key = kp.public_b64u();
    assert_eq!(verify_strict(&key, msg, &b64u_encode(&sig)), Ok(()));
    assert_eq!(
        verify_strict(&key, msg, &b64u_encode(&malleated)),
        Err(ProtocolError::BadSignature)
    );
}

#[wasm_bindgen_test]
fn grammar_and_json_strictness_in_wasm32() {
    let kp = Keypair::from_seed(&[7u8; 32]);
    let obs = Observation {
        key: kp.public_b64u(),
        asin: "B08N5WRWNW".into(),
        marketplace: "amazon.co.uk".into(),
        condition: Condition::Used,
        price_minor: None,
        currency: "GBP".into(),
        availability: Availability::OutOfStock,
        seller: Seller::ThirdParty,
        title: "Echo Dot".into(),
        observed_at: 1_763_800_000_000,
        nonce: b64u_encode(&[1u8; 16]),
    };
    let report = obs.clone().into_report(&kp).expect("signs");
    let json = serde_json::to_string(&report).expect("serialises");
    assert_eq!(Report::from_json(&json).expect("parses").verify(), Ok(()));

    let mut bad = obs.clone();
    bad.asin = "b08n5wrwnw".into();
    assert_eq!(bad.validate().map_err(|e| e.field), Err("asin"));
    let mut bad = obs.clone();
    bad.title = "Echo\nDot".into();
    assert_eq!(bad.validate().map_err(|e| e.field), Err("title"));

    let dup = json.replacen("{\"key\"", "{\"asin\":\"B000000000\",\"key\"", 1);
    assert!(matches!(
        Report::from_json(&dup),
        Err(ReportError::Malformed(_))
    ));
    let unknown = json.replacen("{\"obs\"", "{\"x\":1,\"obs\"", 1);
    assert!(matches!(
        Report::from_json(&unknown),
        Err(ReportError::Malformed(_))
    ));
}

//! Reproduces every test vector of `PROTOCOL.md` (`tests/data/vectors.json`)
//! with the wasm-core API. Shared by the native test (`tests/protocol.rs`)
//! and the wasm32 test (`tests/wasm.rs`), so both targets run the very same
//! checks. Panics with the vector's section and index on any mismatch.

use serde::Deserialize;
use wasm_core::protocol::{
    leading_zero_bits, pow_check, pow_digest, register_canonical, request_canonical, sign_request,
    verify_request, verify_strict, Keypair, Observation, PublicKey, Registration, Report,
};

/// The vectors file, embedded (wasm32 has no file system).
pub const VECTORS_JSON: &str = include_str!("../data/vectors.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    obs: Vec<ObsVector>,
    req: Vec<ReqVector>,
    register: Vec<RegisterVector>,
    pow: Vec<PowVector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObsVector {
    secret_seed_hex: String,
    obs: Observation,
    canonical_utf8: String,
    signature: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReqVector {
    secret_seed_hex: String,
    key: String,
    method: String,
    path_and_query: String,
    timestamp: i64,
    nonce: String,
    body_utf8: String,
    canonical_utf8: String,
    signature: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterVector {
    secret_seed_hex: String,
    key: String,
    pow: String,
    canonical_utf8: String,
    signature: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PowVector {
    key: String,
    pow: String,
    digest_hex: String,
    leading_zero_bits: u32,
}

/// How many vectors of each section were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub obs: usize,
    pub req: usize,
    pub register: usize,
    pub pow: usize,
}

fn seed(hex: &str) -> [u8; 32] {
    assert_eq!(hex.len(), 64, "seed hex length");
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("seed hex digit");
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks every vector; returns how many of each kind it checked.
pub fn check_all(json: &str) -> Counts {
    let v: Vectors = serde_json::from_str(json).expect("vectors.json parses");

    for (i, t) in v.obs.iter().enumerate() {
        let kp = Keypair::from_seed(&seed(&t.secret_seed_hex));
        assert_eq!(kp.public_b64u(), t.obs.key, "obs[{i}] key from seed");
        let canon = t
            .obs
            .canonical_bytes()
            .expect("vector observation is valid");
        assert_eq!(
            String::from_utf8(canon.clone()).expect("utf8"),
            t.canonical_utf8,
            "obs[{i}] canonical bytes"
        );
        assert_eq!(kp.sign(&canon), t.signature, "obs[{i}] signature (raw)");
        assert_eq!(
            t.obs.sign(&kp).expect("signs"),
            t.signature,
            "obs[{i}] signature"
        );
        verify_strict(&t.obs.key, t.canonical_utf8.as_bytes(), &t.signature)
            .unwrap_or_else(|e| panic!("obs[{i}] verifies: {e}"));
        let report = Report {
            obs: t.obs.clone(),
            sig: t.signature.clone(),
            meta: None,
        };
        report
            .verify()
            .unwrap_or_else(|e| panic!("obs[{i}] report verifies: {e}"));
        let key = PublicKey::from_b64u(&t.obs.key).expect("vector key is valid");
        report
            .verify_with(&key)
            .unwrap_or_else(|e| panic!("obs[{i}] report verifies with parsed key: {e}"));
        // JSON round trip through the strict parser.
        let json = serde_json::to_string(&report).expect("serialises");
        assert_eq!(
            Report::from_json(&json).expect("parses back"),
            report,
            "obs[{i}] JSON round trip"
        );
    }

    for (i, t) in v.req.iter().enumerate() {
        let kp = Keypair::from_seed(&seed(&t.secret_seed_hex));
        assert_eq!(kp.public_b64u(), t.key, "req[{i}] key from seed");
        let body = t.body_utf8.as_bytes();
        let canon = request_canonical(&t.method, &t.path_and_query, t.timestamp, &t.nonce, body);
        assert_eq!(
            String::from_utf8(canon).expect("utf8"),
            t.canonical_utf8,
            "req[{i}] canonical bytes"
        );
        assert_eq!(
            sign_request(
                &kp,
                &t.method,
                &t.path_and_query,
                t.timestamp,
                &t.nonce,
                body
            ),
            t.signature,
            "req[{i}] signature"
        );
        verify_request(
            &t.key,
            &t.method,
            &t.path_and_query,
            t.timestamp,
            &t.nonce,
            body,
            &t.signature,
        )
        .unwrap_or_else(|e| panic!("req[{i}] verifies: {e}"));
        // The same signature must not cover another body.
        let other = [body, b" "].concat();
        assert!(
            verify_request(
                &t.key,
                &t.method,
                &t.path_and_query,
                t.timestamp,
                &t.nonce,
                &other,
                &t.signature,
            )
            .is_err(),
            "req[{i}] signature must not cover a changed body"
        );
    }

    for (i, t) in v.register.iter().enumerate() {
        let kp = Keypair::from_seed(&seed(&t.secret_seed_hex));
        assert_eq!(kp.public_b64u(), t.key, "register[{i}] key from seed");
        let canon = register_canonical(&t.key, &t.pow);
        assert_eq!(
            String::from_utf8(canon).expect("utf8"),
            t.canonical_utf8,
            "register[{i}] canonical bytes"
        );
        let reg = Registration::new(&kp, &t.pow);
        assert_eq!(reg.sig, t.signature, "register[{i}] signature");
        let theirs = Registration {
            key: t.key.clone(),
            pow: t.pow.clone(),
            sig: t.signature.clone(),
        };
        let bits = leading_zero_bits(&pow_digest(&t.key, &t.pow));
        theirs
            .verify(bits)
            .unwrap_or_else(|e| panic!("register[{i}] verifies at {bits} bits: {e}"));
        assert!(
            theirs.verify(bits + 1).is_err(),
            "register[{i}] must fail one bit above its work"
        );
    }

    for (i, t) in v.pow.iter().enumerate() {
        let digest = pow_digest(&t.key, &t.pow);
        assert_eq!(hex(&digest), t.digest_hex, "pow[{i}] digest");
        assert_eq!(
            leading_zero_bits(&digest),
            t.leading_zero_bits,
            "pow[{i}] leading zero bits"
        );
        pow_check(&t.key, &t.pow, t.leading_zero_bits)
            .unwrap_or_else(|e| panic!("pow[{i}] checks: {e}"));
        assert!(
            pow_check(&t.key, &t.pow, t.leading_zero_bits + 1).is_err(),
            "pow[{i}] must fail one bit above"
        );
    }

    Counts {
        obs: v.obs.len(),
        req: v.req.len(),
        register: v.register.len(),
        pow: v.pow.len(),
    }
}

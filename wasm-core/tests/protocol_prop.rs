//! Property tests of the signed report protocol: sign/verify round trips
//! for random observations, and any single changed byte of the canonical
//! bytes, the signature or the key fails verification.

use proptest::prelude::*;
use wasm_core::marketplace::Marketplace;
use wasm_core::protocol::{
    b64u_decode, b64u_encode, normalize_title, verify_strict, Keypair, Observation, PublicKey,
    Report, ReportError,
};
use wasm_core::types::{Availability, Condition, Seller};

/// Raw titles: arbitrary Unicode, and long whitespace-heavy text around
/// the 400-character cut.
fn arb_raw_title() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-zé（） \\t\\n\u{3000}]{300,500}"]
}

fn arb_observation() -> impl Strategy<Value = (Keypair, Observation)> {
    (
        any::<[u8; 32]>(),
        "[0-9A-Z]{10}",
        proptest::sample::select(Marketplace::all()),
        proptest::sample::select(Condition::ALL),
        proptest::option::of(any::<u64>()),
        "[A-Z]{3}",
        proptest::sample::select(Availability::ALL),
        proptest::sample::select(Seller::ALL),
        // Raw text of any kind, normalised the way producers must.
        arb_raw_title().prop_map(|s| normalize_title(&s)),
        0..=i64::MAX,
        any::<[u8; 16]>(),
    )
        .prop_map(
            |(seed, asin, mp, condition, price, currency, avail, seller, title, at, nonce)| {
                let kp = Keypair::from_seed(&seed);
                let obs = Observation {
                    key: kp.public_b64u(),
                    asin,
                    marketplace: mp.domain().to_owned(),
                    condition,
                    price_minor: price,
                    currency,
                    availability: avail,
                    seller,
                    title,
                    observed_at: at,
                    nonce: b64u_encode(&nonce),
                };
                (kp, obs)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn sign_verify_round_trip((kp, obs) in arb_observation()) {
        let report = obs.clone().into_report(&kp).expect("valid observation signs");
        prop_assert_eq!(report.verify(), Ok(()));
        let json = serde_json::to_string(&report).expect("serialises");
        let back = Report::from_json(&json).expect("parses back");
        prop_assert_eq!(&back, &report);
        prop_assert_eq!(back.verify(), Ok(()));
        // The canonical bytes are exactly twelve lines.
        let canon = obs.canonical_bytes().expect("valid");
        prop_assert_eq!(canon.iter().filter(|&&b| b == b'\n').count(), 12);
        prop_assert_eq!(canon.last(), Some(&b'\n'));
    }

    #[test]
    fn any_changed_canonical_byte_fails(
        (kp, obs) in arb_observation(),
        pos in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let canon = obs.canonical_bytes().expect("valid");
        let sig = obs.sign(&kp).expect("signs");
        let mut changed = canon.clone();
        let i = pos.index(changed.len());
        changed[i] ^= flip;
        prop_assert!(verify_strict(&obs.key, &changed, &sig).is_err());
        prop_assert_eq!(verify_strict(&obs.key, &canon, &sig), Ok(()));
    }

    #[test]
    fn any_changed_signature_byte_fails(
        (kp, obs) in arb_observation(),
        pos in 0usize..64,
        flip in 1u8..=255,
    ) {
        let report = obs.into_report(&kp).expect("signs");
        let mut sig = b64u_decode(&report.sig).expect("b64u");
        sig[pos] ^= flip;
        let bad = Report { sig: b64u_encode(&sig), ..report };
        prop_assert!(matches!(bad.verify(), Err(ReportError::BadSignature(_))));
    }

    #[test]
    fn any_changed_key_byte_fails(
        (kp, obs) in arb_observation(),
        pos in 0usize..32,
        flip in 1u8..=255,
    ) {
        let report = obs.into_report(&kp).expect("signs");
        let mut key = b64u_decode(&report.obs.key).expect("b64u");
        key[pos] ^= flip;
        let mut bad = report.clone();
        bad.obs.key = b64u_encode(&key);
        // Still 32 bytes of b64u: the grammar holds, the signature fails
        // (either the key is not a valid point or it does not match).
        prop_assert!(matches!(bad.verify(), Err(ReportError::BadSignature(_))));
    }

    #[test]
    fn key_spelling_is_unique(seed in any::<[u8; 32]>()) {
        let kp = Keypair::from_seed(&seed);
        let pk = PublicKey::from_b64u(&kp.public_b64u()).expect("valid");
        prop_assert_eq!(pk.as_bytes(), &kp.public_bytes());
        prop_assert_eq!(pk.to_b64u(), kp.public_b64u());
    }

    #[test]
    fn normalize_title_is_idempotent_and_valid(s in arb_raw_title()) {
        let t = normalize_title(&s);
        prop_assert_eq!(normalize_title(&t), t.clone());
        prop_assert!(t.chars().count() <= 400);
        prop_assert!(!t.starts_with(' ') && !t.ends_with(' ') && !t.contains("  "));
        prop_assert!(!t.chars().any(|c| c.is_whitespace() && c != ' '));
    }

    #[test]
    fn b64u_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let s = b64u_encode(&bytes);
        prop_assert_eq!(b64u_decode(&s), Ok(bytes));
    }
}

//! One focused test per TRUST.md rule, plus properties.

use super::decision::{critical_reason, FRESH_VERIFICATION_MS};
use super::groups::established_groups;
use super::outcome::HOLD_TTL_MS;
use super::reputation::decay;
use super::*;
use crate::store::OfferStatus;
use proptest::prelude::*;
use wasm_core::types::Availability;

const NOW: i64 = 1_800_000_000_000;

fn established_rep() -> Reputation {
    let mut r = Reputation::new(NOW - 40 * DAY_MS);
    for _ in 0..30 {
        r.apply(Judgement::Confirmed, NOW - DAY_MS);
    }
    r
}

fn reporter(t: f64) -> Reporter {
    Reporter {
        trust: t,
        established: t >= ESTABLISHED_T,
        distrusted: false,
        registered_at: NOW - 10 * DAY_MS,
        verifier: false,
        within_crawl_limit: true,
        refuted_recently: false,
    }
}

fn published(price: i64, status: OfferStatus) -> Published {
    Published {
        reading: Reading::in_stock(price),
        status,
        observed_at: NOW - 3_600_000,
        last_verified_at: Some(NOW - 3_600_000),
    }
}

/// A verified published price whose verification is just too old to
/// answer a spot check of a report observed at `observed_at`.
fn stale_verified(price: i64, observed_at: i64) -> Published {
    let mut p = published(price, OfferStatus::Verified);
    p.last_verified_at = Some(observed_at - FRESH_VERIFICATION_MS - 1);
    p
}

/// A report of 9000 against a verified 10000, from an established key,
/// nobody watching, no crawl pending, draws that trigger nothing.
fn ctx() -> ReportContext {
    ReportContext {
        now: NOW,
        observed_at: NOW - 1000,
        reported: Reading::in_stock(9000),
        published: Some(published(10_000, OfferStatus::Verified)),
        verified_low: Some(8000),
        reporter: reporter(0.9),
        alerts: 0,
        crawl_pending: false,
        corroboration: 0.9,
        corroborating_groups: 1,
        spot_draw: 0.99,
        crawl_draw: 0.99,
    }
}

fn check(c: ReportContext, status: ReportStatus, reason: &str) -> Decision {
    let d = decide(&c);
    assert_eq!((d.status, d.reason), (status, reason), "{c:#?}\n{d:#?}");
    d
}

/// A drawn spot check (of 10000, against a stale verification) that a
/// pending crawl judges (attached, no crawl of its own) and that a fresh
/// verification answers at once; leaves `c` with that fresh verification.
fn pending_crawl_or_fresh_verification_answers(c: &mut ReportContext) {
    c.crawl_pending = true;
    let d = check(*c, ReportStatus::Accepted, "spot_check");
    assert!(d.attach && d.crawl.is_none() && !d.waits());
    c.crawl_pending = false;
    c.published = Some(published(10_000, OfferStatus::Verified));
    let d = check(*c, ReportStatus::Accepted, "spot_check_verified");
    assert_eq!(d.credit, Some(Judgement::Confirmed));
}

// ---- comparing prices ----

#[test]
fn agrees_uses_max_of_one_unit_and_half_a_percent() {
    assert!(agrees(1005, 1000));
    assert!(agrees(995, 1000));
    assert!(!agrees(1006, 1000));
    assert!(!agrees(994, 1000));
    assert!(agrees(2, 1), "one minor unit always agrees");
    assert!(agrees(100, 101));
    assert!(!agrees(98, 100));
    assert!(agrees(i64::MAX, i64::MAX));
    assert!(!agrees(i64::MIN, i64::MAX), "no overflow");
}

#[test]
fn readings_compare_price_and_availability() {
    let a = Reading::in_stock(1000);
    assert!(a.matches(&Reading::in_stock(1004)));
    let unknown = Reading {
        price: Some(1000),
        availability: Availability::Unknown,
    };
    assert!(a.matches(&unknown), "unknown never contradicts");
    let oos = Reading {
        price: None,
        availability: Availability::OutOfStock,
    };
    assert!(!a.matches(&oos));
    assert!(oos.matches(&oos));
    let oos_priced = Reading {
        price: Some(1000),
        availability: Availability::OutOfStock,
    };
    assert!(!a.matches(&oos_priced));
}

// ---- reputation ----

#[test]
fn reputation_figures() {
    let mut r = Reputation::new(NOW);
    assert!((r.score(NOW) - 0.13).abs() < 0.005, "{}", r.score(NOW));
    for i in 1..=30 {
        r.apply(Judgement::Confirmed, NOW);
        let t = r.score(NOW);
        match i {
            5 => assert!(t < ESTABLISHED_T && !r.established(NOW), "{t}"),
            6 => {
                assert!((t - 0.73).abs() < 0.01, "{t}");
                assert!(r.established(NOW));
            }
            30 => assert!((t - 0.93).abs() < 0.005, "{t}"),
            _ => {}
        }
    }
}

#[test]
fn evidence_decays_with_a_30_day_half_life() {
    assert_eq!(decay(0), 1.0);
    assert!((decay(HALF_LIFE_MS) - 0.5).abs() < 1e-12);
    assert!((decay(2 * HALF_LIFE_MS) - 0.25).abs() < 1e-12);
    assert_eq!(decay(-5), 1.0, "a clock that went back decays nothing");
    let mut r = Reputation::new(NOW);
    for _ in 0..6 {
        r.apply(Judgement::Confirmed, NOW);
    }
    let (a, b) = r.decayed(NOW + HALF_LIFE_MS);
    assert!((a - 4.0).abs() < 1e-9 && (b - 1.0).abs() < 1e-9, "{a} {b}");
    assert!(r.established(NOW) && !r.established(NOW + HALF_LIFE_MS));
    // Applying later evidence decays the old first: 1 + 6/2 + 1.
    r.apply(Judgement::Confirmed, NOW + HALF_LIFE_MS);
    assert!((r.alpha - 5.0).abs() < 1e-9);
    assert_eq!(r.evidence_at, NOW + HALF_LIFE_MS);
}

#[test]
fn distrust_by_beta_over_alpha_and_recovery() {
    let mut r = Reputation::new(NOW);
    r.apply(Judgement::Refuted, NOW);
    assert!(r.distrusted(NOW), "beta 2 > alpha 1");
    r.apply(Judgement::Confirmed, NOW);
    assert!(!r.distrusted(NOW), "alpha 2 = beta 2 is not distrust");
    r.apply(Judgement::NoEvidence, NOW);
    assert_eq!((r.alpha, r.beta), (2.0, 2.0), "no evidence changes nothing");
}

#[test]
fn distrust_by_two_severe_refutations_inside_the_half_life() {
    let mut r = established_rep();
    r.apply(Judgement::SevereRefuted, NOW);
    assert!(!r.distrusted(NOW), "one severe refutation of a trusted key");
    r.apply(Judgement::SevereRefuted, NOW + DAY_MS);
    let (a, b) = r.decayed(NOW + DAY_MS);
    assert!(a > b, "not by the beta > alpha rule");
    assert!(r.distrusted(NOW + DAY_MS));
    // The older one leaves the half-life window.
    assert!(!r.distrusted(NOW + HALF_LIFE_MS + 1));

    let mut far = established_rep();
    far.apply(Judgement::SevereRefuted, NOW);
    far.apply(Judgement::SevereRefuted, NOW + HALF_LIFE_MS);
    assert!(!far.distrusted(NOW + HALF_LIFE_MS), "30 days apart");
}

#[test]
fn judge_severe_mild_and_no_evidence() {
    let truth = Reading::in_stock(110_618);
    let parse_error = Reading::in_stock(111);
    assert_eq!(
        judge(&parse_error, &truth, false, false),
        Judgement::SevereRefuted
    );
    let off_by_10 = Reading::in_stock(99_556);
    assert_eq!(judge(&off_by_10, &truth, false, false), Judgement::Refuted);
    assert_eq!(
        judge(&off_by_10, &truth, false, true),
        Judgement::SevereRefuted,
        "it would have fired alerts"
    );
    assert_eq!(
        judge(&Reading::in_stock(110_100), &truth, false, true),
        Judgement::Confirmed
    );
    assert_eq!(judge(&off_by_10, &truth, true, true), Judgement::NoEvidence);
    assert_eq!(judge(&truth, &truth, true, false), Judgement::Confirmed);
    // Error exactly 50% is not over 50%.
    assert_eq!(
        judge(
            &Reading::in_stock(50),
            &Reading::in_stock(100),
            false,
            false
        ),
        Judgement::Refuted
    );
    assert_eq!(
        judge(
            &Reading::in_stock(49),
            &Reading::in_stock(100),
            false,
            false
        ),
        Judgement::SevereRefuted
    );
    let gone = Reading {
        price: None,
        availability: Availability::OutOfStock,
    };
    assert_eq!(judge(&truth, &gone, false, false), Judgement::Refuted);
    assert_eq!(judge(&truth, &gone, false, true), Judgement::SevereRefuted);
    assert_eq!(Judgement::SevereRefuted.neg(), SEVERE_NEG);
}

// ---- groups and corroboration ----

#[test]
fn groups_are_network_and_registration_day() {
    let net = [7u8; 16];
    let day0 = 20_000 * DAY_MS;
    assert_eq!(
        group_of(Some(net), day0 + 5, 1),
        group_of(Some(net), day0 + DAY_MS - 1, 2)
    );
    assert_ne!(
        group_of(Some(net), day0, 1),
        group_of(Some(net), day0 + DAY_MS, 1)
    );
    assert_ne!(
        group_of(Some(net), day0, 1),
        group_of(Some([8; 16]), day0, 1)
    );
    assert_eq!(group_of(None, day0, 42), GroupId::Key(42));
    assert_ne!(group_of(None, day0, 42), group_of(None, day0, 43));
}

#[test]
fn corroboration_counts_each_established_group_once() {
    let g1 = GroupId::Key(1);
    let g2 = GroupId::Key(2);
    let g3 = GroupId::Key(3);
    let one_group = [(g1, 0.8), (g1, 0.9), (g1, 0.85)];
    assert!((corroboration(&one_group) - 0.9).abs() < 1e-12);
    assert_eq!(established_groups(&one_group), 1);
    let two = [(g1, 0.8), (g2, 0.8), (g3, 0.5)];
    assert!((corroboration(&two) - 0.96).abs() < 1e-12);
    assert_eq!(established_groups(&two), 2);
    assert_eq!(corroboration(&[(g3, 0.69)]), 0.0);
    assert_eq!(corroboration(&[]), 0.0);
}

// ---- the decision, rule by rule ----

#[test]
fn observations_older_than_ten_minutes_are_history_only() {
    let mut c = ctx();
    c.observed_at = NOW - MAX_PUBLISH_AGE_MS - 1;
    c.alerts = 5;
    let d = check(c, ReportStatus::Stored, "too_old");
    assert!(d.publish.is_none() && !d.alert && d.crawl.is_none());
    c.reporter.verifier = true;
    check(c, ReportStatus::Stored, "too_old");
    c.observed_at = NOW - MAX_PUBLISH_AGE_MS;
    c.reporter.verifier = false;
    assert_ne!(decide(&c).reason, "too_old", "exactly 10 minutes is fresh");
}

#[test]
fn verifier_reports_are_ground_truth() {
    let mut c = ctx();
    c.reporter = reporter(0.13);
    c.reporter.verifier = true;
    c.reported = Reading::in_stock(100); // a 99% drop
    c.alerts = 500;
    let d = check(c, ReportStatus::Accepted, "verifier");
    assert_eq!(d.publish, Some(OfferStatus::Verified));
    assert!(d.alert && d.crawl.is_none());
    c.published = Some(Published {
        observed_at: NOW - 1000,
        ..published(10_000, OfferStatus::Verified)
    });
    c.observed_at = NOW - 2000;
    check(c, ReportStatus::Stored, "older_than_published");
}

#[test]
fn rule_1_agreeing_reports_refresh_and_are_spot_checked() {
    let mut c = ctx();
    c.reported = Reading::in_stock(10_040);
    let d = check(c, ReportStatus::Accepted, "agrees");
    assert!(d.refresh_last_seen && d.publish.is_none() && d.crawl.is_none() && !d.attach);

    // Spot checks: 5% on probation, 0.5% once established (the last
    // verification is older than a spot check may be answered from).
    c.published = Some(stale_verified(10_000, c.observed_at));
    c.reporter = reporter(0.5);
    c.spot_draw = 0.049;
    // (Drawn spot checks of a key with no recent severe refutation wait
    // instead: see the next test.)
    c.reporter.refuted_recently = true;
    let d = check(c, ReportStatus::Accepted, "spot_check");
    let crawl = d.crawl.expect("spot check crawl");
    assert!(d.attach && !crawl.critical && crawl.reason == "spot_check");
    c.spot_draw = 0.05;
    check(c, ReportStatus::Accepted, "agrees");
    c.reporter = reporter(0.9);
    c.reporter.refuted_recently = true;
    c.spot_draw = 0.0049;
    check(c, ReportStatus::Accepted, "spot_check");
    c.spot_draw = 0.005;
    check(c, ReportStatus::Accepted, "agrees");

    // A pending crawl serves the spot check.
    c.spot_draw = 0.0;
    c.crawl_pending = true;
    let d = check(c, ReportStatus::Accepted, "spot_check");
    assert!(d.attach && d.crawl.is_none());

    // A fresh verification answers it at once.
    let mut p = published(10_000, OfferStatus::Verified);
    p.last_verified_at = Some(c.observed_at - FRESH_VERIFICATION_MS);
    c.published = Some(p);
    let d = check(c, ReportStatus::Accepted, "spot_check_verified");
    assert_eq!(d.credit, Some(Judgement::Confirmed));
    assert!(d.crawl.is_none() && !d.attach);
    // ... but not from a provisional or confirmed value (a report moved it).
    p.status = OfferStatus::Confirmed;
    c.published = Some(p);
    let d = check(c, ReportStatus::Accepted, "spot_check");
    assert!(d.attach && d.credit.is_none());
}

#[test]
fn rule_1_spot_checks_of_keys_with_no_recent_severe_refutation_wait() {
    let mut c = ctx();
    c.reported = Reading::in_stock(10_000);
    c.published = Some(stale_verified(10_000, c.observed_at));
    c.spot_draw = 0.0;
    for t in [0.13, 0.5, 0.9] {
        c.reporter = reporter(t);
        // Nothing answers it and nothing is pending: no crawl of its own,
        // it waits for the product's next crawl.
        let d = check(c, ReportStatus::Accepted, "spot_check_waiting");
        assert!(d.crawl.is_none() && !d.attach && d.credit.is_none() && d.waits());
        assert!(d.refresh_last_seen && d.publish.is_none());
        // Judged against the published reading it agreed with.
        let verified = Some(Reading::in_stock(9_000));
        assert_eq!(
            WaitingReport::before_for(&d, verified, Some(c.reported)),
            Some(c.reported)
        );
        // A severe refutation inside the half-life: its own crawl, as before.
        c.reporter.refuted_recently = true;
        let d = check(c, ReportStatus::Accepted, "spot_check");
        assert!(d.attach && d.crawl.is_some_and(|r| r.reason == "spot_check"));
        assert!(!d.waits());
    }
    // A pending crawl judges it (attached), a fresh verification answers it.
    c.reporter = reporter(0.5);
    pending_crawl_or_fresh_verification_answers(&mut c);
    // An echo of a provisional value waits the same way.
    c.published = Some(published(10_000, OfferStatus::Provisional));
    check(c, ReportStatus::Accepted, "spot_check_waiting");
}

#[test]
fn refuted_recently_is_a_severe_refutation_inside_the_half_life() {
    let mut r = established_rep();
    assert!(!r.refuted_recently(NOW));
    r.apply(Judgement::Refuted, NOW);
    assert!(!r.refuted_recently(NOW), "a mild refutation does not count");
    r.apply(Judgement::SevereRefuted, NOW);
    assert!(r.refuted_recently(NOW));
    assert!(r.refuted_recently(NOW + HALF_LIFE_MS - 1));
    assert!(!r.refuted_recently(NOW + HALF_LIFE_MS));
    let rep = Reporter::from_reputation(&r, NOW + DAY_MS, NOW - 90 * DAY_MS, true);
    assert!(rep.refuted_recently && !rep.distrusted);
}

#[test]
fn rule_1_a_distrusted_keys_spot_check_never_queues_a_crawl() {
    let mut c = ctx();
    c.reported = Reading::in_stock(10_000);
    c.published = Some(stale_verified(10_000, c.observed_at));
    c.reporter = reporter(0.0);
    c.reporter.distrusted = true;
    c.spot_draw = 0.0;
    let d = check(c, ReportStatus::Accepted, "spot_check_skipped");
    assert!(d.crawl.is_none() && !d.attach && d.credit.is_none());
    // It waits for the product's next crawl, whatever queues it.
    assert!(d.waits());
    // A pending crawl still judges it (free), and so does a fresh verification.
    pending_crawl_or_fresh_verification_answers(&mut c);
    // An undrawn one is plain agreement.
    c.spot_draw = 0.06;
    check(c, ReportStatus::Accepted, "agrees");
}

#[test]
fn waiting_reports_are_judged_by_the_next_crawl_when_it_brackets_them() {
    use super::outcome::WAITING_HORIZON_MS;
    let w = WaitingReport {
        reading: Reading::in_stock(1),
        observed_at: NOW - 10 * MINUTE_MS,
        alerts: 2,
        before: Some(Reading::in_stock(10_000)),
    };
    // Verified 10,000 before, crawled 10,000 after: the penny was a lie.
    assert_eq!(
        judge_waiting(&w, &Reading::in_stock(10_000), NOW),
        Judgement::SevereRefuted
    );
    // Mild when it would not have alerted and errs by under 50%.
    let mild = WaitingReport {
        reading: Reading::in_stock(11_000),
        alerts: 0,
        ..w
    };
    assert_eq!(
        judge_waiting(&mild, &Reading::in_stock(10_000), NOW),
        Judgement::Refuted
    );
    // The crawl shows what the report said: confirmed.
    assert_eq!(
        judge_waiting(&w, &Reading::in_stock(1), NOW),
        Judgement::Confirmed
    );
    // The crawl shows a third price: the penny matches neither side, judged.
    assert_eq!(
        judge_waiting(&w, &Reading::in_stock(9_000), NOW),
        Judgement::SevereRefuted
    );
    // It said what the verifier saw before and the price moved: no evidence.
    let echo = WaitingReport {
        reading: Reading::in_stock(10_000),
        ..w
    };
    assert_eq!(
        judge_waiting(&echo, &Reading::in_stock(9_000), NOW),
        Judgement::NoEvidence
    );
    // No verified price before the report: no evidence.
    let unbracketed = WaitingReport { before: None, ..w };
    assert_eq!(
        judge_waiting(&unbracketed, &Reading::in_stock(10_000), NOW),
        Judgement::NoEvidence
    );
    // Past the horizon nobody is judged, even a match.
    let old = WaitingReport {
        observed_at: NOW - WAITING_HORIZON_MS - 1,
        ..w
    };
    assert_eq!(
        judge_waiting(&old, &Reading::in_stock(10_000), NOW),
        Judgement::NoEvidence
    );
    assert_eq!(
        judge_waiting(&old, &Reading::in_stock(1), NOW),
        Judgement::NoEvidence
    );
}

#[test]
fn waiting_reports_crawled_over_30_minutes_later_are_refuted_mildly_at_most() {
    use super::outcome::STALE_REPORT_MS;
    // A short real deal (10,000 -> 6,000 -> 10,000) reported by a limited
    // or distrusted key, crawled hours later: neither side matches.
    let deal = WaitingReport {
        reading: Reading::in_stock(6_000),
        observed_at: NOW - 5 * 3_600_000,
        alerts: 3,
        before: Some(Reading::in_stock(10_000)),
    };
    assert_eq!(
        judge_waiting(&deal, &Reading::in_stock(10_000), NOW),
        Judgement::Refuted
    );
    // A penny (over 50% off) too, once stale.
    let penny = WaitingReport {
        reading: Reading::in_stock(1),
        observed_at: NOW - STALE_REPORT_MS - 1,
        ..deal
    };
    assert_eq!(
        judge_waiting(&penny, &Reading::in_stock(10_000), NOW),
        Judgement::Refuted
    );
    // Within 30 minutes it stays severe.
    let fresh = WaitingReport {
        observed_at: NOW - STALE_REPORT_MS,
        ..penny
    };
    assert_eq!(
        judge_waiting(&fresh, &Reading::in_stock(10_000), NOW),
        Judgement::SevereRefuted
    );
    // Mild still distrusts a key with no positive evidence (one lie of a
    // fresh key), not one with a little.
    let mut fresh_key = Reputation::new(NOW - DAY_MS);
    fresh_key.apply(Judgement::Refuted, NOW);
    assert!(fresh_key.distrusted(NOW));
    let mut known = Reputation::new(NOW - 10 * DAY_MS);
    known.apply(Judgement::Confirmed, NOW - DAY_MS);
    known.apply(Judgement::Confirmed, NOW - DAY_MS);
    known.apply(Judgement::Refuted, NOW);
    assert!(!known.distrusted(NOW));
    // Confirmed when the crawl shows it, however late.
    assert_eq!(
        judge_waiting(&deal, &Reading::in_stock(6_000), NOW),
        Judgement::Confirmed
    );
}

#[test]
fn an_agreeing_waiting_report_is_judged_against_the_published_reading() {
    let mut c = ctx();
    c.reported = Reading::in_stock(9_000);
    // A provisional 9,000 published after a verified 10,000.
    c.published = Some(published(9_000, OfferStatus::Provisional));
    c.reporter = reporter(0.0);
    c.reporter.distrusted = true;
    c.spot_draw = 0.0;
    let d = check(c, ReportStatus::Accepted, "spot_check_skipped");
    let verified = Some(Reading::in_stock(10_000));
    let shown = Some(Reading::in_stock(9_000));
    let before = WaitingReport::before_for(&d, verified, shown);
    assert_eq!(before, shown);
    let w = WaitingReport {
        reading: c.reported,
        observed_at: c.observed_at,
        alerts: 0,
        before,
    };
    // The price moved on by the next crawl: no evidence, not a refutation.
    assert_eq!(
        judge_waiting(&w, &Reading::in_stock(8_000), NOW),
        Judgement::NoEvidence
    );
    assert_eq!(
        judge_waiting(&w, &Reading::in_stock(9_000), NOW),
        Judgement::Confirmed
    );
    // A deviating report keeps the verifier's reading as its before.
    c.reported = Reading::in_stock(5_000);
    let d = check(c, ReportStatus::Stored, "distrusted_key");
    assert!(d.waits());
    assert_eq!(WaitingReport::before_for(&d, verified, shown), verified);
}

#[test]
fn rule_1_independent_established_agreement_confirms_a_provisional_price() {
    let mut c = ctx();
    c.published = Some(published(10_000, OfferStatus::Provisional));
    c.reported = Reading::in_stock(10_000);
    c.corroborating_groups = 2;
    c.corroboration = 0.96;
    c.alerts = 1;
    let d = check(c, ReportStatus::Accepted, "corroborated");
    assert_eq!(d.publish, Some(OfferStatus::Confirmed));
    assert!(d.alert, "1 * 0.04 <= 0.05");
    c.corroborating_groups = 1;
    let d = check(c, ReportStatus::Accepted, "agrees");
    assert!(d.publish.is_none() && !d.alert);
    // A pending crawl decides instead.
    c.corroborating_groups = 3;
    c.crawl_pending = true;
    let d = check(c, ReportStatus::Accepted, "agrees");
    assert!(d.publish.is_none() && !d.alert);
}

#[test]
fn probation_keys_over_their_crawl_limit_trigger_no_crawl() {
    let mut c = ctx();
    c.reporter = reporter(0.3);
    c.reporter.within_crawl_limit = false;
    c.reported = Reading::in_stock(1);
    let d = check(c, ReportStatus::Stored, "crawl_limit");
    assert!(d.crawl.is_none() && d.publish.is_none() && !d.attach);
    c.reported = Reading::in_stock(8000);
    c.alerts = 2;
    check(c, ReportStatus::Stored, "crawl_limit");
    // Low impact changes are not published unchecked either ...
    c.alerts = 0;
    c.reported = Reading::in_stock(9000);
    let d = check(c, ReportStatus::Stored, "crawl_limit");
    assert!(d.crawl.is_none() && d.publish.is_none());
    // ... but a cold start still publishes, without a crawl.
    c.published = None;
    let d = check(c, ReportStatus::Provisional, "cold_start");
    assert!(d.crawl.is_none() && !d.attach);
    // Established keys are not limited.
    c.published = Some(published(10_000, OfferStatus::Verified));
    c.reporter = reporter(0.9);
    c.reporter.within_crawl_limit = false;
    c.reported = Reading::in_stock(1);
    check(c, ReportStatus::Held, "critical_drop");
    // Nor is a safe rule-6 publication, corroborated by established groups.
    c.reporter = reporter(0.3);
    c.reporter.within_crawl_limit = false;
    c.reported = Reading::in_stock(8500);
    c.alerts = 1;
    c.corroboration = 0.96;
    c.corroborating_groups = 2;
    check(c, ReportStatus::Accepted, "safe_to_alert");
}

#[test]
fn reports_older_than_the_published_observation_are_history_only() {
    let mut c = ctx();
    c.reported = Reading::in_stock(9000);
    // Older than the published one but fresh (10 minutes).
    c.published = Some(Published {
        observed_at: NOW - 1000,
        ..published(10_000, OfferStatus::Verified)
    });
    c.observed_at = NOW - 2000;
    check(c, ReportStatus::Stored, "older_than_published");
}

#[test]
fn rule_2_distrusted_keys_are_stored_only() {
    let mut c = ctx();
    c.reporter.distrusted = true;
    c.reported = Reading::in_stock(1); // would be critical
    c.alerts = 10;
    let d = check(c, ReportStatus::Stored, "distrusted_key");
    assert!(d.crawl.is_none() && !d.attach && d.publish.is_none());
    // ... but their agreeing reports still count (and are spot checked).
    c.reported = Reading::in_stock(10_000);
    check(c, ReportStatus::Accepted, "agrees");
}

#[test]
fn rule_2b_separator_misreads_are_recognised_by_shape() {
    use super::decision::{looks_misread, MISREAD_MIN};
    let p = Reading::in_stock(110_618); // 1,106.18
                                        // Divided by 100 or 1,000, cut or rounded; multiplied exactly.
    for x in [1_106, 1_107, 110, 111, 11_061_800, 110_618_000] {
        assert!(looks_misread(&Reading::in_stock(x), &p), "{x}");
    }
    // Other drops and rises, a real 90% deal, the price itself.
    for x in [
        11_061, 11_062, 1_105, 1_108, 112, 109, 55_309, 11_061_801, 110_618,
    ] {
        assert!(!looks_misread(&Reading::in_stock(x), &p), "{x}");
    }
    // Under the minimum (a penny bomb on a cheap product) it is not one.
    let cheap = Reading::in_stock(1_499);
    assert!(looks_misread(&Reading::in_stock(MISREAD_MIN + 5), &cheap));
    assert!(!looks_misread(
        &Reading::in_stock(1),
        &Reading::in_stock(150)
    ));
    assert!(!looks_misread(
        &Reading::in_stock(MISREAD_MIN - 1),
        &Reading::in_stock(999)
    ));
    // A different availability, or no price on either side.
    let mut out = Reading::in_stock(1_106);
    out.availability = Availability::OutOfStock;
    assert!(!looks_misread(&out, &p));
    let none = Reading {
        price: None,
        availability: Availability::InStock,
    };
    assert!(!looks_misread(&none, &p) && !looks_misread(&p, &none));
    // No overflow at the extremes.
    assert!(!looks_misread(
        &Reading::in_stock(i64::MAX),
        &Reading::in_stock(i64::MAX / 7)
    ));
}

#[test]
fn rule_2b_a_misread_is_stored_only_unless_established_groups_agree() {
    let mut c = ctx();
    c.reported = Reading::in_stock(100); // 10,000 read with the separator lost
    c.alerts = 10; // would be critical and alerting
    c.corroborating_groups = 1;
    let d = check(c, ReportStatus::Stored, "looks_misread");
    assert!(d.crawl.is_none() && !d.attach && d.publish.is_none() && !d.alert);
    assert!(!d.waits(), "nothing judges it");
    assert!(d.credit.is_none() && d.escalate.is_none());
    // Not even attached to a pending crawl, whoever sends it.
    c.crawl_pending = true;
    c.reporter = reporter(0.1);
    check(c, ReportStatus::Stored, "looks_misread");
    // Two established groups saw it: the rules decide (here rule 3).
    c.corroborating_groups = 2;
    check(c, ReportStatus::Held, "attached_to_crawl");
    c.crawl_pending = false;
    c.reporter = reporter(0.9);
    check(c, ReportStatus::Held, "critical_drop");
    // A distrusted key stays under rule 2; a verifier is ground truth.
    c.corroborating_groups = 1;
    c.reporter.distrusted = true;
    check(c, ReportStatus::Stored, "distrusted_key");
    c.reporter = reporter(0.9);
    c.reporter.verifier = true;
    check(c, ReportStatus::Accepted, "verifier");
    // Nothing published: nothing to misread (cold start).
    c.reporter.verifier = false;
    c.published = None;
    check(c, ReportStatus::Provisional, "cold_start");
}

#[test]
fn rule_3_reports_attach_to_the_pending_crawl() {
    let mut c = ctx();
    c.crawl_pending = true;
    c.reported = Reading::in_stock(1);
    c.alerts = 100;
    let d = check(c, ReportStatus::Held, "attached_to_crawl");
    assert!(d.attach && d.crawl.is_none() && d.publish.is_none() && !d.alert);
}

#[test]
fn rule_3_attached_reports_carry_the_crawl_they_are_owed() {
    let mut c = ctx();
    c.crawl_pending = true;
    c.corroboration = 0.0;
    // A critical report (a drop over 50%) from an established key asks for
    // a top-priority critical crawl ...
    c.reported = Reading::in_stock(4000);
    c.alerts = 7;
    let d = check(c, ReportStatus::Held, "attached_to_crawl");
    let want = d.escalate.expect("escalation");
    assert!(want.critical);
    assert_eq!(want.priority, 7.0 + 10.0 + 1.0);
    // ... which raises a pending spot check (priority 1, not critical).
    let spot = JobPriority {
        priority: 1.0,
        critical: false,
    };
    assert_eq!(
        escalate(spot, &want),
        Some(JobPriority {
            priority: 18.0,
            critical: true
        })
    );
    // A non-critical alerting change asks for its exposure, not critical.
    c.reported = Reading::in_stock(9000);
    c.alerts = 3;
    let want = decide(&c).escalate.expect("escalation");
    assert!(!want.critical);
    assert_eq!(want.priority, 4.0);
    // A key on probation over its crawl-trigger limit raises nothing.
    c.reporter = reporter(0.3);
    c.reporter.within_crawl_limit = false;
    c.reported = Reading::in_stock(1);
    let d = check(c, ReportStatus::Held, "attached_to_crawl");
    assert!(d.escalate.is_none() && d.attach);
    // Other rules never ask for an escalation.
    assert!(decide(&ctx()).escalate.is_none());
}

#[test]
fn escalation_never_lowers_a_pending_crawl() {
    let high = JobPriority {
        priority: 30.0,
        critical: true,
    };
    let low = CrawlRequest {
        priority: 1.0,
        critical: false,
        reason: "spot_check",
    };
    assert_eq!(escalate(high, &low), None, "nothing to raise");
    let normal = JobPriority {
        priority: 5.0,
        critical: false,
    };
    let critical_low = CrawlRequest {
        priority: 11.0,
        critical: true,
        reason: "critical",
    };
    assert_eq!(
        escalate(normal, &critical_low),
        Some(JobPriority {
            priority: 11.0,
            critical: true
        })
    );
    let critical_job = JobPriority {
        priority: 40.0,
        critical: true,
    };
    assert_eq!(
        escalate(critical_job, &critical_low),
        None,
        "keeps the higher"
    );
}

#[test]
fn crawl_trigger_limits_per_key_and_per_group() {
    use super::limits::*;
    let none = TriggerCounts::default();
    assert!(within_crawl_limit(none, none));
    // Per key: one unresolved crawl, three a day.
    let open = TriggerCounts {
        open: KEY_OPEN_CRAWLS,
        last_day: 1,
    };
    assert!(!within_crawl_limit(open, open));
    let busy_day = TriggerCounts {
        open: 0,
        last_day: KEY_CRAWLS_PER_DAY,
    };
    assert!(!within_crawl_limit(busy_day, busy_day));
    // A fresh key of a group whose other fresh keys used the group's
    // allowance may not trigger, though it triggered nothing itself.
    let group_open = TriggerCounts {
        open: GROUP_OPEN_CRAWLS,
        last_day: GROUP_OPEN_CRAWLS,
    };
    assert!(!within_crawl_limit(none, group_open));
    let group_day = TriggerCounts {
        open: 0,
        last_day: GROUP_CRAWLS_PER_DAY,
    };
    assert!(!within_crawl_limit(none, group_day));
    let group_some = TriggerCounts {
        open: GROUP_OPEN_CRAWLS - 1,
        last_day: GROUP_CRAWLS_PER_DAY - 1,
    };
    assert!(within_crawl_limit(none, group_some));
    // The group allows more than one open crawl: one member's crawl
    // pending, another member may still trigger one.
    let one_open = TriggerCounts {
        open: KEY_OPEN_CRAWLS,
        last_day: 1,
    };
    assert!(within_crawl_limit(none, one_open));
    assert_eq!((GROUP_OPEN_CRAWLS, GROUP_CRAWLS_PER_DAY), (2, 2));
}

#[test]
fn rule_3a_cold_start_publishes_provisionally_and_crawls() {
    let mut c = ctx();
    c.published = None;
    c.reporter = reporter(0.13);
    c.alerts = 3;
    c.corroboration = 0.0;
    let d = check(c, ReportStatus::Provisional, "cold_start");
    assert_eq!(d.publish, Some(OfferStatus::Provisional));
    assert!(!d.alert && d.attach);
    let crawl = d.crawl.expect("crawl");
    assert!(!crawl.critical);
    assert_eq!(crawl.priority, 4.0);
}

#[test]
fn rule_4_critical_reports_are_held_with_a_top_priority_crawl() {
    let base = ctx();
    type Tweak = fn(&mut ReportContext);
    let cases: [(Tweak, &str); 4] = [
        (|c| c.reported = Reading::in_stock(4999), "critical_drop"),
        (
            |c| c.reported = Reading::in_stock(6399),
            "below_verified_low",
        ),
        (
            |c| {
                c.alerts = 51;
                c.reported = Reading::in_stock(9900);
            },
            "many_watchers",
        ),
        (
            |c| {
                c.alerts = 1;
                c.reporter.registered_at = NOW - YOUNG_KEY_MS + 1;
            },
            "young_key_alerting",
        ),
    ];
    for (tweak, reason) in cases {
        let mut c = base;
        tweak(&mut c);
        let d = check(c, ReportStatus::Held, reason);
        let crawl = d.crawl.expect("crawl");
        assert!(crawl.critical && d.attach && d.publish.is_none() && !d.alert);
        assert_eq!(
            crawl.priority,
            f64::from(c.alerts) * (1.0 - c.corroboration) + 11.0
        );
    }
    // The edges are not critical.
    let mut c = base;
    c.reported = Reading::in_stock(5000);
    c.verified_low = Some(6250);
    assert_eq!(critical_reason(&c), None, "50% exactly, 0.8 x low exactly");
    c.alerts = 50;
    c.reporter.registered_at = NOW - YOUNG_KEY_MS;
    assert_eq!(critical_reason(&c), None);
}

#[test]
fn rule_5_low_impact_changes_publish_provisionally() {
    let mut c = ctx();
    c.reported = Reading::in_stock(13_000); // +30%
    c.crawl_draw = 0.19;
    let d = check(c, ReportStatus::Provisional, "low_impact");
    assert_eq!(d.publish, Some(OfferStatus::Provisional));
    assert!(!d.alert && d.attach);
    assert_eq!(
        d.crawl.map(|k| (k.priority, k.critical)),
        Some((1.0, false))
    );
    c.crawl_draw = 0.2;
    let d = check(c, ReportStatus::Provisional, "low_impact");
    assert!(d.crawl.is_none() && !d.attach, "80% of established changes");
    // Probation: always crawled, within the key's limit.
    c.reporter = reporter(0.5);
    let d = check(c, ReportStatus::Provisional, "low_impact");
    assert!(d.crawl.is_some());
    c.reporter.within_crawl_limit = false;
    let d = check(c, ReportStatus::Stored, "crawl_limit");
    assert!(d.crawl.is_none() && d.publish.is_none());
    // Over 30% is not low impact.
    c.reporter.within_crawl_limit = true;
    c.reported = Reading::in_stock(13_001);
    check(c, ReportStatus::Held, "unsafe_to_alert");
}

#[test]
fn rule_6_alert_only_when_exposure_is_small_and_not_one_key_alone() {
    let mut c = ctx();
    c.reported = Reading::in_stock(8500);
    c.alerts = 1;
    c.corroboration = 0.96;
    c.corroborating_groups = 2;
    let d = check(c, ReportStatus::Accepted, "safe_to_alert");
    assert_eq!(d.publish, Some(OfferStatus::Confirmed));
    assert!(d.alert && d.attach);
    let crawl = d.crawl.expect("confirming crawl");
    assert!(!crawl.critical && crawl.reason == "confirm");

    // One key alone never qualifies, however trusted.
    c.corroboration = 0.99;
    c.corroborating_groups = 1;
    let d = check(c, ReportStatus::Held, "unsafe_to_alert");
    assert!(d.publish.is_none() && !d.alert && d.crawl.is_some());

    // A (1 - c) > 0.05.
    c.corroborating_groups = 3;
    c.corroboration = 0.96;
    c.alerts = 2;
    check(c, ReportStatus::Held, "unsafe_to_alert");
    c.corroboration = 0.99;
    check(c, ReportStatus::Accepted, "safe_to_alert");
}

#[test]
fn crawl_priority_and_reserved_share() {
    assert_eq!(crawl_priority(0, 0.0, false), 1.0);
    assert_eq!(crawl_priority(10, 0.5, true), 16.0);
    assert_eq!(crawl_priority(4, 2.0, false), 1.0, "c is clamped");
    assert_eq!(reserved_critical_slots(0), 0);
    assert_eq!(reserved_critical_slots(1), 1);
    assert_eq!(reserved_critical_slots(10), 2);
    assert_eq!(reserved_critical_slots(11), 3);

    let job = |priority, critical, enqueued_at| QueuedJob {
        priority,
        critical,
        enqueued_at,
    };
    let mut q: Vec<QueuedJob> = (0..20).map(|i| job(40.0, false, i)).collect();
    q.extend((0..5).map(|i| job(11.0, true, 100 + i)));
    let picked = pick_jobs(&q, 10);
    assert_eq!(picked.len(), 10);
    assert_eq!(picked[..2], [20, 21], "reserved slots: oldest critical");
    assert_eq!(picked[2..], [0, 1, 2, 3, 4, 5, 6, 7]);
    // Without critical work the whole capacity serves the rest.
    assert_eq!(pick_jobs(&q[..20], 3), vec![0, 1, 2]);
    // Critical jobs also compete for the unreserved share.
    let q2 = vec![job(1.0, false, 0), job(12.0, true, 1), job(11.0, true, 2)];
    assert_eq!(pick_jobs(&q2, 2), vec![1, 2]);
    assert_eq!(pick_jobs(&q2, 0), Vec::<usize>::new());
}

#[test]
fn spot_check_rates_and_refresh_intervals() {
    assert_eq!(spot_check_rate(0.13), 0.05);
    assert_eq!(spot_check_rate(0.6999), 0.05);
    assert_eq!(spot_check_rate(0.7), 0.005);
    assert!(spot_check(0.5, 0.0499) && !spot_check(0.5, 0.05));
    assert!(spot_check(0.9, 0.0049) && !spot_check(0.9, 0.005));
    assert_eq!(refresh_interval(0), DAY_MS);
    assert_eq!(refresh_interval(49), DAY_MS);
    assert_eq!(refresh_interval(50), 6 * 3_600_000);
}

// ---- crawl outcomes ----

fn attached(price: i64, alerts: u32) -> AttachedReport {
    AttachedReport {
        reading: Reading::in_stock(price),
        observed_at: NOW - 60_000,
        alerts,
        agreed_with_verified: false,
        backed_published: false,
    }
}

fn result(outcome: CrawlOutcome, published: Option<Published>) -> CrawlResult {
    CrawlResult {
        outcome,
        now: NOW,
        enqueued_at: NOW - 90_000,
        attempts: 1,
        published,
    }
}

#[test]
fn rule_7_confirmed_crawl_publishes_verified_and_credits() {
    let r = result(
        CrawlOutcome::Observed(Reading::in_stock(4000)),
        Some(published(10_000, OfferStatus::Verified)),
    );
    let res = resolve(&r, &[attached(4000, 3), attached(4010, 0)]);
    assert_eq!(res.kind, ResolutionKind::Confirmed);
    assert_eq!(res.reason, "crawl_confirmed");
    assert_eq!(res.publish, Some(Reading::in_stock(4000)));
    assert!(res.alert, "held alerts are released");
    assert_eq!(
        res.correction, None,
        "the verified price moved, not refuted"
    );
    assert_eq!(res.judgements, vec![Judgement::Confirmed; 2]);
}

#[test]
fn rule_7_refuted_crawl_penalises_and_corrects() {
    let r = result(
        CrawlOutcome::Observed(Reading::in_stock(10_000)),
        Some(Published {
            observed_at: NOW - 120_000,
            ..published(9000, OfferStatus::Confirmed)
        }),
    );
    let mut moved = attached(12_000, 0);
    moved.agreed_with_verified = true;
    let res = resolve(
        &r,
        &[
            attached(1, 5),
            attached(9000, 0),
            attached(10_000, 2),
            moved,
        ],
    );
    assert_eq!(res.kind, ResolutionKind::Refuted);
    assert_eq!(res.reason, "crawl_refuted");
    assert_eq!(res.publish, Some(Reading::in_stock(10_000)));
    assert_eq!(
        res.judgements,
        vec![
            Judgement::SevereRefuted,
            Judgement::Refuted,
            Judgement::Confirmed,
            Judgement::NoEvidence
        ]
    );
    assert_eq!(
        res.correction,
        Some(Correction {
            refuted_price: 9000,
            corrected_price: Some(10_000),
            since: NOW - 120_000,
        })
    );
}

#[test]
fn rule_7_stale_reports_are_credited_but_not_penalised() {
    use super::outcome::STALE_REPORT_MS;
    let r = result(CrawlOutcome::Observed(Reading::in_stock(4000)), None);
    let mut old_wrong = attached(5000, 1);
    old_wrong.observed_at = NOW - STALE_REPORT_MS - 1;
    let mut old_right = attached(4000, 1);
    old_right.observed_at = NOW - STALE_REPORT_MS - 1;
    let mut fresh_wrong = attached(5000, 1);
    fresh_wrong.observed_at = NOW - STALE_REPORT_MS;
    let res = resolve(&r, &[old_wrong, old_right, fresh_wrong]);
    assert_eq!(
        res.judgements,
        vec![
            Judgement::NoEvidence,
            Judgement::Confirmed,
            Judgement::SevereRefuted
        ]
    );
}

#[test]
fn rule_7_failed_crawls_retry_twice_then_give_up() {
    for outcome in [
        CrawlOutcome::Failed,
        CrawlOutcome::Captcha,
        CrawlOutcome::Blocked,
    ] {
        let mut r = result(outcome, None);
        let res = resolve(&r, &[attached(1, 1)]);
        assert_eq!(res.kind, ResolutionKind::Retry { at: NOW + 60_000 });
        assert_eq!(res.judgements, vec![Judgement::NoEvidence]);
        assert!(res.publish.is_none() && !res.alert);
        r.attempts = 2;
        let res = resolve(&r, &[]);
        assert_eq!(res.kind, ResolutionKind::Retry { at: NOW + 120_000 });
        r.attempts = 3;
        let res = resolve(&r, &[]);
        assert_eq!(
            res.kind,
            ResolutionKind::GiveUp {
                holds_expire_at: r.enqueued_at + HOLD_TTL_MS
            }
        );
        assert_eq!(res.reason, "crawl_gave_up");
    }
    let res = resolve(&result(CrawlOutcome::NotFound, None), &[attached(5, 1)]);
    assert_eq!(
        res.kind,
        ResolutionKind::GiveUp {
            holds_expire_at: NOW
        }
    );
    assert_eq!(res.judgements, vec![Judgement::NoEvidence]);
}

// ---- drift ----

#[test]
fn drift_uses_a_weighted_median_of_established_groups() {
    let g = GroupId::Key;
    let agree = [(g(1), 0.9, 1000), (g(2), 0.8, 1000), (g(3), 0.75, 1001)];
    assert_eq!(drift(&agree, 1000), None);
    assert_eq!(drift(&agree, 1009), None, "within 1%");
    assert_eq!(drift(&agree, 900), Some(1000));
    // Dispersed reports: the gap must beat 3 MAD.
    let spread = [(g(1), 0.9, 1000), (g(2), 0.9, 1100), (g(3), 0.9, 1200)];
    assert_eq!(drift(&spread, 1050), None);
    assert_eq!(drift(&spread, 500), Some(1100));
    // One group of many keys counts once; unestablished keys not at all.
    let swarm = [
        (g(9), 0.95, 500),
        (g(9), 0.9, 500),
        (g(9), 0.9, 500),
        (g(1), 0.8, 1000),
        (g(2), 0.8, 1000),
        (g(5), 0.5, 500),
        (g(6), 0.5, 500),
    ];
    assert_eq!(drift(&swarm, 1000), None);
    assert_eq!(drift(&[(g(1), 0.9, 10)], 1000), None, "one group alone");
}

#[test]
fn drift_dispatches_after_thirty_minutes() {
    let mut t = DriftTimer::default();
    assert!(!t.update(true, NOW));
    assert!(!t.update(true, NOW + 29 * MINUTE_MS));
    assert!(t.update(true, NOW + 30 * MINUTE_MS));
    assert!(
        !t.update(true, NOW + 31 * MINUTE_MS),
        "restarts after dispatch"
    );
    assert!(!t.update(false, NOW + 40 * MINUTE_MS));
    assert!(!t.update(true, NOW + 41 * MINUTE_MS));
    assert!(!t.update(true, NOW + 70 * MINUTE_MS));
    assert!(t.update(true, NOW + 71 * MINUTE_MS));
}

// ---- properties ----

proptest! {
    #[test]
    fn decay_is_monotonic(a in 0i64..10 * HALF_LIFE_MS, b in 0i64..10 * HALF_LIFE_MS) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(decay(lo) >= decay(hi));
        prop_assert!(decay(hi) > 0.0 && decay(lo) <= 1.0);
    }

    #[test]
    fn score_is_in_unit_interval(alpha in 0.0f64..1e6, beta in 0.0f64..1e6) {
        let t = trust_score(alpha, beta);
        prop_assert!((0.0..=1.0).contains(&t));
    }

    #[test]
    fn evidence_moves_the_score_the_right_way(
        pos in 0u32..50, neg in 0u32..10, age in 0i64..HALF_LIFE_MS,
    ) {
        let mut r = Reputation::new(NOW);
        for _ in 0..pos { r.apply(Judgement::Confirmed, NOW); }
        for _ in 0..neg { r.apply(Judgement::Refuted, NOW); }
        let t = NOW + age;
        let before = r.score(t);
        let mut up = r;
        up.apply(Judgement::Confirmed, t);
        let mut down = r;
        down.apply(Judgement::Refuted, t);
        prop_assert!(up.score(t) >= before && down.score(t) <= before);
        prop_assert!(up.score(t) > down.score(t));
    }

    #[test]
    fn agrees_is_reflexive_and_nearly_symmetric(x in 0i64..1_000_000_000, y in 0i64..1_000_000_000) {
        prop_assert!(agrees(x, x));
        if agrees(x, y) {
            // The tolerance is relative to y; seen from x it is within
            // 1/199 (< 0.51%).
            let d = (x - y).abs();
            prop_assert!(d <= 1 || 10_000 * i128::from(d) <= 51 * i128::from(x));
        }
    }

    #[test]
    fn decide_never_alerts_on_unpublished_or_stale_reports(
        price in 1i64..1_000_000, p in 1i64..1_000_000, alerts in 0u32..200,
        c in 0.0f64..1.0, groups in 0usize..4, t in 0.0f64..1.0,
        age in 0i64..2 * MAX_PUBLISH_AGE_MS, pending in any::<bool>(),
        distrusted in any::<bool>(), draw in 0.0f64..1.0,
    ) {
        let mut ctx = ctx();
        ctx.reported = Reading::in_stock(price);
        ctx.published = Some(published(p, OfferStatus::Verified));
        ctx.alerts = alerts;
        ctx.corroboration = c;
        ctx.corroborating_groups = groups;
        ctx.reporter = reporter(t);
        ctx.reporter.distrusted = distrusted;
        ctx.observed_at = NOW - age;
        ctx.crawl_pending = pending;
        ctx.spot_draw = draw;
        ctx.crawl_draw = draw;
        let d = decide(&ctx);
        if d.alert {
            prop_assert!(d.publish.is_some() || d.reason == "agrees" || d.reason == "corroborated");
            prop_assert!(d.publish != Some(OfferStatus::Provisional));
            prop_assert!(alerts <= 50 && groups >= 2);
        }
        if age > MAX_PUBLISH_AGE_MS {
            prop_assert!(d.publish.is_none() && !d.alert && d.status == ReportStatus::Stored);
        }
        if pending {
            prop_assert!(d.crawl.is_none());
        }
        if d.crawl.is_some() {
            prop_assert!(d.attach);
        }
        if distrusted && !agrees(price, p) {
            prop_assert!(d.publish.is_none() && !d.alert);
        }
    }
}

#[test]
fn a_refuted_report_that_backed_a_published_price_is_severe() {
    // 10% over the crawled price, no watch fired: mild...
    let mut a = attached(11_000, 0);
    let r = resolve(
        &result(CrawlOutcome::Observed(Reading::in_stock(10_000)), None),
        &[a],
    );
    assert_eq!(r.judgements, vec![Judgement::Refuted]);
    // ... but severe when its decision published it (or it echoed an
    // unverified published value).
    a.backed_published = true;
    let r = resolve(
        &result(CrawlOutcome::Observed(Reading::in_stock(10_000)), None),
        &[a],
    );
    assert_eq!(r.judgements, vec![Judgement::SevereRefuted]);
    // Confirmed and no-evidence judgements are unchanged.
    let r = resolve(
        &result(CrawlOutcome::Observed(Reading::in_stock(11_000)), None),
        &[a],
    );
    assert_eq!(r.judgements, vec![Judgement::Confirmed]);
    let mut stale = a;
    stale.observed_at = NOW - super::outcome::STALE_REPORT_MS - 60_000;
    let r = resolve(
        &result(CrawlOutcome::Observed(Reading::in_stock(10_000)), None),
        &[stale],
    );
    assert_eq!(r.judgements, vec![Judgement::NoEvidence]);
}

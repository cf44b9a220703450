//! The adversarial simulation behind `pricewatch simulate` (TRUST.md
//! "Targets"): an in-memory world run on a simulated clock through the
//! real [`super::decide`], [`super::resolve`], [`super::Reputation`],
//! [`super::drift`] and [`super::pick_jobs`].
//!
//! # The world
//! * **Products** with true prices (log-uniform 5 to 2,000 units of
//!   currency) that change on average every `change_every_days`: ordinary
//!   moves of 2-20%, temporary deals of 15-45% lasting 2-48 h, genuine
//!   flash drops of 50-75% lasting 1-6 h, and short out-of-stock spells.
//!   Popularity is Zipf-like; watcher counts follow it (many products have
//!   none, a few have hundreds).
//! * **Watches** have a target 5-40% under the regular price; one fires
//!   when a non-provisional published price reaches its target, then
//!   waits until a verified or confirmed price is above the target again.
//! * **Honest collectors** visit products they are interested in (5-30
//!   visits a day) and report exactly what they see, 0-30 s later, except
//!   for honest parse errors (`parse_error_rate`, the decimal separator
//!   misread: the price divided by 100). Some share a network (NAT,
//!   campus). New honest keys join every day.
//!
//!   The parse error rate (default 1 in 3,000 reports) is an assumption,
//!   not a measurement: `wasm-core` reads all 31 pages of the fixture
//!   corpus correctly, which bounds nothing useful at this scale. It is
//!   meant as a pessimistic stand-in for page variants the extractor has
//!   never seen. It matters: every such error is a severe refutation, and
//!   TRUST.md distrusts a key after two severe refutations inside 30 days,
//!   so a key judged on `n` reports in 30 days is distrusted with
//!   probability about `(n r)^2 / 2` (Poisson) plus the chance that the
//!   first error comes before its sixth confirmation (`beta > alpha`). At
//!   `r` = 1/3,000 and 5-30 visits a day that is 0.5-4% of the keys at
//!   any time, so the "at most 1% of honest keys" target holds only for
//!   parse error rates around this value or below (`--parse-error-rate`).
//!   `honest_distrusted_by_cause` in the JSON output gives the split.
//! * **The verifier** has `workers` parallel crawlers that lease jobs every
//!   15 s with [`super::pick_jobs`]; a crawl takes 40-100 s and returns the
//!   true reading at that moment, or fails (`crawl_failure_rate`), which
//!   exercises retries. Capacity: 4 crawlers at 70 s a crawl are about 200
//!   crawls an hour; the honest world (400-550 keys, 300 products) needs
//!   about 9 an hour on average (`crawls` / 14 days), so the verifier is
//!   sized at about 20 times the honest load, i.e. the embedded verifier
//!   of one `pricewatch serve` at a polite ~1 request per 20 s per crawler.
//!   The verifier has its own random stream, so attack load changes crawl
//!   timings but not what honest collectors do.
//! * **Crawl-trigger limits** ([`super::limits`]): keys on probation per
//!   key (1 unresolved, 3 a day) and per independence group (2 unresolved,
//!   2 a day), counted per calendar day. Reports past the limit
//!   (and distrusted keys' disagreeing ones) wait for the product's next
//!   crawl ([`super::judge_waiting`]), and so do spot checks nothing
//!   answers at once, except those of keys with a recent severe refutation
//!   (`spot_check_waiting`, [`super::decision`]).
//! * **Judge crawls** ([`super::schedule::judge_crawl_due`]): at most one an
//!   hour, for the product with the most waiting reports of keys that have
//!   no evidence and no other waiting report, an hour after them (checked
//!   hourly).
//! * The first `warmup_days` run the honest world only (and let the
//!   patient attackers build trust); every figure is measured over the
//!   following `days`.
//!
//! # The attacks (each played against these rules as a real attacker would)
//! * `penny_bomb`: every 2 h, five fresh keys on five networks report a
//!   price of 1 minor unit for one of the most watched products.
//! * `sybil_swarm`: 200 keys on 200 networks register when the window
//!   opens, behave for three days (honest reports, to age past 24 h and
//!   collect what trust they can), then every 6 h 40 of them report the
//!   same fake 35% drop of a watched product within 10 minutes.
//! * `sleeper`: 20 keys behave from day 0 until established, then each
//!   lies about once a day (a fake 30% drop on a watched product), alone.
//! * `slow_poison`: 20 keys behave from day 0; from the window on, 30% of
//!   their reports raise the price by 8-25% (never fires alerts, within
//!   rule 5's 30%): the quiet way to move published prices.
//! * `collusion`: 12 keys on 12 networks registered on different days,
//!   honest until established; every 8 h three established ones strike
//!   together within a minute, alternating a fake 30% drop on a watched
//!   product and a +20% lie on an unwatched one that the other two then
//!   "corroborate".
//! * `key_churn`: every 30 minutes a brand-new key tells one lie (fake
//!   40% drop on a watched product, +20% on an unwatched one, or a penny
//!   price) and is never used again.
//! * `verifier_exhaustion`: every hour 150 fresh keys on 20 networks each
//!   report a penny price on a different random product (critical crawls
//!   to crowd the queue) and then lie about ten more products each. This
//!   stays inside the server's registration limit (`http::limits`: 20 keys
//!   per address an hour; 150 keys on 20 networks is 7.5 a network), so
//!   the attack is played as the real server would let it be. What stops
//!   it is the per-group crawl-trigger limit: 20 networks are 20 groups a
//!   day, at most 2 crawls each; the rest of its reports wait for the
//!   products' next crawls, which judge (and distrust) their keys. Not simulated, documented: an attacker
//!   with a fresh /24 for every few keys (a botnet or a large proxy pool)
//!   is one group per network and gets one critical crawl per network and
//!   day; only the number of networks bounds it.
//! * `deal_suppression`: 10 keys behave from day 0; whenever a watched
//!   product's true price drops, they report the old price from each key
//!   every 3 minutes for an hour, to keep the deal unpublished or flip it
//!   back.
//!
//! # Figures (per scenario, over the measured window)
//! False alerts (an alert whose price was not the true price at that
//! moment) over all alerts; real-deal latency from the first honest report
//! of a deal (a true drop reaching at least one armed target) to the first
//! alert at that price, p50/p95, and deals reported but never alerted;
//! crawls (every crawl attempt) per 1,000 reports and per true price
//! change; attacker keys distrusted at the end (of the keys that told at
//! least one lie) and honest keys distrusted; watcher-weighted wrong-price
//! time (share of watcher-time where the published reading did not match
//! the true one, counting "nothing published" as wrong).
//!
//! Crawls per attacker key (`crawl/atk`) are split into those of jobs a lie
//! created (`lie/atk`: the creating report did not match the true reading)
//! and those a truthful report created (`truth/atk`: real changes the
//! attacker reported first, spot checks of its agreeing reports). Patient
//! attackers (`sybil_swarm`, `sleeper`, `collusion`) behave exactly like
//! honest keys until they lie, so their truthful part is what an honest key
//! of their activity costs (`crawls_per_honest_key`: about 3.7-3.8 over 14
//! days at 5-30 visits a day, 4.2-4.4 before spot checks waited; colluders
//! visit 30 times a day). `attacker_truth_crawls_by_reason` splits it.
//! `attacker_undistrusted_lies` shows, for each lying attacker key left
//! undistrusted, how its lies were judged (severe, mild, no evidence,
//! never: e.g. a low-impact lie rule 5 published without a crawl).
//! `honest_distrusted_negatives` lists the negative judgements of the
//! honest keys distrusted at the end (`<attached|waiting>_<judgement>_<true|parse_error>`).
//!
//! # Issue 6 changes, measured (`pricewatch simulate --seed N`, N = 1 / 2 / 3)
//! * Waiting reports crawled over 30 minutes after them are refuted mildly
//!   at most, and a distrusted key's skipped spot check waits for the next
//!   crawl, judged against the published reading it agreed with
//!   ([`super::judge_waiting`], [`super::WaitingReport::before_for`]):
//!   honest keys distrusted 0.99 / 1.17 / 1.57% -> 0.79 / 0.78 / 1.17%. What
//!   is left is honest parse errors (the assumed rate): on seed 3, five keys
//!   with two misread prices inside 30 days and one young key with one.
//! * Judge crawls ([`super::schedule::judge_crawl_due`]): `key_churn` keys
//!   distrusted 82.5 / 83.3 / 81.9% -> 97.2 / 97.0 / 97.2%, crawls per
//!   attacker key 0.21 -> 0.71, crawls per change 0.88-0.90 -> 0.99-1.00;
//!   no judge crawl in any other scenario.
//! * Refuted reports that backed a published price are severe
//!   ([`super::outcome`]): `slow_poison` crawls per attacker key 8.25 /
//!   8.90 / 8.60 -> 2.75 / 2.35 / 2.50.
//! * Not met: at most 1 crawl per attacker key for `sleeper` (lies 2.3-2.6
//!   per key), `slow_poison` (2.05-2.1), `deal_suppression` on seed 3 (2.6):
//!   an established key is distrusted by its second severe refutation (or
//!   `beta > alpha`), and a lie is judged severe only by a crawl within 30
//!   minutes of it, so two crawled lies per established liar is the floor
//!   of these rules. The truthful part (`sybil_swarm` 2.0-2.5, `sleeper`
//!   2.5-3.3, `collusion` 8.3-10.0) is honest behaviour's cost (above).
//!   `collusion` on seeds 1 and 2: 11 of 12 keys distrusted; the last
//!   one told one lie, was refuted once, and the attack needs two
//!   established colluders to strike, so it stops lying.
//!
//! # Issue 6, round 3 (seeds 1 / 2 / 3; alternatives measured the same way)
//! * Spot checks that wait ([`super::decision`] module docs, figures there):
//!   crawls per real change 0.84-0.85 -> 0.73-0.75 without attackers, at
//!   most 1.04 under any attack (was 1.13); `sybil_swarm` truthful crawls
//!   per key 2.04-2.50 -> 1.37-1.62; honest keys distrusted 0.79 / 0.78 /
//!   1.17% -> 0.59 / 0.78 / 0.98%; latency p50 1.2-1.3 min, p95 at most
//!   2.9 min; false alerts 0.
//! * **Colluders distrusted** now 100 / 83.3 / 91.7% (seeds 1-8: 75-100%,
//!   mean 90.6%; 88.5% before). `attacker_undistrusted_lies` shows what the
//!   rules have against each colluder left: one severe refutation (a
//!   watched-product strike: every striker is attached to its crawl), maybe
//!   mild ones (a strike whose fake drop reached no watch, `A = 0`: mild by
//!   TRUST.md's definition) and one to three lies never judged: the +20%
//!   lies on unwatched products, which rule 5 publishes as provisional and
//!   crawls with probability 0.2, and the other colluders' echoes of them
//!   (rule 1: agreeing earns and costs nothing). Applied faithfully,
//!   TRUST.md distrusts no such key (one severe refutation, and at 30
//!   visits a day `beta` stays far below `alpha`). Tried and rejected:
//!   echoes and uncrawled rule-5 publications wait for the next crawl and
//!   count severe when refuted (as attached reports that backed a published
//!   price do): with [`super::judge_waiting`]'s 30-minute cap (the next
//!   crawl comes hours later, when an honest report overwrites the lie)
//!   collusion 83 / 50 / 83%; without the cap, honest keys distrusted
//!   34-38% (true reports of short real moves refuted severely days
//!   later). A crawl for every `corroborated` upgrade: crawls per change up
//!   to 1.33, collusion 91.7% on all three seeds.
//! * **Honest keys distrusted** 0.59 / 0.78 / 0.98% (seeds 4-8: 0.59-1.77%
//!   without attackers, 0.79-1.70% before).
//!   Every severe judgement of an honest key is one TRUST.md demands:
//!   misread prices (error over 50%, published or held by rule 4) and, one
//!   key on seeds 2, 3, 5 and 8, a true report of a flash drop observed
//!   seconds before the drop ended and crawled just after: the crawl reads
//!   the price the verifier saw before the report, the pattern of a penny
//!   bomb, and nothing demonstrates the move.
//! * **At most 1 crawl per attacker key**: still missed by `sybil_swarm`
//!   (2.1-2.6), `sleeper` (4.7-5.6), `slow_poison` (2.3-2.8), `collusion`
//!   (10.3-11.8) and `deal_suppression` (1.7-2.5; 0.4-3.4 on seeds 4-8,
//!   mean 1.61 before and after). The truthful part is mostly crawls of
//!   real changes the attacker reported first (`confirm`, `low_impact`,
//!   `critical`: 1.05-1.27 a key for `sybil_swarm`, 1.75-2.15 `sleeper`,
//!   3.8-5.8 `collusion`), which an honest key of that activity costs too;
//!   then spot checks of keys with a recent severe refutation (colluders
//!   after a strike: 5.0-5.5 a key, 4.1-4.7 before, as more of them are
//!   refuted and recover; sleepers 0.5-0.9) and judge crawls of waiting
//!   spot checks of sybil keys with no evidence yet (0.23-0.26 a key). With
//!   no spot-check crawl at all it stays above 1 for those three attacks
//!   (1.3-1.5, 1.7-2.2, 5.4-7.6). Lies: two severe refutations distrust an
//!   established key, so two crawled lies is the floor (more where a lie
//!   is mild). Tried and rejected: a key with a severe refutation inside
//!   the half-life gets no crawl of its own; its reports wait for the
//!   product's next crawl. With the 30-minute cap: sleepers distrusted
//!   5-20%, deal p95 23-91 min (real deals first reported by an honest key
//!   with one misread price wait unpublished); without it: sleepers 100%
//!   at 1.1-1.3 lie crawls a key, but honest keys distrusted 2.9-3.6% (up
//!   to 4.1% under attacks) and the same p95.
//!
//! # Issue 6, round 4 (seeds 1 / 2 / 3, and 1-8 for `collusion`)
//! * One experiment: an established key's rule-5 change published with no
//!   crawl (the 80% draw) waits for the product's next crawl, to give the
//!   colluders' unjudged +20% lies evidence at no crawl cost. Three
//!   variants measured, none adopted (figures in [`super::decision`]'s
//!   module docs, rule 5): judged like other waiting reports, colluders
//!   distrusted 100 / 83.3 / 91.7% -> 75 / 41.7 / 83.3% (seeds 1-8 mean
//!   90.6 -> 69.8%) and 346-352 mild refutations a seed of honest keys'
//!   true reports (a real change that moved again before the next crawl),
//!   crawls per change 0.73-0.75 -> 0.78-0.80; refuted only when the crawl
//!   reads the verifier's reading from before the report: 81.2% mean,
//!   honest side unchanged but for 38-46 mild refutations a seed; severe
//!   and uncapped: 90.6% mean (unchanged), honest keys distrusted 1.58 /
//!   1.96 / 2.35% (target at most 1%). False alerts 0 and deal latency
//!   (p50 at most 1.4 min, p95 at most 2.9 min) in every variant. Mild
//!   refutations keep colluders from striking again (the ring strikes only
//!   with established keys) rather than distrusting them. The state is
//!   round 3's.
//!
//! # Issue 6, round 5 (seeds 1-8; `collusion` also 1-40)
//! * Separator misreads are stored only ([`super::decision`]'s rule 2b,
//!   figures there): honest keys distrusted 0.59-1.77% -> 0-0.19% without
//!   attackers, at most 0.38% under any attack (the simulation's parse
//!   errors, price / 100 of a product worth at least 10 units, are no
//!   longer judged); crawls -9.4% over the 72 runs; deals never alerted
//!   85 -> 28; alert p95 at most 1.9 min; `collusion` keys distrusted
//!   88.5% -> 85.6% (seeds 1-40 mean). The other misses are round 3's.

mod rng;
mod world;

pub use rng::Rng;
pub use world::run;

use std::collections::BTreeMap;

/// Attacks the simulation can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attack {
    /// Honest population only.
    None,
    /// Fresh keys report a penny price for watched products.
    PennyBomb,
    /// Many aged fresh keys report the same fake drop together.
    SybilSwarm,
    /// Established keys turn liar, each alone.
    Sleeper,
    /// Many small upward lies that fire no alerts.
    SlowPoison,
    /// Established keys lie together.
    Collusion,
    /// A new key for every lie.
    KeyChurn,
    /// Flood the crawl queue with critical junk.
    VerifierExhaustion,
    /// Keep reporting the old price to hide real deals.
    DealSuppression,
}

impl Attack {
    /// Every scenario, honest first.
    pub const ALL: [Attack; 9] = [
        Attack::None,
        Attack::PennyBomb,
        Attack::SybilSwarm,
        Attack::Sleeper,
        Attack::SlowPoison,
        Attack::Collusion,
        Attack::KeyChurn,
        Attack::VerifierExhaustion,
        Attack::DealSuppression,
    ];

    /// Name on the command line and in the output.
    pub fn as_str(self) -> &'static str {
        match self {
            Attack::None => "honest",
            Attack::PennyBomb => "penny_bomb",
            Attack::SybilSwarm => "sybil_swarm",
            Attack::Sleeper => "sleeper",
            Attack::SlowPoison => "slow_poison",
            Attack::Collusion => "collusion",
            Attack::KeyChurn => "key_churn",
            Attack::VerifierExhaustion => "verifier_exhaustion",
            Attack::DealSuppression => "deal_suppression",
        }
    }

    /// From [`Attack::as_str`] (also `none` for the honest run).
    pub fn parse(s: &str) -> Option<Attack> {
        if s == "none" {
            return Some(Attack::None);
        }
        Attack::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

/// Parameters of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seed of every random draw.
    pub seed: u64,
    /// Measured days.
    pub days: u32,
    /// Honest-only days before the measured window.
    pub warmup_days: u32,
    /// Honest keys at the start (1% more join each day).
    pub honest_keys: u32,
    /// Products.
    pub products: u32,
    /// Parallel verification crawlers.
    pub workers: u32,
    /// Mean days between true price changes of a product.
    pub change_every_days: f64,
    /// Share of honest reports with a parse error.
    pub parse_error_rate: f64,
    /// Share of crawl attempts that fail.
    pub crawl_failure_rate: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            days: 14,
            warmup_days: 14,
            honest_keys: 400,
            products: 300,
            workers: 4,
            change_every_days: 2.0,
            parse_error_rate: 1.0 / 3000.0,
            crawl_failure_rate: 0.02,
        }
    }
}

/// The figures of one scenario.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    /// Scenario name.
    pub scenario: &'static str,
    /// Reports received.
    pub reports: u64,
    /// Reports by decision reason.
    pub reasons: BTreeMap<&'static str, u64>,
    /// Alerts fired.
    pub alerts: u64,
    /// Alerts whose price was not the true price then.
    pub false_alerts: u64,
    /// Correction alerts (alerts fired on a price a crawl then refuted).
    pub corrections: u64,
    /// Real deals at least one honest collector reported.
    pub deals: u64,
    /// Of those, deals never alerted at their price.
    pub deals_missed: u64,
    /// Real-deal alert latency p50 (ms from the first honest report).
    pub latency_p50_ms: Option<i64>,
    /// Real-deal alert latency p95 (ms).
    pub latency_p95_ms: Option<i64>,
    /// Crawl attempts.
    pub crawls: u64,
    /// Crawl attempts by job reason.
    pub crawls_by_reason: BTreeMap<&'static str, u64>,
    /// Crawl attempts of jobs an attacker key's report created (spot
    /// checks of its truthful reports included).
    pub attacker_crawls: u64,
    /// True price changes.
    pub changes: u64,
    /// Crawl attempts of jobs an honest key's report created (the
    /// yardstick for attackers who mostly report the truth).
    pub honest_crawls: u64,
    /// Of `attacker_crawls`, those of jobs created by a lie (the report
    /// did not match the true reading); the rest were created by truthful
    /// reports (real changes the attacker reported first, spot checks).
    pub attacker_lie_crawls: u64,
    /// The same by job reason.
    pub attacker_crawls_by_reason: BTreeMap<&'static str, u64>,
    /// Of `attacker_crawls_by_reason`, the crawls of jobs a truthful report
    /// created (the part `truth/atk` counts), by job reason.
    pub attacker_truth_crawls_by_reason: BTreeMap<&'static str, u64>,
    /// Attacker keys that told at least one lie.
    pub attacker_keys: u64,
    /// Of those, distrusted at the end.
    pub attacker_distrusted: u64,
    /// The lying attacker keys **not** distrusted at the end, by how their
    /// lies were judged (`lies_<n>_severe_<s>_refuted_<m>_no_evidence_<e>_confirmed_<c>_unjudged_<u>_<established|probation>`,
    /// a count of keys per label): the evidence the rules had against them.
    pub attacker_undistrusted_lies: BTreeMap<String, u64>,
    /// Crawl judgements of honest keys' reports, by judgement.
    pub honest_judgements: BTreeMap<&'static str, u64>,
    /// Judgements of waiting (stored-only) reports by the next crawl
    /// ([`super::judge_waiting`]), as `honest_<judgement>` /
    /// `attacker_<judgement>`.
    pub waiting_judgements: BTreeMap<String, u64>,
    /// Honest keys at the end.
    pub honest_keys: u64,
    /// Of those, distrusted at the end.
    pub honest_distrusted: u64,
    /// Honest keys distrusted at the end, by cause:
    /// `two_severe_in_half_life`, `beta_over_alpha_young` (fewer than five
    /// confirmations' worth of positive evidence), `beta_over_alpha`.
    pub honest_distrusted_by_cause: BTreeMap<&'static str, u64>,
    /// The negative judgements of the honest keys distrusted at the end
    /// (those of the last 30 days), as `<attached|waiting>_<judgement>_<true|parse_error>`:
    /// `true` ones judged a report that said what the collector saw.
    pub honest_distrusted_negatives: BTreeMap<String, u64>,
    /// Watcher-ms with a wrong published reading.
    pub wrong_watcher_ms: f64,
    /// All watcher-ms.
    pub watcher_ms: f64,
}

impl Metrics {
    /// False alerts / alerts (0 with no alerts).
    pub fn false_alert_rate(&self) -> f64 {
        ratio(self.false_alerts as f64, self.alerts as f64)
    }
    /// Crawl attempts per 1,000 reports.
    pub fn crawls_per_1k_reports(&self) -> f64 {
        1000.0 * ratio(self.crawls as f64, self.reports as f64)
    }
    /// Crawl attempts per true price change (target <= 1.2).
    pub fn crawls_per_change(&self) -> f64 {
        ratio(self.crawls as f64, self.changes as f64)
    }
    /// Same, without spot checks and scheduled refreshes (the crawls that
    /// verify reported changes).
    pub fn change_crawls_per_change(&self) -> f64 {
        let other: u64 = ["spot_check", "refresh"]
            .iter()
            .map(|r| self.crawls_by_reason.get(r).copied().unwrap_or(0))
            .sum();
        ratio(
            self.crawls.saturating_sub(other) as f64,
            self.changes as f64,
        )
    }
    /// Crawls attacker keys caused, per lying attacker key (TRUST.md: at
    /// most 1).
    pub fn crawls_per_attacker_key(&self) -> f64 {
        ratio(self.attacker_crawls as f64, self.attacker_keys as f64)
    }
    /// Of [`Metrics::crawls_per_attacker_key`], crawls created by lies.
    pub fn lie_crawls_per_attacker_key(&self) -> f64 {
        ratio(self.attacker_lie_crawls as f64, self.attacker_keys as f64)
    }
    /// Of [`Metrics::crawls_per_attacker_key`], crawls created by truthful
    /// reports (real changes, spot checks).
    pub fn truth_crawls_per_attacker_key(&self) -> f64 {
        ratio(
            self.attacker_crawls
                .saturating_sub(self.attacker_lie_crawls) as f64,
            self.attacker_keys as f64,
        )
    }
    /// Crawls honest keys caused, per honest key.
    pub fn crawls_per_honest_key(&self) -> f64 {
        ratio(self.honest_crawls as f64, self.honest_keys as f64)
    }
    /// Share of lying attacker keys distrusted.
    pub fn attacker_distrusted_share(&self) -> f64 {
        ratio(self.attacker_distrusted as f64, self.attacker_keys as f64)
    }
    /// Share of honest keys distrusted.
    pub fn honest_distrusted_share(&self) -> f64 {
        ratio(self.honest_distrusted as f64, self.honest_keys as f64)
    }
    /// Watcher-weighted share of time with a wrong published price.
    pub fn wrong_price_share(&self) -> f64 {
        ratio(self.wrong_watcher_ms, self.watcher_ms)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Nearest-rank percentile `q` (0..=100) of `sorted` values.
pub fn percentile(sorted: &[i64], q: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = (u64::from(q.min(100)) * n as u64).div_ceil(100).max(1) as usize;
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            days: 4,
            warmup_days: 4,
            honest_keys: 150,
            products: 80,
            ..SimConfig::default()
        }
    }

    #[test]
    fn honest_world_fires_no_false_alert_and_alerts_real_deals() {
        let m = run(&small(11), Attack::None);
        assert!(m.reports > 5_000, "{m:?}");
        assert!(m.alerts > 20, "alerts fire at all: {m:?}");
        assert_eq!(m.false_alerts, 0, "{m:?}");
        assert!(m.deals > 10, "{m:?}");
        assert!(m.latency_p50_ms.is_some_and(|v| v <= 3 * 60_000), "{m:?}");
        assert_eq!(m.attacker_keys, 0);
    }

    #[test]
    fn penny_bombs_fire_no_false_alert_and_their_keys_are_distrusted() {
        let m = run(&small(12), Attack::PennyBomb);
        assert!(m.alerts > 20, "{m:?}");
        assert_eq!(m.false_alerts, 0, "{m:?}");
        assert!(m.attacker_keys >= 40, "{m:?}");
        assert!(m.attacker_distrusted_share() >= 0.95, "{m:?}");
        assert!(m.reasons.get("critical_drop").is_some_and(|n| *n > 0));
    }

    #[test]
    fn verifier_exhaustion_is_bounded_per_group_and_real_deals_still_alert() {
        let m = run(&small(13), Attack::VerifierExhaustion);
        assert!(m.attacker_keys > 10_000, "{m:?}");
        assert_eq!(m.false_alerts, 0, "{m:?}");
        // 20 networks x 4 days x at most 2 crawls a group-day, plus
        // retries: far under one crawl per key.
        assert!(m.attacker_crawls <= 20 * 4 * 2 * 2, "{}", m.attacker_crawls);
        // Their stored reports wait for the products' next crawls, which
        // judge them: most keys end distrusted without a crawl of their own.
        assert!(m.attacker_distrusted_share() >= 0.9, "{m:?}");
        // Mostly judged hours after the lie: mild refutations (a fresh key
        // with one is distrusted all the same).
        let refuted = |j: &str| m.waiting_judgements.get(j).copied().unwrap_or(0);
        assert!(
            refuted("attacker_refuted") + refuted("attacker_severe_refuted") > 1_000,
            "{m:?}"
        );
        assert!(m.crawls_per_attacker_key() < 0.1, "{m:?}");
        assert!(m.reasons.get("crawl_limit").is_some_and(|n| *n > 10_000));
        assert!(m.latency_p95_ms.is_some_and(|v| v <= 5 * 60_000), "{m:?}");
    }

    #[test]
    fn undistrusted_attackers_and_truthful_crawls_add_up() {
        for attack in [Attack::KeyChurn, Attack::SybilSwarm] {
            let m = run(&small(14), attack);
            let listed: u64 = m.attacker_undistrusted_lies.values().sum();
            assert_eq!(
                listed,
                m.attacker_keys - m.attacker_distrusted,
                "{:?}",
                m.attacker_undistrusted_lies
            );
            for label in m.attacker_undistrusted_lies.keys() {
                // Two severe refutations inside the half-life distrust a
                // key, and the run is shorter than the half-life.
                assert!(
                    !label.contains("_severe_2_") && label.starts_with("lies_"),
                    "{label}"
                );
            }
            let truthful: u64 = m.attacker_truth_crawls_by_reason.values().sum();
            assert_eq!(truthful, m.attacker_crawls - m.attacker_lie_crawls, "{m:?}");
        }
        // key_churn keys tell one lie each and have no truthful reports.
        let m = run(&small(15), Attack::KeyChurn);
        assert!(m.attacker_truth_crawls_by_reason.is_empty(), "{m:?}");
        assert!(m
            .attacker_undistrusted_lies
            .keys()
            .all(|l| l.starts_with("lies_1_") && l.ends_with("_probation")));
    }

    #[test]
    fn runs_are_repeatable() {
        let cfg = SimConfig {
            days: 2,
            warmup_days: 1,
            honest_keys: 50,
            products: 30,
            ..SimConfig::default()
        };
        assert_eq!(run(&cfg, Attack::Collusion), run(&cfg, Attack::Collusion));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&v, 50), Some(10));
        assert_eq!(percentile(&v, 95), Some(19));
        assert_eq!(percentile(&v, 100), Some(20));
        assert_eq!(percentile(&[5], 95), Some(5));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn attack_names_round_trip() {
        for a in Attack::ALL {
            assert_eq!(Attack::parse(a.as_str()), Some(a));
        }
        assert_eq!(Attack::parse("none"), Some(Attack::None));
        assert_eq!(Attack::parse("all"), None);
    }
}

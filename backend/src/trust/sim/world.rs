//! The simulation engine: a discrete-event loop over a simulated clock.
//! See the parent module for the world and the attacks.

use super::{percentile, Attack, Metrics, Rng, SimConfig};
use crate::store::OfferStatus;
use crate::trust::groups::established_groups;
use crate::trust::outcome::WAITING_HORIZON_MS;
use crate::trust::schedule::{judge_crawl_due, JUDGE_AFTER_MS, JUDGE_SCAN_ROWS};
use crate::trust::{
    agrees, corroboration, decide, drift, escalate, group_of, judge_waiting, pick_jobs,
    refresh_interval, resolve, within_crawl_limit, AttachedReport, CrawlOutcome, CrawlRequest,
    CrawlResult, DriftTimer, GroupId, JobPriority, Judgement, Published, QueuedJob, Reading,
    ReportContext, Reporter, Reputation, ResolutionKind, TriggerCounts, WaitingReport,
    CORROBORATION_WINDOW_MS, DAY_MS, HALF_LIFE_MS, MINUTE_MS,
};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use wasm_core::types::Availability;

/// Simulated time 0 (2026-01-01T00:00Z), so registration days are real days.
const EPOCH: i64 = 1_767_225_600_000;
const SECOND: i64 = 1000;
const HOUR: i64 = 3_600_000;
/// Drift looks at established groups' reports this recent (and received
/// after the last verification).
const DRIFT_LOOKBACK_MS: i64 = 30 * MINUTE_MS;

#[derive(Debug, Clone, Copy)]
enum Ev {
    Visit(usize),
    Deliver {
        key: usize,
        product: usize,
        reading: Reading,
        observed_at: i64,
        /// Not a parse error (what the collector saw is what it says).
        truthful: bool,
    },
    Lie {
        key: usize,
        product: usize,
        reading: Reading,
    },
    Change(usize),
    Revert(usize),
    Lease,
    CrawlDone(u64),
    Hourly,
    NewHonestKey,
    AttackTick,
    SleeperStrike(usize),
    Suppress {
        key: usize,
        product: usize,
        old: Reading,
        until: i64,
    },
}

struct Scheduled {
    t: i64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.seq) == (o.t, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    // Reversed: BinaryHeap pops the earliest.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.t, o.seq).cmp(&(self.t, self.seq))
    }
}

struct Key {
    rep: Reputation,
    registered_at: i64,
    net: [u8; 16],
    attacker: bool,
    interests: Vec<usize>,
    visits_per_day: f64,
    poison: bool,
    /// Crawls this key triggered while on probation (crawl-trigger limit).
    triggered: Triggered,
    lied: bool,
    /// Attacker keys: lies told (reports that did not match the true
    /// reading), and how crawls judged them, by [`Judgement`] (the figures'
    /// `attacker_undistrusted_lies`).
    lies: u32,
    lie_judgements: BTreeMap<&'static str, u32>,
    /// Honest keys: negative judgements (time, label), see
    /// [`World::note_judgement`].
    negatives: Vec<(i64, String)>,
}

/// Crawl-trigger counts of a key or a group (calendar-day window).
#[derive(Default, Clone, Copy)]
struct Triggered {
    open: u32,
    day: i64,
    day_crawls: u32,
}

impl Triggered {
    fn counts(&mut self, day: i64) -> TriggerCounts {
        if self.day != day {
            self.day = day;
            self.day_crawls = 0;
        }
        TriggerCounts {
            open: self.open,
            last_day: self.day_crawls,
        }
    }
}

struct Watch {
    target: i64,
    armed: bool,
}

struct Recent {
    at: i64,
    key: usize,
    group: GroupId,
    reading: Reading,
}

struct Deal {
    change_at: i64,
    price: i64,
    first_report: Option<i64>,
    alerted_at: Option<i64>,
}

struct Product {
    regular: i64,
    truth: Reading,
    temporary: bool,
    published: Option<Published>,
    verified_low: Option<i64>,
    /// The last reading a crawl (or the verifier) saw.
    last_verified: Option<Reading>,
    watches: Vec<Watch>,
    popularity: f64,
    job: Option<u64>,
    attached: Vec<(usize, AttachedReport, bool)>,
    /// Stored-only reports waiting for the next crawl ([`judge_waiting`]).
    waiting: Vec<(usize, WaitingReport, bool)>,
    recent: VecDeque<Recent>,
    latest: BTreeMap<GroupId, (f64, i64, i64)>,
    drift: DriftTimer,
    last_report_at: i64,
    last_crawl_at: i64,
    last_touch: i64,
    deal: Option<Deal>,
    alerts_log: VecDeque<(i64, i64)>,
}

struct Job {
    product: usize,
    priority: f64,
    critical: bool,
    reason: &'static str,
    enqueued_at: i64,
    not_before: i64,
    attempts: u32,
    trigger: Option<usize>,
    trigger_group: Option<GroupId>,
    /// The key whose report created the job, and whether that report was a
    /// lie (simulation knowledge, for the figures).
    creator: Option<(usize, bool)>,
    leased: bool,
}

struct World {
    cfg: SimConfig,
    attack: Attack,
    rng: Rng,
    /// True prices only, so every scenario sees the same market.
    prng: Rng,
    /// Attackers only.
    arng: Rng,
    /// The verifier only (crawl durations and failures), so that attack
    /// load does not shift the honest collectors' draws.
    vrng: Rng,
    /// Crawl-trigger counts per independence group.
    group_triggers: BTreeMap<GroupId, Triggered>,
    now: i64,
    window_start: i64,
    end: i64,
    seq: u64,
    heap: BinaryHeap<Scheduled>,
    keys: Vec<Key>,
    products: Vec<Product>,
    popularity: Vec<f64>,
    watched: Vec<usize>,
    unwatched: Vec<usize>,
    jobs: BTreeMap<u64, Job>,
    next_job: u64,
    leased: u32,
    m: Metrics,
    latencies: Vec<i64>,
    crew: Vec<usize>,
    attacker_nets: Vec<[u8; 16]>,
    tick: u64,
    /// When judge crawls were queued (the last hour).
    judge_crawls: VecDeque<i64>,
}

/// Runs one scenario and returns its figures. Deterministic in
/// `(cfg, attack)`.
pub fn run(cfg: &SimConfig, attack: Attack) -> Metrics {
    let mut w = World::new(cfg.clone(), attack);
    w.run();
    w.finish()
}

impl World {
    fn new(cfg: SimConfig, attack: Attack) -> World {
        let mut rng = Rng::new(cfg.seed);
        let window_start = EPOCH + i64::from(cfg.warmup_days) * DAY_MS;
        let end = window_start + i64::from(cfg.days) * DAY_MS;
        let mut w = World {
            rng: rng.fork(1),
            prng: rng.fork(2),
            arng: rng.fork(3),
            vrng: rng.fork(4),
            group_triggers: BTreeMap::new(),
            cfg,
            attack,
            now: EPOCH,
            window_start,
            end,
            seq: 0,
            heap: BinaryHeap::new(),
            keys: Vec::new(),
            products: Vec::new(),
            popularity: Vec::new(),
            watched: Vec::new(),
            unwatched: Vec::new(),
            jobs: BTreeMap::new(),
            next_job: 1,
            leased: 0,
            m: Metrics {
                scenario: attack.as_str(),
                ..Metrics::default()
            },
            latencies: Vec::new(),
            crew: Vec::new(),
            attacker_nets: Vec::new(),
            tick: 0,
            judge_crawls: VecDeque::new(),
        };
        w.make_products();
        let honest_nets: Vec<[u8; 16]> = (0..(w.cfg.honest_keys * 85 / 100).max(1))
            .map(|_| w.rng.bytes16())
            .collect();
        for _ in 0..w.cfg.honest_keys {
            let reg = EPOCH - w.rng.range(1, 60) * DAY_MS;
            let net = honest_nets[w.rng.range(0, honest_nets.len() as i64 - 1) as usize];
            let vpd = w.rng.uniform(5.0, 30.0);
            w.new_key(false, reg, net, vpd);
        }
        w.at(EPOCH, Ev::Lease);
        w.at(EPOCH + HOUR, Ev::Hourly);
        let join = w.join_interval();
        w.after(join, Ev::NewHonestKey);
        w.setup_attack();
        w
    }

    fn join_interval(&mut self) -> i64 {
        let per_day = (f64::from(self.cfg.honest_keys) * 0.01).max(0.1);
        self.rng.exp_ms(DAY_MS as f64 / per_day)
    }

    fn make_products(&mut self) {
        let n = self.cfg.products.max(1) as usize;
        // Zipf-like popularity over a shuffled order.
        let mut ranks: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.prng.range(0, i as i64) as usize;
            ranks.swap(i, j);
        }
        for (i, rank) in ranks.iter().enumerate() {
            let pop = 1.0 / ((*rank + 1) as f64).powf(0.8);
            let regular = (500.0 * (400.0f64).powf(self.prng.f64())).round() as i64;
            let watchers = (300.0 * pop.powf(1.2) * self.prng.uniform(0.2, 1.0)).floor() as usize;
            let watches = (0..watchers)
                .map(|_| Watch {
                    target: regular * (100 - self.prng.range(5, 40)) / 100,
                    armed: true,
                })
                .collect::<Vec<_>>();
            let cold = self.prng.chance(0.03);
            let truth = Reading::in_stock(regular);
            self.products.push(Product {
                regular,
                truth,
                temporary: false,
                published: (!cold).then_some(Published {
                    reading: truth,
                    status: OfferStatus::Verified,
                    observed_at: EPOCH,
                    last_verified_at: Some(EPOCH),
                }),
                verified_low: (!cold).then_some(regular),
                last_verified: (!cold).then_some(truth),
                watches,
                popularity: pop,
                job: None,
                attached: Vec::new(),
                waiting: Vec::new(),
                recent: VecDeque::new(),
                latest: BTreeMap::new(),
                drift: DriftTimer::default(),
                last_report_at: EPOCH,
                last_crawl_at: EPOCH,
                last_touch: EPOCH,
                deal: None,
                alerts_log: VecDeque::new(),
            });
            if self.products[i].watches.is_empty() {
                self.unwatched.push(i);
            } else {
                self.watched.push(i);
            }
            let first = self.prng.exp_ms(self.cfg.change_every_days * DAY_MS as f64);
            self.at(EPOCH + first, Ev::Change(i));
        }
        self.popularity = self.products.iter().map(|p| p.popularity).collect();
    }

    fn at(&mut self, t: i64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Scheduled {
            t,
            seq: self.seq,
            ev,
        });
    }

    fn after(&mut self, dt: i64, ev: Ev) {
        self.at(self.now + dt, ev);
    }

    fn in_window(&self) -> bool {
        self.now >= self.window_start
    }

    fn new_key(&mut self, attacker: bool, registered_at: i64, net: [u8; 16], vpd: f64) -> usize {
        let r = if attacker {
            &mut self.arng
        } else {
            &mut self.rng
        };
        let interests = (0..15).map(|_| r.weighted(&self.popularity)).collect();
        let k = self.keys.len();
        self.keys.push(Key {
            rep: Reputation::new(registered_at),
            registered_at,
            net,
            attacker,
            interests,
            visits_per_day: vpd,
            poison: false,
            triggered: Triggered::default(),
            lied: false,
            lies: 0,
            lie_judgements: BTreeMap::new(),
            negatives: Vec::new(),
        });
        if vpd > 0.0 {
            let r = if attacker {
                &mut self.arng
            } else {
                &mut self.rng
            };
            let first = r.exp_ms(DAY_MS as f64 / vpd);
            self.at(self.now.max(registered_at) + first, Ev::Visit(k));
        }
        k
    }

    fn fresh_attacker(&mut self, net: Option<[u8; 16]>) -> usize {
        let net = net.unwrap_or_else(|| self.arng.bytes16());
        self.new_key(true, self.now, net, 0.0)
    }

    fn setup_attack(&mut self) {
        let ws = self.window_start;
        match self.attack {
            Attack::None => {}
            Attack::PennyBomb | Attack::KeyChurn | Attack::VerifierExhaustion => {
                self.at(ws, Ev::AttackTick);
                self.attacker_nets = (0..20).map(|_| self.arng.bytes16()).collect();
            }
            Attack::SybilSwarm => {
                self.now = ws;
                for _ in 0..200 {
                    let net = self.arng.bytes16();
                    let k = self.new_key(true, ws, net, 15.0);
                    self.crew.push(k);
                }
                self.now = EPOCH;
                self.at(ws + 3 * DAY_MS, Ev::AttackTick);
            }
            Attack::Sleeper => {
                for _ in 0..20 {
                    let net = self.arng.bytes16();
                    let k = self.new_key(true, EPOCH - 2 * DAY_MS, net, 30.0);
                    self.crew.push(k);
                    let first = ws + 2 * DAY_MS + self.arng.exp_ms(DAY_MS as f64);
                    self.at(first, Ev::SleeperStrike(k));
                }
            }
            Attack::SlowPoison => {
                for _ in 0..20 {
                    let net = self.arng.bytes16();
                    let k = self.new_key(true, EPOCH - 2 * DAY_MS, net, 30.0);
                    self.crew.push(k);
                }
                self.at(ws, Ev::AttackTick);
            }
            Attack::Collusion => {
                for i in 0..12 {
                    let net = self.arng.bytes16();
                    let k = self.new_key(true, EPOCH - (2 + i) * DAY_MS, net, 30.0);
                    self.crew.push(k);
                }
                self.at(ws, Ev::AttackTick);
            }
            Attack::DealSuppression => {
                for _ in 0..10 {
                    let net = self.arng.bytes16();
                    let k = self.new_key(true, EPOCH - 2 * DAY_MS, net, 30.0);
                    self.crew.push(k);
                }
            }
        }
    }

    fn run(&mut self) {
        while let Some(s) = self.heap.pop() {
            if s.t > self.end {
                break;
            }
            self.now = s.t;
            self.handle(s.ev);
        }
        self.now = self.end;
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Visit(k) => self.visit(k),
            Ev::Deliver {
                key,
                product,
                reading,
                observed_at,
                truthful,
            } => self.ingest(key, product, reading, observed_at, truthful),
            Ev::Lie {
                key,
                product,
                reading,
            } => {
                let truthful = reading.matches(&self.products[product].truth);
                if !truthful {
                    self.keys[key].lied = true;
                }
                self.ingest(key, product, reading, self.now, truthful);
            }
            Ev::Change(p) => self.change(p),
            Ev::Revert(p) => self.revert(p),
            Ev::Lease => {
                self.lease();
                self.after(15 * SECOND, Ev::Lease);
            }
            Ev::CrawlDone(id) => self.crawl_done(id),
            Ev::Hourly => {
                self.hourly();
                self.after(HOUR, Ev::Hourly);
            }
            Ev::NewHonestKey => {
                let net = self.rng.bytes16();
                let vpd = self.rng.uniform(5.0, 30.0);
                self.new_key(false, self.now, net, vpd);
                let dt = self.join_interval();
                self.after(dt, Ev::NewHonestKey);
            }
            Ev::AttackTick => self.attack_tick(),
            Ev::SleeperStrike(k) => {
                if let Some(p) = self.pick(true) {
                    let fake = self.fake_price(p, 70);
                    self.at(
                        self.now,
                        Ev::Lie {
                            key: k,
                            product: p,
                            reading: Reading::in_stock(fake),
                        },
                    );
                }
                let dt = self.arng.exp_ms(DAY_MS as f64);
                self.after(dt, Ev::SleeperStrike(k));
            }
            Ev::Suppress {
                key,
                product,
                old,
                until,
            } => {
                if self.now < until {
                    self.at(
                        self.now,
                        Ev::Lie {
                            key,
                            product,
                            reading: old,
                        },
                    );
                    self.after(
                        3 * MINUTE_MS,
                        Ev::Suppress {
                            key,
                            product,
                            old,
                            until,
                        },
                    );
                }
            }
        }
    }

    // ---- collectors ----

    fn visit(&mut self, k: usize) {
        let key = &self.keys[k];
        let (vpd, attacker, poison) = (key.visits_per_day, key.attacker, key.poison);
        let r = if attacker {
            &mut self.arng
        } else {
            &mut self.rng
        };
        let p = key.interests[r.range(0, key.interests.len() as i64 - 1) as usize];
        let truth = self.products[p].truth;
        let mut reading = truth;
        let mut lied = false;
        let mut misread = false;
        if attacker {
            if poison && r.chance(0.3) {
                if let Some(x) = truth.price {
                    reading.price = Some(x * (100 + r.range(8, 25)) / 100);
                    lied = true;
                }
            }
        } else if r.chance(self.cfg.parse_error_rate) {
            reading.price = truth.price.map(|x| (x / 100).max(1));
            misread = true;
        }
        let delay = r.range(0, 30 * SECOND);
        let next = r.exp_ms(DAY_MS as f64 / vpd);
        if lied {
            self.keys[k].lied = true;
        }
        self.after(
            delay,
            Ev::Deliver {
                key: k,
                product: p,
                reading,
                observed_at: self.now,
                truthful: !lied && !misread,
            },
        );
        self.after(next, Ev::Visit(k));
    }

    fn alerts_for(&self, p: usize, reading: &Reading) -> u32 {
        match reading.price {
            Some(x) => self.products[p]
                .watches
                .iter()
                .filter(|w| w.armed && w.target >= x)
                .count() as u32,
            None => 0,
        }
    }

    /// `truthful`: the report says what the collector saw (simulation
    /// knowledge only, for the figures; the rules never see it).
    fn ingest(&mut self, k: usize, p: usize, reading: Reading, observed_at: i64, truthful: bool) {
        let now = self.now;
        let window = self.in_window();
        if window {
            self.m.reports += 1;
        }
        let day = now.div_euclid(DAY_MS);
        let group = group_of(Some(self.keys[k].net), self.keys[k].registered_at, k as i64);
        let group_counts = self.group_triggers.entry(group).or_default().counts(day);
        let key = &mut self.keys[k];
        let within = within_crawl_limit(key.triggered.counts(day), group_counts);
        let reporter = Reporter::from_reputation(&key.rep, now, key.registered_at, within);
        let attacker = key.attacker;
        if attacker && !truthful {
            key.lies += 1;
        }
        let alerts = self.alerts_for(p, &reading);
        let prod = &mut self.products[p];
        while prod
            .recent
            .front()
            .is_some_and(|r| r.at < now - CORROBORATION_WINDOW_MS)
        {
            prod.recent.pop_front();
        }
        let since = prod
            .published
            .and_then(|o| o.last_verified_at)
            .unwrap_or(i64::MIN);
        let keys = &self.keys;
        let mut set: Vec<(GroupId, f64)> = prod
            .recent
            .iter()
            .filter(|r| r.at >= since && r.reading.matches(&reading))
            .filter(|r| !keys[r.key].rep.distrusted(now))
            .map(|r| (r.group, keys[r.key].rep.score(now)))
            .collect();
        set.push((group, reporter.trust));
        let ctx = ReportContext {
            now,
            observed_at,
            reported: reading,
            published: prod.published,
            verified_low: prod.verified_low,
            reporter,
            alerts,
            crawl_pending: prod.job.is_some(),
            corroboration: corroboration(&set),
            corroborating_groups: established_groups(&set),
            spot_draw: if attacker {
                self.arng.f64()
            } else {
                self.rng.f64()
            },
            crawl_draw: if attacker {
                self.arng.f64()
            } else {
                self.rng.f64()
            },
        };
        let d = decide(&ctx);
        if window {
            *self.m.reasons.entry(d.reason).or_insert(0) += 1;
        }
        let prod = &mut self.products[p];
        if !attacker && reading.matches(&prod.truth) {
            if let Some(deal) = prod.deal.as_mut() {
                if deal.first_report.is_none()
                    && reading.price.is_some_and(|x| agrees(x, deal.price))
                {
                    deal.first_report = Some(now);
                }
            }
        }
        if d.reason != "too_old" {
            prod.recent.push_back(Recent {
                at: now,
                key: k,
                group,
                reading,
            });
            prod.last_report_at = now;
        }
        if let (true, Some(x)) = (reporter.established, reading.price) {
            prod.latest.insert(group, (reporter.trust, x, now));
        }
        if let Some(j) = d.credit {
            self.keys[k].rep.apply(j, now);
        }
        if d.waits() {
            let before = WaitingReport::before_for(
                &d,
                self.products[p].last_verified,
                ctx.published.map(|o| o.reading),
            );
            self.products[p].waiting.push((
                k,
                WaitingReport {
                    reading,
                    observed_at,
                    alerts,
                    before,
                },
                truthful,
            ));
        }
        if let Some(status) = d.publish {
            self.touch(p);
            let prod = &mut self.products[p];
            let old = prod.published;
            let shown = match (d.reason, old) {
                ("corroborated", Some(o)) => o.reading,
                _ => reading,
            };
            let verified = status == OfferStatus::Verified;
            prod.published = Some(Published {
                reading: shown,
                status,
                observed_at,
                last_verified_at: if verified {
                    Some(observed_at)
                } else {
                    old.and_then(|o| o.last_verified_at)
                },
            });
            if verified {
                prod.last_verified = Some(shown);
                if let Some(x) = shown.price {
                    prod.verified_low = Some(prod.verified_low.map_or(x, |l| l.min(x)));
                }
            }
            if status != OfferStatus::Provisional {
                self.rearm(p);
            }
        }
        if d.alert {
            self.fire(p);
        }
        if let Some(req) = d.crawl {
            if self.products[p].job.is_none() {
                let trigger = (!reporter.established && req.reason != "spot_check").then_some(k);
                self.enqueue(p, req, trigger, Some((k, !truthful)));
            }
        }
        if let (Some(want), Some(id)) = (d.escalate, self.products[p].job) {
            if let Some(job) = self.jobs.get_mut(&id) {
                let pending = JobPriority {
                    priority: job.priority,
                    critical: job.critical,
                };
                if let Some(up) = escalate(pending, &want) {
                    job.priority = up.priority;
                    job.critical = up.critical;
                    if window {
                        *self.m.reasons.entry("escalated").or_insert(0) += 1;
                    }
                }
            }
        }
        if d.attach && self.products[p].job.is_some() {
            let agreed_with_verified = ctx
                .published
                .is_some_and(|o| o.status == OfferStatus::Verified && reading.matches(&o.reading));
            self.products[p].attached.push((
                k,
                AttachedReport {
                    reading,
                    observed_at,
                    alerts,
                    agreed_with_verified,
                    backed_published: d.status != crate::trust::ReportStatus::Held
                        && !agreed_with_verified,
                },
                truthful,
            ));
        }
        if reporter.established {
            self.drift_check(p);
        }
    }

    fn drift_check(&mut self, p: usize) {
        let now = self.now;
        let prod = &mut self.products[p];
        let Some(published) = prod.published.and_then(|o| o.reading.price) else {
            return;
        };
        let since = prod
            .published
            .and_then(|o| o.last_verified_at)
            .unwrap_or(i64::MIN)
            .max(now - DRIFT_LOOKBACK_MS);
        prod.latest.retain(|_, v| v.2 >= since);
        let entries: Vec<(GroupId, f64, i64)> =
            prod.latest.iter().map(|(g, v)| (*g, v.0, v.1)).collect();
        let drifting = drift(&entries, published).is_some();
        if prod.drift.update(drifting, now) && prod.job.is_none() {
            let req = CrawlRequest {
                priority: 1.0,
                critical: false,
                reason: "drift",
            };
            self.enqueue(p, req, None, None);
        }
    }

    // ---- alerts and accounting ----

    fn touch(&mut self, p: usize) {
        let now = self.now;
        let start = self.window_start;
        let prod = &mut self.products[p];
        let from = prod.last_touch.max(start);
        if now > from && !prod.watches.is_empty() {
            let wms = (now - from) as f64 * prod.watches.len() as f64;
            self.m.watcher_ms += wms;
            let right = prod
                .published
                .is_some_and(|o| o.reading.matches(&prod.truth));
            if !right {
                self.m.wrong_watcher_ms += wms;
            }
        }
        prod.last_touch = now;
    }

    fn rearm(&mut self, p: usize) {
        let prod = &mut self.products[p];
        if let Some(x) = prod.published.and_then(|o| o.reading.price) {
            for w in prod.watches.iter_mut().filter(|w| w.target < x) {
                w.armed = true;
            }
        }
    }

    fn fire(&mut self, p: usize) {
        let now = self.now;
        let window = self.in_window();
        let prod = &mut self.products[p];
        let Some(o) = prod.published else { return };
        if o.status == OfferStatus::Provisional {
            return;
        }
        let Some(x) = o.reading.price else { return };
        let mut fired = 0u64;
        for w in prod.watches.iter_mut().filter(|w| w.armed && w.target >= x) {
            w.armed = false;
            fired += 1;
        }
        if fired == 0 {
            return;
        }
        prod.alerts_log.push_back((now, x));
        while prod.alerts_log.len() > 64 {
            prod.alerts_log.pop_front();
        }
        if let Some(deal) = prod.deal.as_mut() {
            if deal.alerted_at.is_none() && agrees(x, deal.price) {
                deal.alerted_at = Some(now);
            }
        }
        if window {
            self.m.alerts += fired;
            if !o.reading.matches(&prod.truth) {
                self.m.false_alerts += fired;
            }
        }
    }

    // ---- true prices ----

    fn change(&mut self, p: usize) {
        let next = self.prng.exp_ms(self.cfg.change_every_days * DAY_MS as f64);
        self.after(next, Ev::Change(p));
        if self.products[p].temporary {
            return;
        }
        self.touch(p);
        if self.in_window() {
            self.m.changes += 1;
        }
        let old = self.products[p].truth;
        let regular = self.products[p].regular;
        let r = self.prng.f64();
        let (truth, temp_for) = if r < 0.55 {
            let pct = self.prng.range(2, 20);
            let up = self.prng.chance(0.5);
            let newp = if up {
                regular * (100 + pct) / 100
            } else {
                regular * (100 - pct) / 100
            };
            self.products[p].regular = newp.max(1);
            (Reading::in_stock(newp.max(1)), None)
        } else if r < 0.80 {
            let off = self.prng.range(15, 45);
            let hours = self.prng.range(2, 48);
            (
                Reading::in_stock((regular * (100 - off) / 100).max(1)),
                Some(hours * HOUR),
            )
        } else if r < 0.92 {
            let off = self.prng.range(51, 75);
            let hours = self.prng.range(1, 6);
            (
                Reading::in_stock((regular * (100 - off) / 100).max(1)),
                Some(hours * HOUR),
            )
        } else {
            let hours = self.prng.range(2, 24);
            (
                Reading {
                    price: None,
                    availability: Availability::OutOfStock,
                },
                Some(hours * HOUR),
            )
        };
        self.set_truth(p, truth);
        if let Some(dt) = temp_for {
            self.products[p].temporary = true;
            self.after(dt, Ev::Revert(p));
        }
        // Deal suppressors react to real drops of watched products.
        if self.attack == Attack::DealSuppression && self.in_window() {
            let dropped = matches!((old.price, truth.price), (Some(a), Some(b)) if b < a);
            if dropped && !self.products[p].watches.is_empty() {
                for i in 0..self.crew.len() {
                    let key = self.crew[i];
                    let start = self.arng.range(0, 60 * SECOND);
                    self.after(
                        start,
                        Ev::Suppress {
                            key,
                            product: p,
                            old,
                            until: self.now + HOUR,
                        },
                    );
                }
            }
        }
    }

    fn revert(&mut self, p: usize) {
        self.touch(p);
        if self.in_window() {
            self.m.changes += 1;
        }
        let regular = self.products[p].regular;
        self.products[p].temporary = false;
        self.set_truth(p, Reading::in_stock(regular));
    }

    fn set_truth(&mut self, p: usize, truth: Reading) {
        self.close_deal(p);
        let prod = &mut self.products[p];
        prod.truth = truth;
        if let Some(x) = truth.price {
            if prod.watches.iter().any(|w| w.armed && w.target >= x) {
                prod.deal = Some(Deal {
                    change_at: self.now,
                    price: x,
                    first_report: None,
                    alerted_at: None,
                });
            }
        }
    }

    fn close_deal(&mut self, p: usize) {
        let Some(deal) = self.products[p].deal.take() else {
            return;
        };
        if deal.change_at < self.window_start {
            return;
        }
        let Some(first) = deal.first_report else {
            return;
        };
        self.m.deals += 1;
        match deal.alerted_at {
            Some(a) => self.latencies.push((a - first).max(0)),
            None => self.m.deals_missed += 1,
        }
    }

    // ---- the verifier ----

    fn enqueue(
        &mut self,
        p: usize,
        req: CrawlRequest,
        trigger: Option<usize>,
        creator: Option<(usize, bool)>,
    ) {
        let id = self.next_job;
        self.next_job += 1;
        let trigger_group = trigger.map(|k| {
            let key = &self.keys[k];
            group_of(Some(key.net), key.registered_at, k as i64)
        });
        self.jobs.insert(
            id,
            Job {
                product: p,
                priority: req.priority,
                critical: req.critical,
                reason: req.reason,
                enqueued_at: self.now,
                not_before: self.now,
                attempts: 0,
                trigger,
                trigger_group,
                creator,
                leased: false,
            },
        );
        self.products[p].job = Some(id);
        let day = self.now.div_euclid(DAY_MS);
        if let Some(k) = trigger {
            let t = &mut self.keys[k].triggered;
            t.counts(day);
            t.open += 1;
            t.day_crawls += 1;
        }
        if let Some(g) = trigger_group {
            let t = self.group_triggers.entry(g).or_default();
            t.counts(day);
            t.open += 1;
            t.day_crawls += 1;
        }
    }

    fn lease(&mut self) {
        let free = self.cfg.workers.saturating_sub(self.leased) as usize;
        if free == 0 {
            return;
        }
        let now = self.now;
        let ready: Vec<(u64, QueuedJob)> = self
            .jobs
            .iter()
            .filter(|(_, j)| !j.leased && j.not_before <= now)
            .map(|(id, j)| {
                (
                    *id,
                    QueuedJob {
                        priority: j.priority,
                        critical: j.critical,
                        enqueued_at: j.enqueued_at,
                    },
                )
            })
            .collect();
        if ready.is_empty() {
            return;
        }
        let queue: Vec<QueuedJob> = ready.iter().map(|r| r.1).collect();
        for i in pick_jobs(&queue, free) {
            let id = ready[i].0;
            if let Some(j) = self.jobs.get_mut(&id) {
                j.leased = true;
            }
            self.leased += 1;
            let dt = self.vrng.range(40 * SECOND, 100 * SECOND);
            self.after(dt, Ev::CrawlDone(id));
        }
    }

    fn close_job(&mut self, id: u64) {
        if let Some(job) = self.jobs.remove(&id) {
            let prod = &mut self.products[job.product];
            prod.job = None;
            prod.attached.clear();
            if let Some(k) = job.trigger {
                let t = &mut self.keys[k].triggered;
                t.open = t.open.saturating_sub(1);
            }
            if let Some(t) = job
                .trigger_group
                .and_then(|g| self.group_triggers.get_mut(&g))
            {
                t.open = t.open.saturating_sub(1);
            }
        }
    }

    fn crawl_done(&mut self, id: u64) {
        self.leased = self.leased.saturating_sub(1);
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let (p, reason, enqueued_at, attempts, creator) = (
            job.product,
            job.reason,
            job.enqueued_at,
            job.attempts + 1,
            job.creator,
        );
        if self.in_window() {
            self.m.crawls += 1;
            *self.m.crawls_by_reason.entry(reason).or_insert(0) += 1;
            if let Some((k, lie)) = creator {
                if self.keys[k].attacker {
                    self.m.attacker_crawls += 1;
                    if lie {
                        self.m.attacker_lie_crawls += 1;
                    } else {
                        *self
                            .m
                            .attacker_truth_crawls_by_reason
                            .entry(reason)
                            .or_insert(0) += 1;
                    }
                    *self.m.attacker_crawls_by_reason.entry(reason).or_insert(0) += 1;
                } else {
                    self.m.honest_crawls += 1;
                }
            }
        }
        let outcome = if self.vrng.chance(self.cfg.crawl_failure_rate) {
            CrawlOutcome::Failed
        } else {
            CrawlOutcome::Observed(self.products[p].truth)
        };
        let result = CrawlResult {
            outcome,
            now: self.now,
            enqueued_at,
            attempts,
            published: self.products[p].published,
        };
        let attached: Vec<AttachedReport> = self.products[p].attached.iter().map(|a| a.1).collect();
        let res = resolve(&result, &attached);
        match res.kind {
            ResolutionKind::Retry { at } => {
                if let Some(j) = self.jobs.get_mut(&id) {
                    j.attempts = attempts;
                    j.leased = false;
                    j.not_before = at;
                }
                return;
            }
            ResolutionKind::GiveUp { .. } => {
                self.close_job(id);
                return;
            }
            ResolutionKind::Confirmed | ResolutionKind::Refuted => {}
        }
        let now = self.now;
        let keys: Vec<(usize, bool)> = self.products[p]
            .attached
            .iter()
            .map(|a| (a.0, a.2))
            .collect();
        let window = self.in_window();
        for ((k, truthful), j) in keys.into_iter().zip(res.judgements.iter()) {
            self.keys[k].rep.apply(*j, now);
            self.note_judgement(k, "attached", *j, truthful);
            if window && !self.keys[k].attacker {
                *self.m.honest_judgements.entry(j.as_str()).or_insert(0) += 1;
            }
        }
        if let CrawlOutcome::Observed(crawled) = outcome {
            let waiting = std::mem::take(&mut self.products[p].waiting);
            for (k, w, truthful) in waiting {
                let j = judge_waiting(&w, &crawled, now);
                self.keys[k].rep.apply(j, now);
                self.note_judgement(k, "waiting", j, truthful);
                if window {
                    let who = if self.keys[k].attacker {
                        "attacker"
                    } else {
                        "honest"
                    };
                    *self
                        .m
                        .waiting_judgements
                        .entry(format!("{who}_{}", j.as_str()))
                        .or_insert(0) += 1;
                }
            }
        }
        if let Some(c) = res.correction {
            let n = self.products[p]
                .alerts_log
                .iter()
                .filter(|(at, x)| *at >= c.since && *x == c.refuted_price)
                .count() as u64;
            if self.in_window() {
                self.m.corrections += n;
            }
        }
        if let Some(reading) = res.publish {
            self.touch(p);
            let prod = &mut self.products[p];
            prod.published = Some(Published {
                reading,
                status: OfferStatus::Verified,
                observed_at: now,
                last_verified_at: Some(now),
            });
            if let Some(x) = reading.price {
                prod.verified_low = Some(prod.verified_low.map_or(x, |l| l.min(x)));
            }
            prod.last_verified = Some(reading);
            prod.last_crawl_at = now;
            self.rearm(p);
            if res.alert {
                self.fire(p);
            }
        }
        self.close_job(id);
    }

    /// Keeps an honest key's negative judgements for the figures
    /// (`honest_distrusted_negatives`): where (`attached`, `waiting`), what,
    /// and whether the report was true when observed.
    fn note_judgement(&mut self, k: usize, source: &'static str, j: Judgement, truthful: bool) {
        let key = &mut self.keys[k];
        if key.attacker && !truthful {
            *key.lie_judgements.entry(j.as_str()).or_insert(0) += 1;
        }
        if key.attacker || j.neg() == 0.0 {
            return;
        }
        let what = if truthful { "true" } else { "parse_error" };
        key.negatives
            .push((self.now, format!("{source}_{}_{what}", j.as_str())));
    }

    fn hourly(&mut self) {
        self.judge_crawl();
        let now = self.now;
        for p in 0..self.products.len() {
            let prod = &self.products[p];
            if prod.watches.is_empty() || prod.job.is_some() {
                continue;
            }
            let every = refresh_interval(prod.watches.len() as u32);
            if now - prod.last_report_at.max(prod.last_crawl_at) >= every {
                let req = CrawlRequest {
                    priority: 1.0,
                    critical: false,
                    reason: "refresh",
                };
                self.enqueue(p, req, None, None);
            }
        }
    }

    /// Queues a judge crawl when due, as the stores do
    /// ([`judge_crawl_due`], `store::trust_sqlite::queue_judge_crawl`): the
    /// oldest [`JUDGE_SCAN_ROWS`] waiting reports observed between
    /// [`JUDGE_AFTER_MS`] and the horizon ago; of those, the ones whose key
    /// has no evidence and no other waiting report; the product with the
    /// most of them and no job (ties: the oldest). The job's creator (for
    /// the figures) is that oldest report's key.
    fn judge_crawl(&mut self) {
        let now = self.now;
        while self.judge_crawls.front().is_some_and(|t| now - *t >= HOUR) {
            self.judge_crawls.pop_front();
        }
        if !judge_crawl_due(self.judge_crawls.len() as u32) {
            return;
        }
        let mut rows_of: BTreeMap<usize, u32> = BTreeMap::new();
        // (observed_at, product, key, truthful)
        let mut scan: Vec<(i64, usize, usize, bool)> = Vec::new();
        for (p, prod) in self.products.iter().enumerate() {
            for (k, w, truthful) in &prod.waiting {
                *rows_of.entry(*k).or_insert(0) += 1;
                let age = now - w.observed_at;
                if (JUDGE_AFTER_MS..=WAITING_HORIZON_MS).contains(&age) {
                    scan.push((w.observed_at, p, *k, *truthful));
                }
            }
        }
        scan.sort_unstable_by_key(|r| (r.0, r.1, r.2));
        scan.truncate(JUDGE_SCAN_ROWS as usize);
        // product -> (eligible rows, oldest, its key, truthful)
        let mut per: BTreeMap<usize, (usize, i64, usize, bool)> = BTreeMap::new();
        for (at, p, k, truthful) in scan {
            let rep = &self.keys[k].rep;
            let eligible = rep.alpha == 1.0
                && rep.beta == 1.0
                && rows_of.get(&k) == Some(&1)
                && self.products[p].job.is_none();
            if eligible {
                let e = per.entry(p).or_insert((0, at, k, truthful));
                e.0 += 1;
            }
        }
        let best = per.iter().max_by(|a, b| {
            a.1 .0
                .cmp(&b.1 .0)
                .then(b.1 .1.cmp(&a.1 .1))
                .then(b.0.cmp(a.0))
        });
        if let Some((&p, &(_, _, k, truthful))) = best {
            let req = CrawlRequest {
                priority: 1.0,
                critical: false,
                reason: "judge",
            };
            self.enqueue(p, req, None, Some((k, !truthful)));
            self.judge_crawls.push_back(now);
        }
    }

    // ---- attacks ----

    /// A random product: watched (by watcher count among a few random
    /// ones, as an attacker reading product pages would choose) or not.
    fn pick(&mut self, watched: bool) -> Option<usize> {
        let list = if watched {
            &self.watched
        } else {
            &self.unwatched
        };
        if list.is_empty() {
            return None;
        }
        let n = list.len() as i64 - 1;
        let mut best = list[self.arng.range(0, n) as usize];
        for _ in 0..4 {
            let c = list[self.arng.range(0, n) as usize];
            if self.products[c].watches.len() > self.products[best].watches.len() {
                best = c;
            }
        }
        Some(best)
    }

    /// `percent`% of the price the attacker sees published (or the truth).
    fn fake_price(&self, p: usize, percent: i64) -> i64 {
        let prod = &self.products[p];
        let base = prod
            .published
            .and_then(|o| o.reading.price)
            .or(prod.truth.price)
            .unwrap_or(prod.regular);
        (base * percent / 100).max(1)
    }

    fn lie_at(&mut self, dt: i64, key: usize, product: usize, price: i64) {
        self.after(
            dt,
            Ev::Lie {
                key,
                product,
                reading: Reading::in_stock(price),
            },
        );
    }

    fn attacker_net(&mut self, pool: usize) -> [u8; 16] {
        let n = self.attacker_nets.len().min(pool).max(1) as i64;
        self.attacker_nets
            .get(self.arng.range(0, n - 1) as usize)
            .copied()
            .unwrap_or([0; 16])
    }

    fn attack_tick(&mut self) {
        self.tick += 1;
        match self.attack {
            Attack::PennyBomb => {
                if let Some(p) = self.pick(true) {
                    for i in 0..5 {
                        let k = self.fresh_attacker(None);
                        self.lie_at(i * 20 * SECOND, k, p, 1);
                    }
                }
                self.after(2 * HOUR, Ev::AttackTick);
            }
            Attack::SybilSwarm => {
                if let Some(p) = self.pick(true) {
                    let fake = self.fake_price(p, 65);
                    let now = self.now;
                    let live: Vec<usize> = self
                        .crew
                        .iter()
                        .copied()
                        .filter(|&k| !self.keys[k].rep.distrusted(now))
                        .collect();
                    for j in 0..live.len().min(40) {
                        let i = self.arng.range(j as i64, live.len() as i64 - 1) as usize;
                        let k = live[i];
                        let dt = self.arng.range(0, 10 * MINUTE_MS);
                        self.lie_at(dt, k, p, fake);
                    }
                }
                self.after(6 * HOUR, Ev::AttackTick);
            }
            Attack::SlowPoison => {
                for &k in &self.crew {
                    self.keys[k].poison = true;
                }
            }
            Attack::Collusion => {
                let now = self.now;
                let mut ready: Vec<(f64, usize)> = self
                    .crew
                    .iter()
                    .map(|&k| (self.keys[k].rep.score(now), k))
                    .filter(|&(t, k)| t >= 0.7 && !self.keys[k].rep.distrusted(now))
                    .collect();
                ready.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                if ready.len() >= 2 {
                    let ring: Vec<usize> = ready.iter().take(3).map(|r| r.1).collect();
                    if self.tick % 2 == 0 {
                        if let Some(p) = self.pick(true) {
                            let fake = self.fake_price(p, 70);
                            for (i, &k) in ring.iter().enumerate() {
                                self.lie_at(i as i64 * 20 * SECOND, k, p, fake);
                            }
                        }
                    } else if let Some(p) = self.pick(false) {
                        let fake = self.fake_price(p, 120);
                        for (i, &k) in ring.iter().enumerate() {
                            self.lie_at(i as i64 * 30 * SECOND, k, p, fake);
                        }
                    }
                }
                self.after(8 * HOUR, Ev::AttackTick);
            }
            Attack::KeyChurn => {
                let net = self.attacker_net(5);
                let k = self.fresh_attacker(Some(net));
                let target = match self.tick % 3 {
                    0 => self.pick(true).map(|p| (p, self.fake_price(p, 60))),
                    1 => self.pick(false).map(|p| (p, self.fake_price(p, 120))),
                    _ => self.pick(true).map(|p| (p, 1)),
                };
                if let Some((p, price)) = target {
                    self.lie_at(0, k, p, price);
                }
                self.after(30 * MINUTE_MS, Ev::AttackTick);
            }
            Attack::VerifierExhaustion => {
                let n = self.products.len() as i64 - 1;
                for _ in 0..150 {
                    let net = self.attacker_net(20);
                    let k = self.fresh_attacker(Some(net));
                    let p = self.arng.range(0, n) as usize;
                    let dt = self.arng.range(0, HOUR - 1);
                    self.lie_at(dt, k, p, 1);
                    for _ in 0..10 {
                        let q = self.arng.range(0, n) as usize;
                        let price = self.fake_price(q, 120);
                        let dt2 = dt + self.arng.range(1, 10 * MINUTE_MS);
                        self.lie_at(dt2, k, q, price);
                    }
                }
                self.after(HOUR, Ev::AttackTick);
            }
            Attack::None | Attack::Sleeper | Attack::DealSuppression => {}
        }
    }

    fn finish(mut self) -> Metrics {
        self.now = self.end;
        for p in 0..self.products.len() {
            self.touch(p);
            // A deal first reported in the last 10 minutes has not had its
            // chance yet: not counted.
            let recent = self.products[p]
                .deal
                .as_ref()
                .and_then(|d| d.first_report)
                .is_some_and(|f| self.end - f < 10 * MINUTE_MS);
            if recent {
                self.products[p].deal = None;
            }
            self.close_deal(p);
        }
        let end = self.end;
        for key in &self.keys {
            let distrusted = key.rep.distrusted(end);
            if key.attacker {
                if key.lied {
                    self.m.attacker_keys += 1;
                    self.m.attacker_distrusted += u64::from(distrusted);
                    if !distrusted {
                        *self
                            .m
                            .attacker_undistrusted_lies
                            .entry(lie_label(key, end))
                            .or_insert(0) += 1;
                    }
                }
            } else {
                self.m.honest_keys += 1;
                self.m.honest_distrusted += u64::from(distrusted);
                if distrusted {
                    let recent = |t: Option<i64>| t.is_some_and(|t| end - t < HALF_LIFE_MS);
                    let (a, b) = key.rep.decayed(end);
                    let cause = if recent(key.rep.severe_at[0]) && recent(key.rep.severe_at[1]) {
                        "two_severe_in_half_life"
                    } else if a < 6.0 {
                        "beta_over_alpha_young"
                    } else if b > a {
                        "beta_over_alpha"
                    } else {
                        "other"
                    };
                    *self.m.honest_distrusted_by_cause.entry(cause).or_insert(0) += 1;
                    for (_, label) in key.negatives.iter().filter(|n| end - n.0 < HALF_LIFE_MS) {
                        *self
                            .m
                            .honest_distrusted_negatives
                            .entry(label.clone())
                            .or_insert(0) += 1;
                    }
                }
            }
        }
        self.latencies.sort_unstable();
        self.m.latency_p50_ms = percentile(&self.latencies, 50);
        self.m.latency_p95_ms = percentile(&self.latencies, 95);
        self.m
    }
}

/// How the lies of an attacker key that is not distrusted at `end` were
/// judged (`attacker_undistrusted_lies`):
/// `lies_<n>_severe_<s>_refuted_<m>_no_evidence_<e>_confirmed_<c>_unjudged_<u>_<established|probation>`.
/// `unjudged` lies were never attached to or waiting for a crawl that
/// observed the product (e.g. a low-impact lie rule 5 published without a
/// crawl, or an echo of one).
fn lie_label(key: &Key, end: i64) -> String {
    let n = |j: Judgement| key.lie_judgements.get(j.as_str()).copied().unwrap_or(0);
    let (s, m, e, c) = (
        n(Judgement::SevereRefuted),
        n(Judgement::Refuted),
        n(Judgement::NoEvidence),
        n(Judgement::Confirmed),
    );
    let unjudged = key.lies.saturating_sub(s + m + e + c);
    let standing = if key.rep.established(end) {
        "established"
    } else {
        "probation"
    };
    format!(
        "lies_{}_severe_{s}_refuted_{m}_no_evidence_{e}_confirmed_{c}_unjudged_{unjudged}_{standing}",
        key.lies
    )
}

//! A circuit breaker per marketplace.
//!
//! Closed: requests flow; consecutive failures and consecutive CAPTCHAs are
//! counted separately (a success resets both). Reaching either threshold
//! opens the breaker: requests are refused until the cool-down has passed.
//! Then it is half open: exactly one probe request may go; its success
//! closes the breaker, its failure re-opens it for another cool-down.
//!
//! Judgement call: CAPTCHAs get their own, lower threshold (default 2)
//! because a robot check means Amazon is already suspicious of us, and
//! every further request makes that worse; plain failures (503s, timeouts)
//! are often Amazon's own hiccups (default 5).

/// Thresholds and cool-down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// Consecutive CAPTCHAs or blocks that open the breaker.
    pub captcha_threshold: u32,
    /// How long the breaker stays open before a probe, in milliseconds.
    pub cooldown_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            captcha_threshold: 2,
            cooldown_ms: 60_000,
        }
    }
}

/// Where the breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow; counters of consecutive bad outcomes.
    Closed {
        /// Consecutive failures.
        failures: u32,
        /// Consecutive CAPTCHAs or blocks.
        captchas: u32,
    },
    /// Requests are refused until `until_ms`.
    Open {
        /// End of the cool-down.
        until_ms: u64,
    },
    /// One probe may go; `probing` while it is in flight.
    HalfOpen {
        /// Whether the probe has been handed out.
        probing: bool,
    },
}

/// The answer to "may I send a request now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Yes (closed).
    Allowed,
    /// Yes, as the single half-open probe: report its outcome.
    Probe,
    /// No; try again in this many milliseconds.
    Rejected {
        /// Suggested wait.
        retry_in_ms: u64,
    },
}

/// What a request came back with, as the breaker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The site answered normally (a product page, or a clean 404).
    Success,
    /// A transient failure: 5xx, timeout, connection error.
    Failure,
    /// A robot check or an explicit block.
    Captcha,
}

/// One breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> CircuitBreaker {
        CircuitBreaker {
            config,
            state: BreakerState::Closed {
                failures: 0,
                captchas: 0,
            },
        }
    }

    /// The current state (an open breaker whose cool-down is over still
    /// reads `Open` until someone asks for admission).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Asks to send a request at `now_ms`.
    pub fn admit(&mut self, now_ms: u64) -> Admission {
        match self.state {
            BreakerState::Closed { .. } => Admission::Allowed,
            BreakerState::Open { until_ms } if now_ms >= until_ms => {
                self.state = BreakerState::HalfOpen { probing: true };
                Admission::Probe
            }
            BreakerState::Open { until_ms } => Admission::Rejected {
                retry_in_ms: until_ms - now_ms,
            },
            BreakerState::HalfOpen { probing: false } => {
                self.state = BreakerState::HalfOpen { probing: true };
                Admission::Probe
            }
            // Another probe is in flight: check back in a little while.
            BreakerState::HalfOpen { probing: true } => Admission::Rejected {
                retry_in_ms: (self.config.cooldown_ms / 10).max(100),
            },
        }
    }

    /// Records the outcome of an admitted request.
    pub fn record(&mut self, verdict: Verdict, now_ms: u64) {
        let open = BreakerState::Open {
            until_ms: now_ms.saturating_add(self.config.cooldown_ms),
        };
        self.state = match (self.state, verdict) {
            (_, Verdict::Success) => BreakerState::Closed {
                failures: 0,
                captchas: 0,
            },
            (BreakerState::HalfOpen { .. }, _) => open,
            // A late answer to a request admitted before the breaker
            // opened does not extend the cool-down.
            (BreakerState::Open { until_ms }, _) => BreakerState::Open { until_ms },
            (BreakerState::Closed { failures, captchas }, Verdict::Failure) => {
                if failures + 1 >= self.config.failure_threshold {
                    open
                } else {
                    BreakerState::Closed {
                        failures: failures + 1,
                        captchas,
                    }
                }
            }
            (BreakerState::Closed { failures, captchas }, Verdict::Captcha) => {
                if captchas + 1 >= self.config.captcha_threshold {
                    open
                } else {
                    BreakerState::Closed {
                        failures,
                        captchas: captchas + 1,
                    }
                }
            }
        };
    }

    /// The admitted probe ended without a verdict (the job was cancelled):
    /// let another probe go.
    pub fn abandon_probe(&mut self) {
        if self.state == (BreakerState::HalfOpen { probing: true }) {
            self.state = BreakerState::HalfOpen { probing: false };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: 3,
            captcha_threshold: 2,
            cooldown_ms: 1000,
        })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let mut b = breaker();
        b.record(Verdict::Failure, 0);
        b.record(Verdict::Failure, 0);
        b.record(Verdict::Success, 0);
        b.record(Verdict::Failure, 0);
        b.record(Verdict::Failure, 0);
        assert_eq!(
            b.admit(0),
            Admission::Allowed,
            "the success reset the count"
        );
        b.record(Verdict::Failure, 10);
        assert_eq!(b.state(), BreakerState::Open { until_ms: 1010 });
        assert_eq!(b.admit(500), Admission::Rejected { retry_in_ms: 510 });
    }

    #[test]
    fn captchas_open_it_sooner() {
        let mut b = breaker();
        b.record(Verdict::Captcha, 0);
        assert_eq!(b.admit(0), Admission::Allowed);
        b.record(Verdict::Captcha, 5);
        assert_eq!(b.state(), BreakerState::Open { until_ms: 1005 });
    }

    #[test]
    fn half_open_lets_exactly_one_probe_through() {
        let mut b = breaker();
        b.record(Verdict::Captcha, 0);
        b.record(Verdict::Captcha, 0);
        assert!(matches!(b.admit(999), Admission::Rejected { .. }));
        assert_eq!(b.admit(1000), Admission::Probe);
        assert!(matches!(b.admit(1001), Admission::Rejected { .. }));
        assert!(matches!(b.admit(1002), Admission::Rejected { .. }));
    }

    #[test]
    fn probe_success_closes() {
        let mut b = breaker();
        for _ in 0..3 {
            b.record(Verdict::Failure, 0);
        }
        assert_eq!(b.admit(1000), Admission::Probe);
        b.record(Verdict::Success, 1200);
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                failures: 0,
                captchas: 0
            }
        );
        assert_eq!(b.admit(1201), Admission::Allowed);
    }

    #[test]
    fn probe_failure_reopens_for_a_full_cooldown() {
        let mut b = breaker();
        for _ in 0..3 {
            b.record(Verdict::Failure, 0);
        }
        assert_eq!(b.admit(1000), Admission::Probe);
        b.record(Verdict::Captcha, 1500);
        assert_eq!(b.state(), BreakerState::Open { until_ms: 2500 });
        assert!(matches!(
            b.admit(2499),
            Admission::Rejected { retry_in_ms: 1 }
        ));
        assert_eq!(b.admit(2500), Admission::Probe);
    }

    #[test]
    fn late_failures_do_not_extend_an_open_breaker() {
        let mut b = breaker();
        b.record(Verdict::Captcha, 0);
        b.record(Verdict::Captcha, 0);
        b.record(Verdict::Failure, 900);
        assert_eq!(b.state(), BreakerState::Open { until_ms: 1000 });
    }

    #[test]
    fn abandoned_probe_frees_the_slot() {
        let mut b = breaker();
        b.record(Verdict::Captcha, 0);
        b.record(Verdict::Captcha, 0);
        assert_eq!(b.admit(1000), Admission::Probe);
        b.abandon_probe();
        assert_eq!(b.admit(1001), Admission::Probe);
    }
}

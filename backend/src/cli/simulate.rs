//! `pricewatch simulate`: the adversarial benchmark of TRUST.md, run
//! against the real decision code (`backend::trust`) with a simulated
//! clock. The world and the attacks are described in
//! `backend::trust::sim`. Prints the configuration, one table row per
//! scenario (honest only, then each attack), and one JSON line per
//! scenario (`{"scenario": ..., ...}`). The same flags give the same
//! output.

use crate::trust::sim::{self, Attack, Metrics, SimConfig};
use anyhow::bail;
use clap::Args;

/// Flags of `simulate`.
#[derive(Debug, Args, Clone)]
pub struct SimulateArgs {
    /// RNG seed: the same seed (and flags) gives the same output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// One attack (penny_bomb, sybil_swarm, sleeper, slow_poison,
    /// collusion, key_churn, verifier_exhaustion, deal_suppression, or
    /// none for the honest population only), or `all`.
    #[arg(long, default_value = "all")]
    pub attack: String,
    /// Measured days.
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: u32,
    /// Honest-only days before the measured window (trust builds up).
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(0..=365))]
    pub warmup_days: u32,
    /// Honest keys at the start (1% more join every day).
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub honest_keys: u32,
    /// Products.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub products: u32,
    /// Parallel verification crawlers.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub workers: u32,
    /// Mean days between true price changes of one product.
    #[arg(long, default_value_t = 2.0)]
    pub change_every_days: f64,
    /// Share of honest reports with a parse error (price / 100).
    #[arg(long, default_value_t = 1.0 / 3000.0)]
    pub parse_error_rate: f64,
    /// Share of crawl attempts that fail (retried).
    #[arg(long, default_value_t = 0.02)]
    pub crawl_failure_rate: f64,
}

impl SimulateArgs {
    fn config(&self) -> anyhow::Result<SimConfig> {
        let unit = |name: &str, v: f64| -> anyhow::Result<f64> {
            if !(0.0..=1.0).contains(&v) {
                bail!("--{name} must be between 0 and 1, got {v}");
            }
            Ok(v)
        };
        if !(self.change_every_days > 0.01 && self.change_every_days <= 365.0) {
            bail!(
                "--change-every-days must be in (0.01, 365], got {}",
                self.change_every_days
            );
        }
        Ok(SimConfig {
            seed: self.seed,
            days: self.days,
            warmup_days: self.warmup_days,
            honest_keys: self.honest_keys,
            products: self.products,
            workers: self.workers,
            change_every_days: self.change_every_days,
            parse_error_rate: unit("parse-error-rate", self.parse_error_rate)?,
            crawl_failure_rate: unit("crawl-failure-rate", self.crawl_failure_rate)?,
        })
    }

    fn attacks(&self) -> anyhow::Result<Vec<Attack>> {
        if self.attack == "all" {
            return Ok(Attack::ALL.to_vec());
        }
        match Attack::parse(&self.attack) {
            Some(Attack::None) => Ok(vec![Attack::None]),
            Some(a) => Ok(vec![Attack::None, a]),
            None => bail!(
                "unknown attack {:?} (all, none, {})",
                self.attack,
                Attack::ALL[1..]
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Runs the scenarios and prints the table and the JSON lines.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    print!("{}", render(&args)?);
    Ok(())
}

/// The whole output of a run.
pub fn render(args: &SimulateArgs) -> anyhow::Result<String> {
    let cfg = args.config()?;
    let attacks = args.attacks()?;
    let mut out = format!(
        "pricewatch simulate: seed {}, {} measured days after {} warm-up days, {} honest keys, \
         {} products, {} crawlers, a price change every {} days per product, parse errors {:.5}, \
         crawl failures {:.3}",
        cfg.seed,
        cfg.days,
        cfg.warmup_days,
        cfg.honest_keys,
        cfg.products,
        cfg.workers,
        cfg.change_every_days,
        cfg.parse_error_rate,
        cfg.crawl_failure_rate
    );
    out.push('\n');
    let results: Vec<Metrics> = attacks.iter().map(|&a| sim::run(&cfg, a)).collect();
    out.push_str(&table(&results));
    for m in &results {
        out.push_str(&json_line(m));
        out.push('\n');
    }
    Ok(out)
}

fn minutes(ms: Option<i64>) -> String {
    ms.map_or("-".into(), |v| format!("{:.1}", v as f64 / 60_000.0))
}

/// The human-readable table (targets in the header).
pub fn table(results: &[Metrics]) -> String {
    let mut out = String::new();
    out.push_str(
        "\nscenario             reports  alerts false  false/alert  corr  deals  p50m  p95m missed  \
         crawls  /1k rep  /change  chg-only  atk-keys crawl/atk  lie/atk truth/atk atk-dist  hon-dist  wrong-price\n",
    );
    out.push_str(
        "target                                   0 | <=1e-4                     <=3  <=5              \
                 <=1.2                  <=1                      >=95%     <=1%\n",
    );
    for m in results {
        out.push_str(&format!(
            "{:<19} {:>8} {:>7} {:>5} {:>12.2e} {:>5} {:>6} {:>5} {:>5} {:>6} {:>7} {:>8.1} {:>8.2} {:>9.2} {:>9} {:>9.2} {:>8.2} {:>9.2} {:>7.1}% {:>8.2}% {:>11.4}%\n",
            m.scenario,
            m.reports,
            m.alerts,
            m.false_alerts,
            m.false_alert_rate(),
            m.corrections,
            m.deals,
            minutes(m.latency_p50_ms),
            minutes(m.latency_p95_ms),
            m.deals_missed,
            m.crawls,
            m.crawls_per_1k_reports(),
            m.crawls_per_change(),
            m.change_crawls_per_change(),
            m.attacker_keys,
            m.crawls_per_attacker_key(),
            m.lie_crawls_per_attacker_key(),
            m.truth_crawls_per_attacker_key(),
            100.0 * m.attacker_distrusted_share(),
            100.0 * m.honest_distrusted_share(),
            100.0 * m.wrong_price_share(),
        ));
    }
    out
}

/// One machine-readable line.
pub fn json_line(m: &Metrics) -> String {
    serde_json::json!({
        "scenario": m.scenario,
        "reports": m.reports,
        "alerts": m.alerts,
        "false_alerts": m.false_alerts,
        "false_alert_rate": m.false_alert_rate(),
        "corrections": m.corrections,
        "deals": m.deals,
        "deals_missed": m.deals_missed,
        "latency_p50_ms": m.latency_p50_ms,
        "latency_p95_ms": m.latency_p95_ms,
        "crawls": m.crawls,
        "crawls_per_1k_reports": m.crawls_per_1k_reports(),
        "changes": m.changes,
        "crawls_per_change": m.crawls_per_change(),
        "change_crawls_per_change": m.change_crawls_per_change(),
        "crawls_by_reason": m.crawls_by_reason,
        "honest_crawls": m.honest_crawls,
        "crawls_per_honest_key": m.crawls_per_honest_key(),
        "attacker_crawls": m.attacker_crawls,
        "attacker_crawls_by_reason": m.attacker_crawls_by_reason,
        "attacker_truth_crawls_by_reason": m.attacker_truth_crawls_by_reason,
        "crawls_per_attacker_key": m.crawls_per_attacker_key(),
        "attacker_lie_crawls": m.attacker_lie_crawls,
        "lie_crawls_per_attacker_key": m.lie_crawls_per_attacker_key(),
        "truth_crawls_per_attacker_key": m.truth_crawls_per_attacker_key(),
        "attacker_keys": m.attacker_keys,
        "attacker_distrusted": m.attacker_distrusted,
        "attacker_distrusted_share": m.attacker_distrusted_share(),
        "attacker_undistrusted_lies": m.attacker_undistrusted_lies,
        "honest_keys": m.honest_keys,
        "honest_distrusted": m.honest_distrusted,
        "honest_distrusted_share": m.honest_distrusted_share(),
        "honest_distrusted_by_cause": m.honest_distrusted_by_cause,
        "honest_distrusted_negatives": m.honest_distrusted_negatives,
        "wrong_price_watcher_share": m.wrong_price_share(),
        "honest_judgements": m.honest_judgements,
        "waiting_judgements": m.waiting_judgements,
        "reasons": m.reasons,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    fn args(extra: &[&str]) -> SimulateArgs {
        let mut argv = vec!["simulate"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).args
    }

    #[test]
    fn same_seed_same_output() {
        let small = [
            "--seed",
            "7",
            "--attack",
            "key_churn",
            "--days",
            "2",
            "--warmup-days",
            "2",
            "--honest-keys",
            "60",
            "--products",
            "40",
        ];
        let a = render(&args(&small)).expect("run");
        let b = render(&args(&small)).expect("run");
        assert_eq!(a, b);
        assert_eq!(a.lines().filter(|l| l.starts_with('{')).count(), 2);
        assert!(a.contains("\"scenario\":\"key_churn\""));
        let mut other = small;
        other[1] = "8";
        assert_ne!(a, render(&args(&other)).expect("run"), "the seed matters");
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(render(&args(&["--attack", "nope"])).is_err());
        assert!(render(&args(&["--parse-error-rate", "2"])).is_err());
        assert!(render(&args(&["--change-every-days", "0"])).is_err());
    }
}

//! The adversarial simulation behind `pricewatch simulate` (work in
//! progress: filled in by the next commits).

/// Attacks the simulation can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attack {
    /// Honest population only.
    None,
}

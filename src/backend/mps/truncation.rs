//! Truncation settings and the record of what truncation discarded.

use crate::error::{Error, Result};

/// Relative discarded weight below which [`Truncation::exact`] drops singular values: round-off,
/// not physics (singular values below about `1e-12` of the norm).
pub const EXACT_CUTOFF: f64 = 1e-24;

/// Which of a cut's smallest singular values the cutoff lets go (before the max bond caps
/// what is left). The simulators this crate is measured against read the same number in two
/// ways: Qiskit Aer, ITensor and quimb (`cutoff_mode="rsum2"`) bound the summed weight that
/// a cut discards, prism-q bounds each discarded value against the largest. Neither rule
/// keeps everything the other keeps.
///
/// Below, `s_1 >= s_2 >= ...` are the singular values at a cut and `c` is the cutoff.
///
/// ```
/// use qfl::{CutoffRule, Truncation};
/// // The default keeps what either rule keeps.
/// assert_eq!(Truncation::default().cutoff_rule(), CutoffRule::Both);
/// let t = Truncation::default().with_cutoff(1e-4).with_cutoff_rule(CutoffRule::DiscardedWeight);
/// assert_eq!(t.cutoff_rule().name(), "weight");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CutoffRule {
    /// Drop a value only where both rules below would drop it: the discarded weight stays
    /// at most `c sum_j s_j^2`, and no value with `s_k^2 > c s_1^2` is dropped. At a shared
    /// cutoff a cut then keeps at least what Qiskit Aer's, quimb's and prism-q's rules keep
    /// (given the same singular values), at the price of a few more columns.
    #[default]
    Both,
    /// The smallest values while their summed squares stay at most `c sum_j s_j^2` (Qiskit
    /// Aer's, ITensor's and quimb's `rsum2`): the discarded weight per cut is bounded.
    DiscardedWeight,
    /// Every value with `s_k^2 <= c s_1^2` (prism-q's rule, whose threshold on `s_k / s_1` is
    /// `sqrt(c)`): no value above `sqrt(c)` of the largest is dropped.
    RelativeValue,
}

impl CutoffRule {
    /// Whether a value is kept, given whether the discarded-weight rule and the
    /// relative-value rule would each keep it.
    fn keeps(self, by_weight: bool, by_value: bool) -> bool {
        match self {
            CutoffRule::Both => by_weight || by_value,
            CutoffRule::DiscardedWeight => by_weight,
            CutoffRule::RelativeValue => by_value,
        }
    }

    /// The rule's name as the command line spells it: `both`, `weight` or `value`.
    pub fn name(&self) -> &'static str {
        match self {
            CutoffRule::Both => "both",
            CutoffRule::DiscardedWeight => "weight",
            CutoffRule::RelativeValue => "value",
        }
    }
}

/// How an MPS cut is truncated after a two-site SVD. Explicit per state, never global.
///
/// At each cut with singular values `s_1 >= s_2 >= ...`, the smallest ones are dropped as
/// the [`CutoffRule`] lets the cutoff drop them (by default only those both
/// `sum_{dropped} s_k^2 <= cutoff * sum_j s_j^2` and `s_k^2 <= cutoff * s_1^2` allow); then,
/// if more than `max_bond` remain, only the largest `max_bond` are kept. The kept values are
/// rescaled so the state stays normalized, and the discarded fraction `eps` of the weight is
/// recorded.
///
/// ```
/// use qfl::Truncation;
/// let t = Truncation::default().with_max_bond(64).with_cutoff(1e-12);
/// assert_eq!(t.max_bond(), Some(64));
/// assert!(t.validate().is_ok());
/// assert!(Truncation::default().with_max_bond(0).validate().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Truncation {
    max_bond: Option<usize>,
    cutoff: f64,
    rule: CutoffRule,
}

impl Default for Truncation {
    /// No bond limit and a relative cutoff of `1e-16` (Qiskit Aer's default threshold), read
    /// by both rules (`CutoffRule::Both`).
    fn default() -> Self {
        Truncation {
            max_bond: None,
            cutoff: 1e-16,
            rule: CutoffRule::Both,
        }
    }
}

/// The absolute error of a Gram eigenvalue, as a share of the trace, that
/// [`Truncation::certain_keep`] allows for: about `n eps`, `1.1e-13` for `n = 512`.
const CERTAIN_KEEP_MARGIN: f64 = 1e-12;

impl Truncation {
    /// No bond limit; drops only round-off ([`EXACT_CUTOFF`]).
    pub fn exact() -> Self {
        Truncation {
            max_bond: None,
            cutoff: EXACT_CUTOFF,
            rule: CutoffRule::Both,
        }
    }

    /// Sets the largest bond dimension kept (at least 1).
    pub fn with_max_bond(mut self, max_bond: usize) -> Self {
        self.max_bond = Some(max_bond);
        self
    }

    /// Removes the bond limit.
    pub fn without_max_bond(mut self) -> Self {
        self.max_bond = None;
        self
    }

    /// Sets the relative cutoff on the discarded weight per cut (in `[0, 1)`).
    pub fn with_cutoff(mut self, cutoff: f64) -> Self {
        self.cutoff = cutoff;
        self
    }

    /// Sets how the cutoff is read ([`CutoffRule`]; default [`CutoffRule::Both`]).
    pub fn with_cutoff_rule(mut self, rule: CutoffRule) -> Self {
        self.rule = rule;
        self
    }

    /// How the cutoff is read.
    pub fn cutoff_rule(&self) -> CutoffRule {
        self.rule
    }

    /// The bond limit.
    pub fn max_bond(&self) -> Option<usize> {
        self.max_bond
    }

    /// The relative cutoff.
    pub fn cutoff(&self) -> f64 {
        self.cutoff
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for `max_bond == 0` or a cutoff outside `[0, 1)`.
    pub fn validate(&self) -> Result<()> {
        if self.max_bond == Some(0) {
            return Err(Error::InvalidSetting {
                name: "max_bond",
                value: "0".into(),
                reason: "must be at least 1",
            });
        }
        if !(self.cutoff.is_finite() && (0.0..1.0).contains(&self.cutoff)) {
            return Err(Error::InvalidSetting {
                name: "cutoff",
                value: self.cutoff.to_string(),
                reason: "must be finite and in [0, 1)",
            });
        }
        Ok(())
    }

    /// How many directions [`keep`](Self::keep) keeps, if that is certain from the Gram
    /// eigenvalues `vals` (non-decreasing, squared singular values up to the eigensolver's
    /// error) alone: the max bond `m` is below their number, and the largest eigenvalue
    /// beyond the `m` largest is one the cutoff keeps by more than that error
    /// ([`CERTAIN_KEEP_MARGIN`] of the trace): it exceeds the cutoff's share of their sum
    /// (so the discarded-weight rule keeps it) or of the largest (so the relative-value rule
    /// does), as the [`CutoffRule`] asks. The cutoff then drops none of the `m + 1` largest,
    /// and the max bond drops all the rest: exactly `m` are kept, those of the `m` largest
    /// eigenvalues (exact weights could only reorder values that differ by round-off). A
    /// split then needs only those `m` directions.
    pub(crate) fn certain_keep(&self, vals: &[f64]) -> Option<usize> {
        let m = self.max_bond?;
        let k = vals.len();
        if m >= k {
            return None;
        }
        let trace: f64 = vals.iter().sum();
        if trace <= 0.0 {
            return None;
        }
        let next = vals[k - m - 1];
        let by_weight = next > (self.cutoff + CERTAIN_KEEP_MARGIN) * trace;
        // Both the value and the largest may be off by the margin.
        let by_value = next > self.cutoff * vals[k - 1] + 2.0 * CERTAIN_KEEP_MARGIN * trace;
        self.rule.keeps(by_weight, by_value).then_some(m)
    }

    /// How many of the non-increasing singular values `s` to keep, and the discarded fraction
    /// of the weight.
    pub(crate) fn keep(&self, s: &[f64]) -> (usize, f64) {
        let total: f64 = s.iter().map(|x| x * x).sum();
        if total <= 0.0 || s.is_empty() {
            return (1.min(s.len()), 0.0);
        }
        let mut k = s.len();
        let mut discarded = 0.0;
        let floor = self.cutoff * s[0] * s[0];
        // Both conditions, once false for a value, stay false for every larger one.
        while k > 1 {
            let w = s[k - 1] * s[k - 1];
            let by_weight = discarded + w > self.cutoff * total;
            let by_value = w > floor;
            if self.rule.keeps(by_weight, by_value) {
                break;
            }
            discarded += w;
            k -= 1;
        }
        if let Some(max) = self.max_bond {
            while k > max {
                discarded += s[k - 1] * s[k - 1];
                k -= 1;
            }
        }
        (k, discarded / total)
    }
}

/// One cut that discarded weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TruncationEvent {
    /// Index of the two-site update (counting every two-site update, swaps included).
    pub update: usize,
    /// Bond of the cut (between qubits `bond` and `bond + 1`).
    pub bond: usize,
    /// Discarded fraction of the weight.
    pub discarded: f64,
    /// Bond dimension kept.
    pub kept: usize,
}

/// What truncation has discarded so far from an MPS.
///
/// Every cut that truncated contributes its discarded fraction `eps` of the weight. The
/// fidelity estimate is `prod (1 - eps)`; the lower bound
/// `cos^2(min(pi/2, sum asin(sqrt(eps))))` is rigorous (see `docs/theory.md`).
#[derive(Clone, Debug, PartialEq)]
pub struct TruncationReport {
    /// Summed discarded fraction at each of the `n - 1` bonds.
    pub discarded_per_bond: Vec<f64>,
    /// Number of cuts that discarded a non-zero weight.
    pub truncating_cuts: usize,
    /// Largest single discarded fraction.
    pub largest_discard: f64,
    /// `prod (1 - eps)` over every cut (0 once the product is below the `f64` range).
    pub fidelity_estimate: f64,
    /// `log10` of the fidelity estimate, summed from the cuts: finite where the estimate
    /// itself underflows (a 1000-qubit, 20-layer brick at max bond 64 reaches about -293).
    pub log10_fidelity_estimate: f64,
    /// A proven lower bound on `|<psi_exact|psi_mps>|^2`.
    pub fidelity_lower_bound: f64,
    /// Largest bond dimension the state has had.
    pub peak_bond: usize,
}

/// Running totals kept by the state.
#[derive(Clone, Debug)]
pub(crate) struct TruncationLog {
    pub events: Vec<TruncationEvent>,
    pub updates: usize,
    pub discarded_per_bond: Vec<f64>,
    pub truncating_cuts: usize,
    pub largest_discard: f64,
    pub log_fidelity: f64,
    pub angle_sum: f64,
    pub peak_bond: usize,
}

impl TruncationLog {
    pub fn new(n_qubits: usize) -> Self {
        TruncationLog {
            events: Vec::new(),
            updates: 0,
            discarded_per_bond: vec![0.0; n_qubits.saturating_sub(1)],
            truncating_cuts: 0,
            largest_discard: 0.0,
            log_fidelity: 0.0,
            angle_sum: 0.0,
            peak_bond: 1,
        }
    }

    /// Counts one two-site update (its cuts are then recorded with `record`).
    pub fn next_update(&mut self) {
        self.updates += 1;
    }

    pub fn record(&mut self, bond: usize, eps: f64, kept: usize) {
        self.peak_bond = self.peak_bond.max(kept);
        if eps > 0.0 {
            self.events.push(TruncationEvent {
                update: self.updates,
                bond,
                discarded: eps,
                kept,
            });
            self.discarded_per_bond[bond] += eps;
            self.truncating_cuts += 1;
            self.largest_discard = self.largest_discard.max(eps);
            self.log_fidelity += (-eps).ln_1p();
            self.angle_sum += eps.min(1.0).sqrt().asin();
        }
    }

    pub fn fidelity_estimate(&self) -> f64 {
        self.log_fidelity.exp()
    }

    pub fn log10_fidelity_estimate(&self) -> f64 {
        self.log_fidelity / std::f64::consts::LN_10
    }

    pub fn report(&self) -> TruncationReport {
        let angle = self.angle_sum.min(std::f64::consts::FRAC_PI_2);
        TruncationReport {
            discarded_per_bond: self.discarded_per_bond.clone(),
            truncating_cuts: self.truncating_cuts,
            largest_discard: self.largest_discard,
            fidelity_estimate: self.fidelity_estimate(),
            log10_fidelity_estimate: self.log10_fidelity_estimate(),
            fidelity_lower_bound: angle.cos().powi(2),
            peak_bond: self.peak_bond,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certain_keep_only_where_the_tail_outweighs_the_cutoff() {
        let t = Truncation::default().with_max_bond(2);
        // Ascending eigenvalues: the third largest (0.1) is far above the cutoff.
        assert_eq!(t.certain_keep(&[0.05, 0.1, 0.35, 0.5]), Some(2));
        let s: Vec<f64> = [0.5f64, 0.35, 0.1, 0.05].iter().map(|x| x.sqrt()).collect();
        assert_eq!(t.keep(&s).0, 2);
        // A tail at round-off: keep decides on exact weights.
        assert_eq!(t.certain_keep(&[0.0, 1e-14, 0.4, 0.6]), None);
        // A tail the cutoff could drop.
        let loose = t.with_cutoff(0.2);
        assert_eq!(loose.certain_keep(&[0.05, 0.1, 0.35, 0.5]), None);
        assert_eq!(loose.certain_keep(&[0.05, 0.3, 0.3, 0.35]), Some(2));
        // No max bond, or one the values do not exceed.
        assert_eq!(Truncation::default().certain_keep(&[0.5, 0.5]), None);
        assert_eq!(t.certain_keep(&[0.5, 0.5]), None);
        // A third value within the cutoff's share of the sum but above its share of the
        // largest: certain under the relative-value rule (and so under both), not under the
        // discarded-weight rule alone.
        let vals = [0.05, 0.15, 0.3, 0.5];
        assert_eq!(loose.certain_keep(&vals), Some(2));
        let s: Vec<f64> = vals.iter().rev().map(|x| x.sqrt()).collect();
        assert_eq!(loose.keep(&s).0, 2);
        let weight = loose.with_cutoff_rule(CutoffRule::DiscardedWeight);
        assert_eq!(weight.certain_keep(&vals), None);
        let value = loose.with_cutoff_rule(CutoffRule::RelativeValue);
        assert_eq!(value.certain_keep(&vals), Some(2));
    }

    /// Squared singular values (summing to 1) where the two rules disagree, both ways.
    #[test]
    fn cutoff_rules_and_their_union() {
        let rules = |w: &[f64], cutoff: f64| {
            let s: Vec<f64> = w.iter().map(|x| x.sqrt()).collect();
            let t = Truncation::default().with_cutoff(cutoff);
            [
                CutoffRule::DiscardedWeight,
                CutoffRule::RelativeValue,
                CutoffRule::Both,
            ]
            .map(|r| t.with_cutoff_rule(r).keep(&s))
        };
        // Tails 0.004, 0.008, 0.0135: the weight rule drops two. The value rule's floor is
        // 0.006 of the weight, under which three lie.
        let [w, v, b] = rules(&[0.6, 0.3865, 0.0055, 0.004, 0.004], 1e-2);
        assert_eq!((w.0, v.0, b.0), (3, 2, 3));
        assert!((w.1 - 0.008).abs() < 1e-12 && (v.1 - 0.0135).abs() < 1e-12);
        assert_eq!(b, w);
        // A flat tail: the weight rule drops one 0.05 (two would be 0.1 > 0.06); the value
        // rule's floor (0.024) drops none.
        let [w, v, b] = rules(&[0.4, 0.3, 0.2, 0.05, 0.05], 0.06);
        assert_eq!((w.0, v.0, b.0), (4, 5, 5));
        assert_eq!((v.1, b.1), (0.0, 0.0));
        // On pseudo-random decaying spectra the union keeps exactly the larger count, and
        // never discards more than either rule.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        for case in 0..500 {
            let len = 2 + case % 40;
            let mut w: Vec<f64> = (0..len)
                .map(|k| next() * 10f64.powf(-(k as f64) * 0.5 * next()))
                .collect();
            w.sort_by(|a, b| b.total_cmp(a));
            let total: f64 = w.iter().sum();
            w.iter_mut().for_each(|v| *v /= total);
            let cutoff = 10f64.powf(-1.0 - 8.0 * next());
            let [w_, v_, b_] = rules(&w, cutoff);
            assert_eq!(b_.0, w_.0.max(v_.0), "case {case}: {w:?} at {cutoff}");
            assert!(b_.1 <= w_.1.min(v_.1) + 1e-15, "case {case}");
            assert!(
                w_.1 <= cutoff + 1e-15,
                "case {case}: the weight rule's bound"
            );
        }
    }

    #[test]
    fn keep_respects_cutoff_and_max_bond() {
        let s = [0.8f64, 0.5, 0.3, 1e-5];
        let total: f64 = s.iter().map(|x| x * x).sum();
        let (k, eps) = Truncation::exact().keep(&s);
        assert_eq!((k, eps), (4, 0.0));
        let (k, eps) = Truncation::default().with_cutoff(1e-8).keep(&s);
        assert_eq!(k, 3);
        assert!((eps - 1e-10 / total).abs() < 1e-20);
        let (k, eps) = Truncation::exact().with_max_bond(2).keep(&s);
        assert_eq!(k, 2);
        assert!((eps - (0.09 + 1e-10) / total).abs() < 1e-15);
        // Exact zeros are always dropped, but one value is always kept.
        assert_eq!(
            Truncation::exact()
                .with_cutoff(0.0)
                .keep(&[1.0, 0.0, 0.0])
                .0,
            1
        );
        assert_eq!(Truncation::exact().keep(&[0.0, 0.0]).0, 1);
    }

    /// 400 cuts that each keep a tenth of the weight: the estimate 1e-400 underflows to 0,
    /// its logarithm does not.
    #[test]
    fn log_fidelity_survives_underflow() {
        let mut log = TruncationLog::new(3);
        for k in 0..400 {
            log.record(k % 2, 0.9, 2);
        }
        let r = log.report();
        assert_eq!(r.fidelity_estimate, 0.0);
        assert!(
            (r.log10_fidelity_estimate + 400.0).abs() < 1e-9,
            "{}",
            r.log10_fidelity_estimate
        );
        log = TruncationLog::new(3);
        log.record(0, 0.25, 2);
        let r = log.report();
        assert!((r.fidelity_estimate - 0.75).abs() < 1e-15);
        assert!((r.log10_fidelity_estimate - 0.75f64.log10()).abs() < 1e-15);
    }

    #[test]
    fn invalid_settings_are_errors() {
        assert!(matches!(
            Truncation::default().with_cutoff(f64::NAN).validate(),
            Err(Error::InvalidSetting { name: "cutoff", .. })
        ));
        assert!(Truncation::default().with_cutoff(1.0).validate().is_err());
        assert!(Truncation::default().with_cutoff(-1e-3).validate().is_err());
    }
}

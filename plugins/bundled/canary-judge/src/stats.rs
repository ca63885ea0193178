//! The statistics of the judge: the Mann–Whitney U test of two samples
//! (canary against baseline), two-sided, with the normal approximation
//! corrected for ties and for continuity, and the Hodges–Lehmann estimate of
//! the shift between them with its distribution-free confidence interval.
//! The normal distribution's tail and quantile are computed here, since
//! Rust's standard library has neither.

/// What the test says about a canary sample against a baseline sample.
#[derive(Debug, Clone, PartialEq)]
pub struct MannWhitney {
    /// The canary's U statistic: how many (canary, baseline) pairs have the
    /// canary value above the baseline one, ties counting a half.
    pub u: f64,
    /// The two-sided p-value of "both come from the same distribution".
    pub p_value: f64,
    /// The Hodges–Lehmann estimate of the shift, canary minus baseline: the
    /// median of every pairwise difference.
    pub shift: f64,
    /// The confidence interval of the shift, at the confidence asked for.
    pub low: f64,
    pub high: f64,
    pub n_canary: usize,
    pub n_baseline: usize,
}

/// Runs the test; `None` when a sample is empty or holds a value that is
/// not a number. `confidence` is in (0, 1), such as 0.95.
pub fn mann_whitney(canary: &[f64], baseline: &[f64], confidence: f64) -> Option<MannWhitney> {
    let (n1, n2) = (canary.len(), baseline.len());
    if n1 == 0 || n2 == 0 || canary.iter().chain(baseline).any(|v| !v.is_finite()) {
        return None;
    }
    let mut all: Vec<(f64, bool)> = canary
        .iter()
        .map(|&v| (v, true))
        .chain(baseline.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks over ties; the ties' sizes correct the variance.
    let n = all.len();
    let mut canary_ranks = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        canary_ranks += rank * all[i..=j].iter().filter(|(_, c)| *c).count() as f64;
        i = j + 1;
    }
    let (f1, f2, nf) = (n1 as f64, n2 as f64, n as f64);
    let u = canary_ranks - f1 * (f1 + 1.0) / 2.0;
    let mean = f1 * f2 / 2.0;
    let variance = f1 * f2 / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)));
    let p_value = if variance <= 0.0 {
        1.0
    } else {
        // The larger of the two U's, less a half for continuity.
        let z = ((u - mean).abs() - 0.5).max(0.0) / variance.sqrt();
        (erfc(z / std::f64::consts::SQRT_2)).min(1.0)
    };

    let mut differences: Vec<f64> = canary
        .iter()
        .flat_map(|c| baseline.iter().map(move |b| c - b))
        .collect();
    // Order statistics by selection rather than a full sort: an hour of
    // 10 s samples against thirty baseline instances is 3.9 million
    // differences.
    let count = differences.len();
    let mut nth = |k: usize| *differences.select_nth_unstable_by(k, f64::total_cmp).1;
    let shift = if count % 2 == 1 {
        nth(count / 2)
    } else {
        (nth(count / 2 - 1) + nth(count / 2)) / 2.0
    };
    // The interval's ends are order statistics of the differences: the
    // C-th from either end, C = ⌊N/2 − z·√(n₁n₂(n₁+n₂+1)/12)⌋ (at least 1).
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let c = (count as f64 / 2.0 - z * (f1 * f2 * (nf + 1.0) / 12.0).sqrt()).floor();
    let c = (c.max(1.0) as usize).min(count);
    Some(MannWhitney {
        u,
        p_value,
        shift,
        low: nth(c - 1),
        high: nth(count - c),
        n_canary: n1,
        n_baseline: n2,
    })
}

/// The median of a sorted, non-empty slice.
pub fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The median of a sample; `None` when it is empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(median_of_sorted(&sorted))
}

/// The complementary error function, to about 1e-14 relative: the power
/// series of erf below 2.5, a continued fraction above.
pub fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.5 {
        // erf(x) = 2/√π Σ (−1)ⁿ x^(2n+1) / (n! (2n+1))
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
        }
        return 1.0 - sum * std::f64::consts::FRAC_2_SQRT_PI;
    }
    // erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))),
    // evaluated from the tail upwards.
    let mut fraction = x;
    for k in (1..60).rev() {
        fraction = x + (k as f64 / 2.0) / fraction;
    }
    (-x * x).exp() / (fraction * std::f64::consts::PI.sqrt())
}

/// The standard normal quantile: Acklam's rational approximation refined by
/// one Halley step on [`erfc`], to about 1e-15. (Its coefficients are kept
/// as published.)
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let low = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < low {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - low {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // One Halley step: e = Φ(x) − p.
    let e = 0.5 * erfc(-x / std::f64::consts::SQRT_2) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every reference value below was computed with SciPy 1.17.1:
    // `scipy.stats.mannwhitneyu(canary, baseline, alternative="two-sided",
    // method="asymptotic", use_continuity=True)` for U and p,
    // `scipy.special.erfc`, `scipy.stats.norm.ppf`, and NumPy for the
    // median of the pairwise differences and their order statistics (with
    // C from `norm.ppf(0.975)`).

    fn close(got: f64, want: f64, tolerance: f64) {
        let scale = want.abs().max(1e-300);
        assert!(
            (got - want).abs() <= tolerance * scale,
            "got {got:e}, want {want:e}"
        );
    }

    #[test]
    fn erfc_and_the_normal_quantile_match_scipy() {
        for (x, want) in [
            (0.0, 1.0),
            (0.1, 0.8875370839817152),
            (0.5, 0.4795001221869535),
            (1.0, 0.15729920705028516),
            (1.5, 0.03389485352468927),
            (2.0, 0.004677734981047266),
            (2.5, 0.00040695201744495886),
            (3.0, 2.2090496998585445e-05),
            (4.0, 1.541725790028002e-08),
            (6.0, 2.1519736712498913e-17),
        ] {
            close(erfc(x), want, 1e-12);
        }
        close(erfc(-1.0), 2.0 - 0.15729920705028516, 1e-14);
        assert!(normal_quantile(0.5).abs() < 1e-15);
        for (p, want) in [
            (0.9, 1.2815515655446004),
            (0.975, 1.959963984540054),
            (0.995, 2.5758293035489004),
            (0.9999, 3.719016485455709),
        ] {
            close(normal_quantile(p), want, 1e-12);
            close(normal_quantile(1.0 - p), -want, 1e-9);
        }
    }

    struct Reference {
        canary: &'static [f64],
        baseline: &'static [f64],
        u: f64,
        p: f64,
        shift: f64,
        low: f64,
        high: f64,
    }

    const LATENCY_SHIFTED: Reference = Reference {
        canary: &[
            112.0, 118.5, 121.0, 125.5, 119.0, 131.0, 127.5, 122.0, 140.0, 126.0,
        ],
        baseline: &[
            101.0, 99.5, 104.0, 97.0, 110.0, 103.5, 100.0, 108.0, 96.5, 102.0, 105.5, 99.0,
        ],
        u: 120.0,
        p: 8.733926588357827e-05,
        shift: 22.0,
        low: 16.5,
        high: 27.0,
    };

    const TIES: Reference = Reference {
        canary: &[1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0],
        baseline: &[2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0, 5.0, 6.0],
        u: 24.0,
        p: 0.2561734888704612,
        shift: -1.0,
        low: -2.0,
        high: 1.0,
    };

    const EQUAL_ISH: Reference = Reference {
        canary: &[
            0.010, 0.012, 0.011, 0.009, 0.013, 0.010, 0.012, 0.011, 0.010, 0.014, 0.009, 0.012,
        ],
        baseline: &[
            0.011, 0.010, 0.012, 0.010, 0.011, 0.013, 0.009, 0.012, 0.011, 0.010, 0.012, 0.011,
        ],
        u: 72.5,
        p: 1.0,
        shift: 0.0,
        low: -0.0010000000000000009,
        high: 0.0010000000000000009,
    };

    /// Gamma-distributed latencies, the canary's 30% slower
    /// (`numpy.random.default_rng(7)`, rounded to 3 decimals).
    const GAMMA_30_PERCENT: Reference = Reference {
        canary: &[
            105.434, 80.372, 115.856, 178.667, 93.4, 57.556, 119.883, 155.28, 109.056, 199.771,
            111.584, 118.918, 82.701, 106.182, 153.51, 154.254, 173.712, 150.151, 139.108, 56.479,
            89.777, 244.487, 99.479, 145.868, 115.465, 147.134, 120.63, 84.631, 91.21, 132.226,
        ],
        baseline: &[
            95.373, 86.729, 81.355, 97.294, 80.266, 112.092, 98.788, 94.389, 58.093, 47.265,
            59.898, 100.5, 34.852, 93.771, 53.872, 100.166, 71.466, 71.501, 126.936, 91.762,
            97.414, 97.82, 53.496, 99.251, 175.894, 61.532, 115.254, 119.202, 118.614, 75.084,
        ],
        u: 687.0,
        p: 0.0004713751442131583,
        shift: 33.041,
        low: 15.689999999999998,
        high: 51.959999999999994,
    };

    #[test]
    fn u_p_shift_and_interval_match_scipy() {
        for (name, r) in [
            ("latency shifted", LATENCY_SHIFTED),
            ("ties", TIES),
            ("equal", EQUAL_ISH),
            ("gamma +30%", GAMMA_30_PERCENT),
        ] {
            let got = mann_whitney(r.canary, r.baseline, 0.95).unwrap();
            assert_eq!(got.u, r.u, "{name}");
            close(got.p_value, r.p, 1e-9);
            close(got.shift, r.shift, 1e-12);
            close(got.low, r.low, 1e-12);
            close(got.high, r.high, 1e-12);
            assert_eq!(
                (got.n_canary, got.n_baseline),
                (r.canary.len(), r.baseline.len())
            );
        }
    }

    #[test]
    fn swapping_the_samples_mirrors_the_result() {
        let r = GAMMA_30_PERCENT;
        let there = mann_whitney(r.canary, r.baseline, 0.95).unwrap();
        let back = mann_whitney(r.baseline, r.canary, 0.95).unwrap();
        assert_eq!(back.u, (r.canary.len() * r.baseline.len()) as f64 - there.u);
        close(back.p_value, there.p_value, 1e-12);
        close(back.shift, -there.shift, 1e-12);
        close(back.low, -there.high, 1e-12);
    }

    #[test]
    fn degenerate_samples() {
        assert_eq!(mann_whitney(&[], &[1.0], 0.95), None);
        assert_eq!(mann_whitney(&[1.0, f64::NAN], &[1.0], 0.95), None);
        // Every value equal: no variance, nothing to tell apart.
        let same = mann_whitney(&[3.0; 5], &[3.0; 4], 0.95).unwrap();
        assert_eq!(
            (same.p_value, same.shift, same.low, same.high),
            (1.0, 0.0, 0.0, 0.0)
        );
        // One of each: the interval is the one difference.
        let one = mann_whitney(&[5.0], &[2.0], 0.95).unwrap();
        assert_eq!((one.shift, one.low, one.high), (3.0, 3.0, 3.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), Some(2.5));
    }
}

//! L2-regularised logistic regression over binary features by Newton's method, on rows
//! given as the indexes of the features they have (rows have few, so one step costs rows ×
//! active² plus one K×K solve).

/// A training row: the features it has, whether it is a seed member, and how many
/// profiles it stands for (rows are a sample of each class).
pub(crate) struct Row {
    pub(crate) active: Vec<u16>,
    pub(crate) positive: bool,
    pub(crate) weight: f64,
}

/// Most Newton steps.
const MAX_STEPS: usize = 30;
/// Stops when no coefficient moves more than this.
const TOLERANCE: f64 = 1e-7;

/// Fits `(intercept, weights)` starting from `start`, with penalty `lambda` on the
/// weights (not the intercept). Each Newton step is halved until the penalised
/// log-likelihood improves, so the fit never diverges. `None` when the system cannot be
/// solved or does not converge.
pub(crate) fn logistic(
    rows: &[Row],
    features: usize,
    start: (f64, &[f64]),
    lambda: f64,
) -> Option<(f64, Vec<f64>)> {
    let k = features + 1; // coefficient 0 is the intercept
    let mut beta: Vec<f64> = std::iter::once(start.0)
        .chain(start.1.iter().copied())
        .collect();
    let mut current = objective(rows, &beta, lambda);
    for _ in 0..MAX_STEPS {
        let mut gradient = vec![0.0; k];
        let mut hessian = vec![0.0; k * k];
        for row in rows {
            let p = probability(row, &beta);
            let residual = row.weight * (f64::from(u8::from(row.positive)) - p);
            let curvature = row.weight * (p * (1.0 - p)).max(1e-12);
            let index = |f: u16| f as usize + 1;
            gradient[0] += residual;
            hessian[0] += curvature;
            for (i, &a) in row.active.iter().enumerate() {
                let ia = index(a);
                gradient[ia] += residual;
                hessian[ia] += curvature; // (0, a)
                hessian[ia * k] += curvature; // (a, 0)
                for &b in &row.active[i..] {
                    let ib = index(b);
                    hessian[ia * k + ib] += curvature;
                    if ia != ib {
                        hessian[ib * k + ia] += curvature;
                    }
                }
            }
        }
        for j in 1..k {
            gradient[j] -= lambda * beta[j];
            hessian[j * k + j] += lambda;
        }
        let step = solve(&mut hessian, &mut gradient, k)?;
        let mut scale = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            let trial: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + scale * s).collect();
            let value = objective(rows, &trial, lambda);
            if value.is_finite() && value >= current - 1e-9 * current.abs() {
                let moved = step.iter().fold(0.0f64, |m, s| m.max((scale * s).abs()));
                beta = trial;
                current = value;
                accepted = true;
                if moved < TOLERANCE {
                    return Some((beta[0], beta[1..].to_vec()));
                }
                break;
            }
            scale /= 2.0;
        }
        if !accepted {
            // No step improves: this is the optimum to the precision available.
            return Some((beta[0], beta[1..].to_vec()));
        }
    }
    None
}

fn probability(row: &Row, beta: &[f64]) -> f64 {
    let z = beta[0]
        + row
            .active
            .iter()
            .map(|&f| beta[f as usize + 1])
            .sum::<f64>();
    1.0 / (1.0 + (-z).exp())
}

/// The penalised log-likelihood (larger is better).
fn objective(rows: &[Row], beta: &[f64], lambda: f64) -> f64 {
    let likelihood: f64 = rows
        .iter()
        .map(|row| {
            let z = beta[0]
                + row
                    .active
                    .iter()
                    .map(|&f| beta[f as usize + 1])
                    .sum::<f64>();
            // log σ(z) for seed rows, log σ(-z) for the rest, computed stably.
            let signed = if row.positive { z } else { -z };
            let log_sigmoid = -(1.0 + (-signed.abs()).exp()).ln() + signed.min(0.0);
            row.weight * log_sigmoid
        })
        .sum();
    likelihood - 0.5 * lambda * beta[1..].iter().map(|b| b * b).sum::<f64>()
}

/// Solves `a x = b` for a symmetric positive definite `a` (Cholesky, in place).
fn solve(a: &mut [f64], b: &mut [f64], n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for p in 0..j {
            d -= a[j * n + p] * a[j * n + p];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for p in 0..j {
                s -= a[i * n + p] * a[j * n + p];
            }
            a[i * n + j] = s / d;
        }
    }
    // Forward: L y = b.
    for i in 0..n {
        let mut s = b[i];
        for p in 0..i {
            s -= a[i * n + p] * b[p];
        }
        b[i] = s / a[i * n + i];
    }
    // Backward: Lᵀ x = y.
    for i in (0..n).rev() {
        let mut s = b[i];
        for p in i + 1..n {
            s -= a[p * n + i] * b[p];
        }
        b[i] = s / a[i * n + i];
    }
    Some(b.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows drawn from a known rule come back with its coefficients (roughly), and a
    /// feature that only copies another's rows gets no weight of its own under L2.
    #[test]
    fn recovers_a_known_rule() {
        let mut rows = Vec::new();
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..40_000 {
            let a = next() < 0.3;
            let b = next() < 0.5;
            let z = -1.0 + 1.5 * f64::from(u8::from(a)) - 0.8 * f64::from(u8::from(b));
            let positive = next() < 1.0 / (1.0 + (-z).exp());
            let mut active = Vec::new();
            if a {
                active.push(0);
            }
            if b {
                active.push(1);
            }
            rows.push(Row {
                active,
                positive,
                weight: 1.0,
            });
        }
        let (b0, w) = logistic(&rows, 2, (0.0, &[0.0, 0.0]), 1.0).unwrap();
        assert!((b0 + 1.0).abs() < 0.1, "{b0}");
        assert!((w[0] - 1.5).abs() < 0.1, "{w:?}");
        assert!((w[1] + 0.8).abs() < 0.1, "{w:?}");
    }
}

//! Training from bitmaps (models.md "Training"): candidate features from the indexes,
//! statistics from intersection counts of the seed and population bitmaps, a smoothed
//! log-odds scorecard ranked by information value, redundant features left out, then an
//! L2-regularised logistic regression warm-started from the scorecard, kept only when it
//! improves the held-out AUC. Validation uses a deterministic holdout of both the seed and
//! the rest of the population.

use super::features::Feature;
use super::fit::{logistic, Row};
use super::report::{ModelReport, Quality, TopFeature};
use super::scorecard::{cutoffs, Model};
use crate::base::time::{day_of, now_millis, Millis, MS_PER_DAY};
use crate::index::{Indexes, NumericKind, Term, ValueKind};
use roaring::RoaringBitmap;

/// Fewest training members the seed must have.
pub const MIN_SEED: u64 = 100;
/// Below this many training members the report warns.
pub const WARN_SEED: u64 = 1_000;
/// Fewest training rows (seed and rest together) that must have a feature for it to be
/// estimated; features held by more than 99 % of them say nothing either.
pub const MIN_SUPPORT: u64 = 30;
/// Features whose correlation (|phi|, over the training rows) with a stronger feature is at
/// least this are left out as redundant (a near-copy, or a complement such as
/// `newsletter = false` beside `newsletter = true`), and named in the warnings.
pub const REDUNDANT_PHI: f64 = 0.9;
/// Most rows of each class the logistic regression is fitted on (a deterministic sample).
const MAX_FIT_ROWS: u64 = 50_000;
/// Event windows: at or after the start of the day this many days before `as_of`.
const EVENT_WINDOWS_DAYS: [i64; 6] = [7, 30, 90, 180, 365, 730];
/// Event count bands (all time).
const EVENT_COUNTS: [u32; 3] = [2, 5, 10];
/// Age bands.
const AGE_BANDS: [(u32, u32); 7] = [
    (18, 24),
    (25, 34),
    (35, 44),
    (45, 54),
    (55, 64),
    (65, 74),
    (75, 120),
];
/// Bands of other numbers and dates: deciles of the population.
const BANDS: usize = 10;
/// Values of a numeric field sampled to find its quantiles.
const QUANTILE_SAMPLE: u64 = 20_000;
/// Fields that hold personal values: never features, so reports and explanations never
/// show a name or an address.
pub const PERSONAL_FIELDS: [&str; 8] = [
    "first_name",
    "last_name",
    "name",
    "email",
    "phone",
    "picture",
    "profile_url",
    "zip",
];
/// The L2 penalty of the logistic regression on the weights, in rows of the sample (rows
/// weigh as many profiles as they stand for, so it is scaled by their mean weight).
const LAMBDA: f64 = 5.0;
/// Most features a model may use.
pub const MAX_FEATURES: usize = 200;
/// Features the report lists.
const TOP_FEATURES: usize = 20;

/// How to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Names whose features are left out (`--exclude`): attributes, or `consent`,
    /// `identifier`, `source`, `event` (each also as `family:argument`).
    pub exclude: Vec<String>,
    /// What the seed expression tests, in the same form: left out too, so the model does
    /// not learn the seed's own definition.
    pub seed_fields: Vec<String>,
    /// Share of the seed (and of the rest of the population) held out, 0 < h < 1.
    pub holdout: f64,
    /// Most features the model uses.
    pub max_features: usize,
    /// What event windows and ages are relative to (ms).
    pub as_of: Millis,
    /// The seed expression, for the report.
    pub seed_expr: String,
    /// The population expression, for the report.
    pub population_expr: String,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            exclude: Vec::new(),
            seed_fields: Vec::new(),
            holdout: 0.2,
            max_features: 40,
            as_of: now_millis(),
            seed_expr: String::new(),
            population_expr: "ALL".into(),
        }
    }
}

/// Why a model could not be trained.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct TrainError(pub String);

/// A deterministic hash of a profile id (splitmix64): the holdout and the samples.
fn mix(pid: u32, salt: u64) -> u64 {
    let mut z = u64::from(pid) ^ salt;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Members of `bits` whose hash falls below `share` (and the rest).
fn split(bits: &RoaringBitmap, share: f64, salt: u64) -> (RoaringBitmap, RoaringBitmap) {
    let threshold = (share.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
    let mut below = RoaringBitmap::new();
    let mut rest = RoaringBitmap::new();
    for pid in bits {
        if mix(pid, salt) < threshold {
            below.insert(pid);
        } else {
            rest.insert(pid);
        }
    }
    (below, rest)
}

/// The deterministic holdout rule: the members of `bits` held out at `share` (first) and
/// the rest, as training uses it for the seed and for the rest of the population.
pub fn holdout_split(bits: &RoaringBitmap, share: f64) -> (RoaringBitmap, RoaringBitmap) {
    split(bits, share, HOLDOUT_SALT)
}

/// Salt of the holdout hash.
const HOLDOUT_SALT: u64 = 1;

/// A candidate with its counts.
struct Candidate {
    feature: Feature,
    /// Population members with it (kept only for the features selected).
    members: Option<RoaringBitmap>,
    /// Population members with it.
    held: u64,
    /// Training seed members with it.
    seed: u64,
    /// Training non-seed members with it.
    rest: u64,
    /// Log-odds ratio (smoothed).
    weight: f64,
    /// Information value.
    iv: f64,
}

/// Trains model `name`.
pub fn train(
    name: &str,
    ix: &Indexes,
    seed: &RoaringBitmap,
    population: &RoaringBitmap,
    options: &TrainOptions,
) -> Result<Trained, TrainError> {
    let started = std::time::Instant::now();
    if !(options.holdout > 0.0 && options.holdout < 1.0) {
        return Err(TrainError(format!(
            "holdout must be between 0 and 1 (exclusive), got {}",
            options.holdout
        )));
    }
    if !(1..=MAX_FEATURES).contains(&options.max_features) {
        return Err(TrainError(format!(
            "max_features must be between 1 and {MAX_FEATURES}, got {}",
            options.max_features
        )));
    }
    let max_features = options.max_features;
    let population = population & ix.live();
    let seed = seed & &population;
    let rest = &population - &seed;
    let (seed_hold, seed_train) = holdout_split(&seed, options.holdout);
    let (rest_hold, rest_train) = holdout_split(&rest, options.holdout);
    let mut warnings = Vec::new();
    if seed_train.len() < MIN_SEED {
        return Err(TrainError(format!(
            "the seed has {} training members inside the population ({} held out); at least \
             {MIN_SEED} are needed",
            seed_train.len(),
            seed_hold.len()
        )));
    }
    if seed_train.len() < WARN_SEED {
        warnings.push(format!(
            "the seed has only {} training members; {WARN_SEED} or more give steadier models",
            seed_train.len()
        ));
    }
    if rest_train.len() < MIN_SEED || rest_hold.is_empty() || seed_hold.is_empty() {
        return Err(TrainError(format!(
            "the population outside the seed has {} members; at least {MIN_SEED} are needed \
             to learn what sets the seed apart",
            rest.len()
        )));
    }
    let excluded = |f: &Feature| {
        f.exclusion_keys().iter().any(|k| {
            options.exclude.iter().any(|e| e == k) || options.seed_fields.iter().any(|e| e == k)
        }) || f
            .exclusion_keys()
            .first()
            .is_some_and(|k| PERSONAL_FIELDS.contains(&k.as_str()))
    };

    // Candidates with their counts.
    let (n_seed, n_rest) = (seed_train.len() as f64, rest_train.len() as f64);
    let train_rows = &seed_train | &rest_train;
    let mut candidates: Vec<Candidate> = Vec::new();
    for feature in candidate_features(ix, &population, options.as_of) {
        if excluded(&feature) {
            continue;
        }
        // Terms are counted in place; other features are built once.
        let (s, r, held) = match &feature {
            Feature::Term(t) => {
                let bits = ix.term(t);
                (
                    bits.intersection_len(&seed_train),
                    bits.intersection_len(&rest_train),
                    bits.intersection_len(&population),
                )
            }
            other => {
                let bits = other.members(ix);
                (
                    bits.intersection_len(&seed_train),
                    bits.intersection_len(&rest_train),
                    bits.intersection_len(&population),
                )
            }
        };
        if s + r < MIN_SUPPORT || (s + r) * 100 > train_rows.len() * 99 {
            continue;
        }
        let ps = (s as f64 + 0.5) / (n_seed + 1.0);
        let pr = (r as f64 + 0.5) / (n_rest + 1.0);
        let woe_in = (ps / pr).ln();
        let woe_out = ((1.0 - ps) / (1.0 - pr)).ln();
        candidates.push(Candidate {
            feature,
            members: None,
            held,
            seed: s,
            rest: r,
            weight: woe_in - woe_out,
            iv: (ps - pr) * woe_in + (pr - ps) * woe_out,
        });
    }
    let considered = candidates.len() as u64;
    candidates.sort_by(|a, b| b.iv.total_cmp(&a.iv).then(a.feature.cmp(&b.feature)));

    // Greedy selection by information value, leaving out near-duplicates.
    let (fit_seed, _) = split(&seed_train, MAX_FIT_ROWS as f64 / n_seed, 2);
    let (fit_rest, _) = split(&rest_train, MAX_FIT_ROWS as f64 / n_rest, 3);
    let fit_rows = &fit_seed | &fit_rest;
    let mut chosen: Vec<(Candidate, RoaringBitmap)> = Vec::new();
    for mut c in candidates {
        if chosen.len() == max_features {
            break;
        }
        let members = c.feature.members(ix) & ix.live();
        let in_fit = &members & &fit_rows;
        c.members = Some(members);
        let duplicate = chosen.iter().position(|(other, other_fit)| {
            phi(&in_fit, other_fit, fit_rows.len()).abs() >= REDUNDANT_PHI
                && other.feature != c.feature
        });
        if let Some(at) = duplicate {
            // Of a complementary pair (`x = true` / `x = false`), keep the form the seed
            // has more of, which reads as what sets the seed apart.
            let (kept, dropped) = if chosen[at].0.weight < 0.0 && c.weight > 0.0 {
                let old = std::mem::replace(&mut chosen[at], (c, in_fit));
                (&chosen[at].0.feature, old.0.feature)
            } else {
                (&chosen[at].0.feature, c.feature)
            };
            warnings.push(format!(
                "{} left out: it carries the same information as {}",
                label(&dropped, ix),
                label(kept, ix)
            ));
            continue;
        }
        chosen.push((c, in_fit));
    }
    if chosen.is_empty() {
        return Err(TrainError(
            "no candidate feature has enough support in the population".into(),
        ));
    }
    let features: Vec<(Feature, String)> = chosen
        .iter()
        .map(|(c, _)| {
            let text = label(&c.feature, ix);
            (c.feature.clone(), text)
        })
        .collect();

    // The scorecard, then the logistic refinement.
    let scorecard: Vec<f64> = chosen.iter().map(|(c, _)| c.weight).collect();
    let prior = ((n_seed + 0.5) / (n_rest + 0.5)).ln();
    let intercept_sc = prior - centre(&chosen, &scorecard, n_seed + n_rest);
    let mut model = Model {
        name: name.to_string(),
        features,
        weights: scorecard.clone(),
        intercept: intercept_sc,
        cutoffs: Vec::new(),
        as_of: options.as_of,
        report: empty_report(name, options),
    };
    let holdout = &seed_hold | &rest_hold;
    let members: Vec<RoaringBitmap> = chosen
        .iter()
        .map(|(c, _)| {
            c.members
                .clone()
                .expect("selected features keep their members")
        })
        .collect();
    let sc_auc = auc_of(
        &model.raw_scores_from(&members, &holdout),
        &seed_hold,
        &rest_hold,
    );
    // Each sampled row stands for its class's share, so the fit sees the true balance
    // (a rare feature of 88 non-seed profiles is not reduced to the five that were
    // sampled).
    let weights = (
        n_seed / fit_seed.len().max(1) as f64,
        n_rest / fit_rest.len().max(1) as f64,
    );
    let rows = fit_rows_of(&chosen, &fit_rows, &fit_seed, weights);
    let mut method = "scorecard";
    let mut held_auc = sc_auc;
    // The penalty is per row of the sample, so it means the same at any data size.
    let lambda = LAMBDA * rows.iter().map(|r| r.weight).sum::<f64>() / rows.len() as f64;
    if let Some((b0, w)) = logistic(&rows, chosen.len(), (intercept_sc, &scorecard), lambda) {
        let logistic_model = Model {
            weights: w,
            intercept: b0,
            ..model.clone()
        };
        let lr_auc = auc_of(
            &logistic_model.raw_scores_from(&members, &holdout),
            &seed_hold,
            &rest_hold,
        );
        if lr_auc > sc_auc {
            model = logistic_model;
            method = "logistic";
            held_auc = lr_auc;
        }
    }

    // Percentiles of the population, lift, quality.
    let raw = model.raw_scores_from(&members, ix.live());
    model.cutoffs = cutoffs(population.iter().map(|p| raw[p as usize]).collect());
    let top_decile = model.cutoffs[89];
    let lift = if seed_hold.is_empty() {
        0.0
    } else {
        let above = seed_hold
            .iter()
            .filter(|p| raw[*p as usize] > top_decile)
            .count() as f64;
        above / seed_hold.len() as f64 / 0.10
    };
    let (n1, n0) = (seed_hold.len() as f64, rest_hold.len() as f64);
    let se = ((n1 + n0 + 1.0) / (12.0 * n1 * n0)).sqrt();
    let predictive = held_auc - 0.5 > 3.0 * se;
    let quality = Quality::of(held_auc, predictive);
    if !predictive {
        warnings.push(format!(
            "not predictive: the held-out AUC {held_auc:.3} is within noise of 0.5 \
             (standard error {se:.3}); the seed does not differ from the population in \
             anything the features see"
        ));
    }

    let mut top: Vec<(f64, TopFeature)> = chosen
        .iter()
        .zip(&model.weights)
        .map(|((c, _), w)| {
            let share = c.held as f64 / population.len() as f64;
            let spread = (share * (1.0 - share)).sqrt();
            (
                w.abs() * spread,
                TopFeature {
                    feature: label(&c.feature, ix),
                    weight: *w,
                    seed_share: c.seed as f64 / n_seed,
                    population_share: share,
                },
            )
        })
        .collect();
    top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.feature.cmp(&b.1.feature)));
    let scores = model.percentiles(&raw, ix.live());
    model.report = ModelReport {
        seed: seed_train.len(),
        holdout: seed_hold.len(),
        population: population.len(),
        candidates: considered,
        features: model.features.len() as u64,
        auc: held_auc,
        lift_at_10: lift,
        quality,
        predictive,
        method: method.into(),
        top_features: top.into_iter().take(TOP_FEATURES).map(|(_, t)| t).collect(),
        warnings,
        trained_at: now_millis(),
        train_ms: started.elapsed().as_millis() as u64,
        ..model.report
    };
    Ok(Trained { model, scores })
}

/// A trained model with the percentiles of the live profiles.
pub struct Trained {
    /// The model.
    pub model: Model,
    /// The percentile of every live profile.
    pub scores: super::scores::ScoreIndex,
}

fn empty_report(name: &str, options: &TrainOptions) -> ModelReport {
    ModelReport {
        name: name.to_string(),
        seed_expr: options.seed_expr.clone(),
        population_expr: options.population_expr.clone(),
        seed: 0,
        holdout: 0,
        population: 0,
        candidates: 0,
        features: 0,
        auc: 0.5,
        lift_at_10: 0.0,
        quality: Quality::Poor,
        predictive: false,
        method: String::new(),
        top_features: Vec::new(),
        warnings: Vec::new(),
        trained_at: 0,
        as_of: options.as_of,
        train_ms: 0,
    }
}

/// The feature's label, with list fields written with `HAS`.
fn label(feature: &Feature, ix: &Indexes) -> String {
    let list: Vec<&str> = match feature {
        Feature::Term(Term::Eq(f, _)) if ix.field_kinds(f).contains(&ValueKind::List) => {
            vec![f.as_str()]
        }
        _ => Vec::new(),
    };
    feature.label(&list)
}

/// The scorecard's weights summed at their mean (so the intercept puts the average
/// profile at the prior odds).
fn centre(chosen: &[(Candidate, RoaringBitmap)], weights: &[f64], rows: f64) -> f64 {
    chosen
        .iter()
        .zip(weights)
        .map(|((c, _), w)| w * (c.seed + c.rest) as f64 / rows)
        .sum()
}

/// Correlation (phi) of two features over `n` rows, from their members among the rows.
fn phi(a: &RoaringBitmap, b: &RoaringBitmap, n: u64) -> f64 {
    let (n, na, nb) = (n as f64, a.len() as f64, b.len() as f64);
    let nab = a.intersection_len(b) as f64;
    let denominator = (na * (n - na) * nb * (n - nb)).sqrt();
    if denominator == 0.0 {
        return 0.0;
    }
    (n * nab - na * nb) / denominator
}

/// The rows the logistic regression is fitted on.
fn fit_rows_of(
    chosen: &[(Candidate, RoaringBitmap)],
    rows: &RoaringBitmap,
    positive: &RoaringBitmap,
    (seed_weight, rest_weight): (f64, f64),
) -> Vec<Row> {
    let mut out: Vec<Row> = rows
        .iter()
        .map(|pid| {
            let positive = positive.contains(pid);
            Row {
                active: Vec::new(),
                positive,
                weight: if positive { seed_weight } else { rest_weight },
            }
        })
        .collect();
    for (f, (_, in_rows)) in chosen.iter().enumerate() {
        for pid in in_rows {
            let at = rows.rank(pid) as usize - 1;
            out[at].active.push(f as u16);
        }
    }
    out
}

/// AUC of the scores of `positive` against `negative` (Mann-Whitney, ties counted half).
pub fn auc_of(scores: &[f64], positive: &RoaringBitmap, negative: &RoaringBitmap) -> f64 {
    let mut all: Vec<(f64, bool)> = positive
        .iter()
        .map(|p| (scores[p as usize], true))
        .chain(negative.iter().map(|p| (scores[p as usize], false)))
        .collect();
    if positive.is_empty() || negative.is_empty() {
        return 0.5;
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let average_rank = (i + j + 1) as f64 / 2.0; // ranks i+1..=j
        rank_sum += average_rank * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (n1, n0) = (positive.len() as f64, negative.len() as f64);
    (rank_sum - n1 * (n1 + 1.0) / 2.0) / (n1 * n0)
}

/// Every candidate feature the indexes offer (models.md "Candidate features").
fn candidate_features(ix: &Indexes, population: &RoaringBitmap, as_of: Millis) -> Vec<Feature> {
    let mut out = Vec::new();
    for (term, _) in ix.terms() {
        match term {
            Term::Eq(..)
            | Term::Exists(_)
            | Term::Consent(_)
            | Term::IdentifierType(_)
            | Term::Source(_) => out.push(Feature::Term(term.clone())),
            _ => {}
        }
    }
    let today = day_of(as_of);
    for (key, bsi) in ix.numerics() {
        if key.field == "birth_date" && key.kind == NumericKind::Date {
            out.extend(
                AGE_BANDS
                    .iter()
                    .filter_map(|(lo, hi)| Feature::age_band(today, *lo, *hi)),
            );
            continue;
        }
        let with_value = bsi.exists() & population;
        let (sample, _) = split(
            &with_value,
            QUANTILE_SAMPLE as f64 / with_value.len().max(1) as f64,
            4,
        );
        let mut values: Vec<i64> = sample.iter().filter_map(|p| bsi.get(p)).collect();
        values.sort_unstable();
        values.dedup();
        if values.len() < 2 {
            continue;
        }
        // Bands between quantiles; the first and last are open, so every value has one.
        let mut low = i64::MIN;
        for b in 1..=BANDS {
            let high = if b == BANDS {
                i64::MAX
            } else {
                values[(b * values.len() / BANDS).min(values.len() - 1)] - 1
            };
            if high >= low {
                out.push(Feature::Band {
                    key: key.clone(),
                    low,
                    high,
                    age: None,
                });
            }
            low = high.saturating_add(1);
        }
    }
    for key in ix.events().series.keys() {
        let mut push = |since: Option<Millis>, min_count: u32| {
            out.push(Feature::Event {
                key: key.clone(),
                since,
                min_count,
            })
        };
        push(None, 1);
        for days in EVENT_WINDOWS_DAYS {
            push(Some((i64::from(today) - days) * MS_PER_DAY), 1);
        }
        for n in EVENT_COUNTS {
            push(None, n);
        }
    }
    out.sort();
    out.dedup();
    out
}

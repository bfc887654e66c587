//! The fingerprint of one response: per-token entropy, logit, log-prob and gradient
//! influence (mean norm of d target / d W over the chosen q/k/v/o matrices), steps, and the
//! entropy-influence correlations (docs/method.md section 2).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::DType;
use egi_model::Transformer;
use rayon::prelude::*;

use crate::norms::{gradient_norm, Dense, InputSide, Norm};
use egi_model::pass::{head, Pass, Proj, Target};

/// How a step's influence is obtained.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum StepMode {
    /// Mean of the step's token influences (needs one gradient per token). Default.
    Mean,
    /// One gradient of the step's summed target scalars (one backward per step; no
    /// per-token influences). Grows with the step's token count.
    SumLogits,
    /// One gradient of the step's mean target scalar: `sum-logits` divided by the step's
    /// token count (the norms are homogeneous), as cheap as `sum-logits`.
    MeanLogit,
}

impl StepMode {
    /// One backward per step rather than per token: no per-token influences.
    pub fn per_step(self) -> bool {
        !matches!(self, StepMode::Mean)
    }
}

/// Which correlation is reported.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Correlation {
    Spearman,
    Pearson,
}

/// Level at which the headline correlation is taken.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Token,
    Step,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProbeOptions {
    pub target: Target,
    pub norm: Norm,
    pub projections: Vec<Proj>,
    /// Layers measured; None = all.
    pub layers: Option<Vec<usize>>,
    pub granularity: Granularity,
    pub step_delim: String,
    pub step_mode: StepMode,
    pub correlation: Correlation,
    /// Targets whose backward passes run together (memory grows linearly with it).
    pub batch: usize,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            target: Target::Logit,
            norm: Norm::Nuclear,
            projections: Proj::ALL.to_vec(),
            layers: None,
            granularity: Granularity::Step,
            step_delim: "\n".into(),
            step_mode: StepMode::Mean,
            correlation: Correlation::Spearman,
            batch: 16,
        }
    }
}

impl ProbeOptions {
    /// The (layer, projection) matrices measured, in fixture order (layer-major, q k v o).
    pub fn matrices(&self, n_layers: usize) -> Result<Vec<(usize, Proj)>> {
        let mut layers: Vec<usize> = match &self.layers {
            Some(l) => l.clone(),
            None => (0..n_layers).collect(),
        };
        // Each matrix once, in model order: a layer listed twice ("0-3,2") would otherwise be
        // averaged in twice, its second copy never filled.
        layers.sort_unstable();
        layers.dedup();
        if let Some(&bad) = layers.iter().find(|&&l| l >= n_layers) {
            bail!(
                "layer {bad} does not exist (the model has {n_layers} layers, 0..{})",
                n_layers - 1
            );
        }
        if self.projections.is_empty() || layers.is_empty() {
            bail!("no matrices selected: give at least one projection and one layer");
        }
        let mut out = vec![];
        for l in layers {
            for p in Proj::ALL {
                if self.projections.contains(&p) {
                    out.push((l, p));
                }
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TokenRecord {
    pub pos: usize,
    pub id: u32,
    pub char_start: usize,
    pub step: usize,
    pub entropy: f64,
    pub logit: f64,
    pub logprob: f64,
    /// Mean norm over the chosen matrices; None in step-sum mode.
    pub influence: Option<f64>,
    /// One norm per matrix, in `ResponseFingerprint::matrices` order; None in step-sum mode.
    pub norms: Option<Vec<f64>>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StepRecord {
    /// Character range [start, end) of the step inside the response.
    pub chars: [usize; 2],
    pub n_tokens: usize,
    pub entropy: f64,
    pub influence: f64,
    /// Step-sum mode: the per-matrix norms of the step's gradient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub norms: Option<Vec<f64>>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ResponseFingerprint {
    pub tokens: Vec<TokenRecord>,
    pub steps: Vec<StepRecord>,
    pub rho_token: Option<f64>,
    pub rho_step: Option<f64>,
    pub matrices: Vec<(usize, Proj)>,
    /// Wall time of the gradient part, and the multiply-add count of its backward passes.
    pub seconds: f64,
    pub backward_flops: f64,
    /// (target, matrix) pairs whose norm needed the gradient G itself (out x in) and its
    /// SVD: prefixes longer than the matrix's input width (docs/method.md section 2).
    pub dense_fallbacks: usize,
}

/// Character ranges of the steps: split after each delimiter (it ends its step).
pub fn split_steps(response: &str, delim: &str) -> Vec<[usize; 2]> {
    let chars: Vec<char> = response.chars().collect();
    let n = chars.len();
    if delim.is_empty() {
        return vec![[0, n]];
    }
    let d: Vec<char> = delim.chars().collect();
    let mut out = vec![];
    let mut start = 0;
    let mut i = 0;
    while i + d.len() <= n {
        if chars[i..i + d.len()] == d[..] {
            out.push([start, i + d.len()]);
            start = i + d.len();
            i += d.len();
        } else {
            i += 1;
        }
    }
    if start < n {
        out.push([start, n]);
    }
    out
}

pub fn correlate(kind: Correlation, x: &[f64], y: &[f64]) -> Option<f64> {
    match kind {
        Correlation::Spearman => egi_report::stats::spearman(x, y),
        Correlation::Pearson => egi_report::stats::pearson(x, y),
    }
}

fn check_inputs(ids: &[u32], n_prompt: usize, char_starts: &[usize]) -> Result<()> {
    if n_prompt == 0 || n_prompt >= ids.len() {
        bail!("need at least one prompt token and one response token");
    }
    if char_starts.len() != ids.len() - n_prompt {
        bail!(
            "char_starts has {} entries for {} response tokens",
            char_starts.len(),
            ids.len() - n_prompt
        );
    }
    Ok(())
}

/// Fingerprint one response. `ids` = prompt + response tokens; `char_starts[i]` = character
/// offset inside `response` where response token i begins.
pub fn fingerprint(
    model: &Transformer,
    ids: &[u32],
    n_prompt: usize,
    char_starts: &[usize],
    response: &str,
    opts: &ProbeOptions,
) -> Result<ResponseFingerprint> {
    let t0 = Instant::now();
    check_inputs(ids, n_prompt, char_starts)?;
    opts.matrices(model.cfg.num_layers)?;
    let pass = Pass::record_causal(model, ids)?;
    let mut fp = fingerprint_pass(model, &pass, ids, n_prompt, char_starts, response, opts)?;
    fp.seconds = t0.elapsed().as_secs_f64(); // the recording included
    Ok(fp)
}

/// [`fingerprint`] on a recorded pass, e.g. one read out of the trainer's own forward pass
/// with [`Pass::select_rows`]. The pass holds the rows of `ids` (the last one may be
/// missing: no target reads it).
pub fn fingerprint_pass(
    model: &Transformer,
    pass: &Pass,
    ids: &[u32],
    n_prompt: usize,
    char_starts: &[usize],
    response: &str,
    opts: &ProbeOptions,
) -> Result<ResponseFingerprint> {
    let t0 = Instant::now();
    check_inputs(ids, n_prompt, char_starts)?;
    // The last token's own row is never read (no target follows it): a pass may lack it.
    if pass.len() > ids.len() || pass.len() + 1 < ids.len() {
        bail!("pass of {} rows for {} tokens", pass.len(), ids.len());
    }
    let matrices = opts.matrices(model.cfg.num_layers)?;
    let n_resp = ids.len() - n_prompt;
    // Logits of the predicting rows n_prompt - 1 .. (one per response token).
    let logits = pass.logits(model, n_prompt - 1)?.narrow(0, 0, n_resp)?;
    let scores = head::token_stats(&logits, &ids[n_prompt..])?;

    // Steps and the step of each token.
    let ranges = split_steps(response, &opts.step_delim);
    let step_of = |c: usize| {
        ranges
            .iter()
            .position(|r| c >= r[0] && c < r[1])
            .unwrap_or(ranges.len().saturating_sub(1))
    };
    let tok_step: Vec<usize> = char_starts.iter().map(|&c| step_of(c)).collect();

    // Targets: one per token, or one per step (its tokens' scalars summed).
    let groups: Vec<Vec<usize>> = match opts.step_mode {
        StepMode::Mean => (0..n_resp).map(|i| vec![i]).collect(),
        StepMode::SumLogits | StepMode::MeanLogit => (0..ranges.len())
            .map(|s| {
                (0..n_resp)
                    .filter(|&i| tok_step[i] == s)
                    .collect::<Vec<_>>()
            })
            .filter(|g| !g.is_empty())
            .collect(),
    };
    // Input sides (X and its Gram factor) for the whole response, one per distinct input:
    // q, k and v of a layer read the same X, so they share one.
    let input_key = |(l, p): (usize, Proj)| (l, p == Proj::O);
    let mut keys: Vec<(usize, bool)> = matrices.iter().map(|&m| input_key(m)).collect();
    keys.dedup();
    let side_of: Vec<usize> = matrices
        .iter()
        .map(|&m| keys.iter().position(|&k| k == input_key(m)).unwrap())
        .collect();
    // The inputs are read off the device from this thread (a GPU's one stream), then each
    // Gram factor is formed in parallel on the CPU.
    let xs = keys
        .iter()
        .map(|&(l, is_o)| -> Result<Dense> {
            let p = if is_o { Proj::O } else { Proj::Q };
            let x = pass.input_of(l, p).to_dtype(DType::F64)?;
            let (r, c) = x.dims2()?;
            Ok(Dense::new(r, c, x.flatten_all()?.to_vec1()?))
        })
        .collect::<Result<Vec<_>>>()?;
    let inputs: Vec<InputSide> = xs.into_par_iter().map(InputSide::new).collect();
    let mat_index = |l: usize, p: Proj| matrices.iter().position(|&m| m == (l, p));
    let mut group_norms = vec![vec![0f64; matrices.len()]; groups.len()];
    let mut flops = 0f64;
    let mut dense_fallbacks = 0usize;
    let (body, _) = model.cfg.n_params();
    for chunk_start in (0..groups.len()).step_by(opts.batch.max(1)) {
        let chunk: Vec<usize> =
            (chunk_start..(chunk_start + opts.batch.max(1)).min(groups.len())).collect();
        // Each target's causal prefix: up to its last predicting position.
        let lens: Vec<usize> = chunk
            .iter()
            .map(|&g| groups[g].iter().map(|&i| n_prompt + i).max().unwrap())
            .collect();
        let offs = egi_model::fastops::prefix_offsets(&lens);
        let seeds = chunk
            .iter()
            .map(|&g| {
                groups[g]
                    .iter()
                    .map(|&i| {
                        let row = n_prompt + i - 1;
                        let z = match opts.target {
                            Target::Logit => None,
                            _ => Some(logits.get(i)?),
                        };
                        Ok((
                            row,
                            head::seed(model, z.as_ref(), ids[n_prompt + i], opts.target)?,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        // Input-gradient matmuls of the backward: 2 multiply-adds... per parameter and row.
        flops += 2.0 * body as f64 * lens.iter().sum::<usize>() as f64;
        pass.backward_targets(
            model,
            &lens,
            &seeds,
            |l, p| mat_index(l, p).is_some(),
            |l, p, d| {
                let m = mat_index(l, p).unwrap();
                let inp = &inputs[side_of[m]];
                let out_dim = d.dim(1)?;
                // Per target: D D^T over its prefix (in the model's dtype), then the small
                // eigenproblem. D itself is only read when the large-side fallback needs it.
                let gram = |k: usize| -> Result<(Vec<f64>, Dense)> {
                    // In f64: D D^T of a long prefix sums many products, and its small
                    // eigenvalues are what the nuclear norm adds up.
                    let n = lens[k];
                    let dk = d.narrow(0, offs[k], n)?.to_dtype(DType::F64)?;
                    let ddk: Vec<f64> = dk.matmul(&dk.t()?)?.flatten_all()?.to_vec1()?;
                    // An f64 model is the reference mode: D itself, for full f64 accuracy.
                    let dk = if inp.needs_d(n, out_dim) || d.dtype() == DType::F64 {
                        Dense::new(n, out_dim, dk.flatten_all()?.to_vec1()?)
                    } else {
                        Dense::new(0, out_dim, vec![])
                    };
                    Ok((ddk, dk))
                };
                // On the CPU the products run in parallel with the eigenproblems; a GPU gets
                // them one after another from this thread (one stream, one cuBLAS handle).
                let out: Vec<f64> = if d.device().is_cpu() {
                    (0..chunk.len())
                        .into_par_iter()
                        .map(|k| {
                            let (ddk, dk) = gram(k)?;
                            gradient_norm(inp, lens[k], &ddk, &dk, opts.norm)
                        })
                        .collect::<Result<_>>()?
                } else {
                    let grams = (0..chunk.len()).map(gram).collect::<Result<Vec<_>>>()?;
                    grams
                        .into_par_iter()
                        .enumerate()
                        .map(|(k, (ddk, dk))| gradient_norm(inp, lens[k], &ddk, &dk, opts.norm))
                        .collect::<Result<_>>()?
                };
                for (k, v) in out.into_iter().enumerate() {
                    group_norms[chunk[k]][m] = v;
                }
                dense_fallbacks += lens.iter().filter(|&&n| inp.dense_fallback(n)).count();
                Ok(())
            },
        )?;
    }
    if opts.step_mode == StepMode::MeanLogit {
        for (norms, g) in group_norms.iter_mut().zip(&groups) {
            norms.iter_mut().for_each(|v| *v /= g.len() as f64);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;

    let tokens: Vec<TokenRecord> = (0..n_resp)
        .map(|i| {
            let head::TokenStats {
                entropy,
                logit,
                logprob,
            } = scores[i];
            let norms = (!opts.step_mode.per_step()).then(|| group_norms[i].clone());
            TokenRecord {
                pos: n_prompt + i,
                id: ids[n_prompt + i],
                char_start: char_starts[i],
                step: tok_step[i],
                entropy,
                logit,
                logprob,
                influence: norms.as_ref().map(|n| mean(n)),
                norms,
            }
        })
        .collect();
    let mut steps = vec![];
    let mut gi = 0;
    for (s, r) in ranges.iter().enumerate() {
        let toks: Vec<&TokenRecord> = tokens.iter().filter(|t| t.step == s).collect();
        if toks.is_empty() {
            continue;
        }
        let entropy = mean(&toks.iter().map(|t| t.entropy).collect::<Vec<_>>());
        let (influence, norms) = match opts.step_mode {
            StepMode::Mean => (
                mean(
                    &toks
                        .iter()
                        .map(|t| t.influence.unwrap())
                        .collect::<Vec<_>>(),
                ),
                None,
            ),
            StepMode::SumLogits | StepMode::MeanLogit => {
                let n = group_norms[gi].clone();
                gi += 1;
                (mean(&n), Some(n))
            }
        };
        steps.push(StepRecord {
            chars: *r,
            n_tokens: toks.len(),
            entropy,
            influence,
            norms,
        });
    }
    let rho_token = if opts.step_mode.per_step() {
        None
    } else {
        correlate(
            opts.correlation,
            &tokens.iter().map(|t| t.entropy).collect::<Vec<_>>(),
            &tokens
                .iter()
                .map(|t| t.influence.unwrap())
                .collect::<Vec<_>>(),
        )
    };
    let rho_step = correlate(
        opts.correlation,
        &steps.iter().map(|s| s.entropy).collect::<Vec<_>>(),
        &steps.iter().map(|s| s.influence).collect::<Vec<_>>(),
    );
    Ok(ResponseFingerprint {
        tokens,
        steps,
        rho_token,
        rho_step,
        matrices,
        seconds: t0.elapsed().as_secs_f64(),
        backward_flops: flops,
        dense_fallbacks,
    })
}

/// Layers from `all` (None: every layer) or a list of numbers and ranges such as
/// `0-3,10`; `n` (the model's layer count) only words the error.
pub fn parse_layers(s: &str, n: usize) -> Result<Option<Vec<usize>>> {
    if s == "all" {
        return Ok(None);
    }
    // `n` is usize::MAX where the model is not loaded yet (a run's settings): the layers are
    // checked against it when the fingerprint selects its matrices.
    let has = if n == usize::MAX {
        String::new()
    } else {
        format!("; the model has layers 0-{}", n.saturating_sub(1))
    };
    let mut out = vec![];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("cannot read layers \"{part}\" (use e.g. 0-3,10 or all{has})");
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (usize, usize) = (
                a.trim().parse().with_context(bad)?,
                b.trim().parse().with_context(bad)?,
            );
            if a > b {
                bail!("layers \"{part}\" is an empty range: write the lower layer first ({b}-{a})");
            }
            out.extend(a..=b);
        } else {
            out.push(part.parse().with_context(bad)?);
        }
    }
    if out.is_empty() {
        bail!("no layers in \"{s}\" (use e.g. 0-3,10 or all{has})");
    }
    if let Some(&l) = out.iter().find(|&&l| l >= n) {
        bail!("layer {l} does not exist{has}");
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrices_are_unique_and_in_model_order() {
        let o = ProbeOptions {
            layers: Some(vec![3, 0, 1, 2, 2]),
            projections: vec![Proj::V, Proj::Q],
            ..ProbeOptions::default()
        };
        let m = o.matrices(4).unwrap();
        let want: Vec<(usize, Proj)> = (0..4).flat_map(|l| [(l, Proj::Q), (l, Proj::V)]).collect();
        assert_eq!(m, want);
        assert!(ProbeOptions {
            layers: Some(vec![4]),
            ..ProbeOptions::default()
        }
        .matrices(4)
        .is_err());
    }

    #[test]
    fn layer_lists_parse_or_say_why_not() {
        assert_eq!(parse_layers("all", 4).unwrap(), None);
        assert_eq!(
            parse_layers("0-1, 3", 4).unwrap(),
            Some(vec![0, 1, 3]),
            "ranges, single layers, spaces"
        );
        let err = |s: &str, n: usize| parse_layers(s, n).unwrap_err().to_string();
        assert!(err("3-1", 4).contains("1-3"), "{}", err("3-1", 4));
        assert!(err("0-4", 4).contains("layer 4 does not exist; the model has layers 0-3"));
        assert!(err("x", 4).contains("0-3,10 or all"));
        assert!(err(",", 4).contains("no layers"));
        // Without a model (a run's settings) any layer number is accepted here.
        assert_eq!(parse_layers("40", usize::MAX).unwrap(), Some(vec![40]));
    }
}

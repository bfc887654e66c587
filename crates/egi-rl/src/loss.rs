//! Policy-gradient losses of docs/method.md section 5, on one micro-batch of response tokens.
//!
//! Tokens are flattened: token j belongs to local sequence `seq[j]`. Every loss is written as a
//! weighted sum over tokens (or sequences, for GSPO) whose weights carry the algorithm's
//! normaliser for the *whole* rollout batch, so summing micro-batch gradients gives exactly
//! the gradient of the full-batch loss.

use anyhow::{ensure, Result};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// The base algorithm: how the surrogate is normalised and clipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Base {
    /// Group-normalised advantages, token ratio clipped to [1-eps, 1+eps], per-sequence mean,
    /// mean over sequences.
    Grpo,
    /// No std division; tokens summed and divided by a constant (the max generation length).
    DrGrpo,
    /// Clip-higher, token-level mean over the batch, dynamic sampling, overlong shaping.
    Dapo,
    /// Sequence-level ratio exp(mean_t ln w_t) with its own (tiny) clip range.
    Gspo,
}

impl Base {
    /// (eps_low, eps_high) defaults from the papers.
    pub fn default_clip(self) -> (f64, f64) {
        match self {
            Base::Grpo | Base::DrGrpo => (0.2, 0.2),
            Base::Dapo => (0.2, 0.28),
            Base::Gspo => (3e-4, 4e-4),
        }
    }
    /// Optimizer steps per pass over a rollout batch, from the papers: GRPO (DeepSeekMath)
    /// takes a single update per exploration stage; DAPO splits 512 prompts x 16 responses
    /// into mini-batches of 512 responses, 16 updates; GSPO partitions each batch into four
    /// mini-batches. Dr.GRPO states none: GRPO's.
    pub fn default_mini_batches(self) -> usize {
        match self {
            Base::Grpo | Base::DrGrpo => 1,
            Base::Dapo => 16,
            Base::Gspo => 4,
        }
    }
    /// How group advantages are scaled: Dr.GRPO removes GRPO's division by the group's std.
    pub fn advantage_scale(self) -> crate::advantage::Scale {
        match self {
            Base::DrGrpo => crate::advantage::Scale::None,
            Base::Grpo | Base::Dapo | Base::Gspo => crate::advantage::Scale::Std,
        }
    }
    /// DAPO's sampling rules (its paper's sections 3.2 and 3.4): groups whose rewards are all
    /// equal are dropped and replaced, and responses near the length limit are penalised.
    /// The other bases use neither by default.
    pub fn default_dynamic_sampling(self) -> bool {
        self == Base::Dapo
    }
    pub fn default_overlong_penalty(self) -> bool {
        self == Base::Dapo
    }
    pub fn name(self) -> &'static str {
        match self {
            Base::Grpo => "grpo",
            Base::DrGrpo => "dr-grpo",
            Base::Dapo => "dapo",
            Base::Gspo => "gspo",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LossConfig {
    pub base: Base,
    pub eps_low: f64,
    pub eps_high: f64,
    /// Weight of the k3 KL to the reference model (0 = no reference model).
    pub beta: f64,
}

/// Batch-wide normalisers (the same for every micro-batch of one rollout batch).
#[derive(Debug, Clone, Copy)]
pub struct Normalizer {
    /// Sequences in the rollout batch (G x prompts kept).
    pub n_seq: usize,
    /// Response tokens in the rollout batch (DAPO).
    pub n_tok: usize,
    /// Dr.GRPO's constant: the maximum generation length.
    pub max_len: usize,
}

/// One micro-batch: per-token and per-sequence inputs of the loss.
#[derive(Debug, Clone, Default)]
pub struct TokenBatch {
    /// Local sequence of each token.
    pub seq: Vec<usize>,
    /// ln pi_old of each token (the policy that sampled, or the weights at the start of the
    /// update).
    pub old_logp: Vec<f32>,
    /// ln pi_ref of each token, when beta > 0.
    pub ref_logp: Option<Vec<f32>>,
    /// Advantage of each local sequence.
    pub adv: Vec<f32>,
}

impl TokenBatch {
    pub fn n_seq(&self) -> usize {
        self.adv.len()
    }
    pub fn seq_lens(&self) -> Vec<usize> {
        let mut n = vec![0; self.n_seq()];
        for &s in &self.seq {
            n[s] += 1;
        }
        n
    }
}

/// Diagnostics summed over the micro-batch's tokens (combine with [`LossStats::add`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LossStats {
    pub loss: f64,
    /// Ratio units (tokens, or sequences for GSPO) and how many were clipped.
    pub units: usize,
    pub clipped: usize,
    pub ratio_sum: f64,
    pub ratio_min: f64,
    pub ratio_max: f64,
    /// Sum of the per-token k3 KL estimates and their count.
    pub kl_sum: f64,
    pub kl_n: usize,
}

impl LossStats {
    pub fn add(&mut self, o: &LossStats) {
        if self.units == 0 {
            self.ratio_min = o.ratio_min;
            self.ratio_max = o.ratio_max;
        } else if o.units > 0 {
            self.ratio_min = self.ratio_min.min(o.ratio_min);
            self.ratio_max = self.ratio_max.max(o.ratio_max);
        }
        self.loss += o.loss;
        self.units += o.units;
        self.clipped += o.clipped;
        self.ratio_sum += o.ratio_sum;
        self.kl_sum += o.kl_sum;
        self.kl_n += o.kl_n;
    }
}

/// The surrogate loss of one micro-batch. `logp` holds ln pi_theta of each token ([n], f32,
/// with its graph). Returns the scalar loss (already divided by the batch-wide normaliser) and
/// its diagnostics.
pub fn policy_loss(
    logp: &Tensor,
    b: &TokenBatch,
    cfg: &LossConfig,
    norm: &Normalizer,
) -> Result<(Tensor, LossStats)> {
    let n = b.seq.len();
    ensure!(
        logp.dims1()? == n,
        "logp has {} entries for {n} tokens",
        logp.dims1()?
    );
    ensure!(b.old_logp.len() == n, "old_logp length mismatch");
    ensure!(norm.n_seq > 0, "empty rollout batch");
    let dev = logp.device();
    let lens = b.seq_lens();
    let (lo, hi) = (1.0 - cfg.eps_low, 1.0 + cfg.eps_high);
    let old = Tensor::from_slice(&b.old_logp, n, dev)?;
    let log_ratio = (logp - &old)?;
    let mut stats = LossStats::default();

    // Per-token k3 KL, pi_ref/pi - ln(pi_ref/pi) - 1.
    let kl = match (&b.ref_logp, cfg.beta > 0.0) {
        (Some(r), true) => {
            ensure!(r.len() == n, "ref_logp length mismatch");
            let d = (Tensor::from_slice(r, n, dev)? - logp)?;
            let k = ((d.exp()? - &d)? - 1.0)?;
            let kv: Vec<f32> = k.to_vec1()?;
            stats.kl_sum = kv.iter().map(|&x| x as f64).sum();
            stats.kl_n = n;
            Some(k)
        }
        (None, true) => anyhow::bail!("beta > 0 needs reference log-probabilities"),
        _ => None,
    };

    let loss = if cfg.base == Base::Gspo {
        // s_i = exp(mean_t ln w_t): an averaging matrix [n_seq, n] keeps it differentiable.
        let ns = b.n_seq();
        let mut avg = vec![0f32; ns * n];
        for (j, &s) in b.seq.iter().enumerate() {
            avg[s * n + j] = 1.0 / lens[s] as f32;
        }
        let avg = Tensor::from_vec(avg, (ns, n), dev)?;
        let s = avg.matmul(&log_ratio.unsqueeze(1)?)?.squeeze(1)?.exp()?;
        let adv = Tensor::from_slice(&b.adv, ns, dev)?;
        let obj = clipped_objective(&s, &adv, lo, hi)?;
        // Zero-length sequences carry no ratio: weight 0.
        let w: Vec<f32> = lens
            .iter()
            .map(|&l| if l == 0 { 0.0 } else { 1.0 / norm.n_seq as f32 })
            .collect();
        let w = Tensor::from_vec(w, ns, dev)?;
        let mut loss = (obj.neg()? * &w)?.sum_all()?;
        if let Some(k) = &kl {
            // beta * per-sequence mean KL, averaged over sequences.
            let seq_kl = avg.matmul(&k.unsqueeze(1)?)?.squeeze(1)?;
            loss = (loss + ((seq_kl * &w)?.sum_all()? * cfg.beta)?)?;
        }
        ratio_stats(&mut stats, &s.to_vec1()?, &b.adv, &lens, lo, hi);
        loss
    } else {
        let w = log_ratio.exp()?;
        let adv_tok: Vec<f32> = b.seq.iter().map(|&s| b.adv[s]).collect();
        let adv = Tensor::from_vec(adv_tok.clone(), n, dev)?;
        let mut per_tok = clipped_objective(&w, &adv, lo, hi)?.neg()?;
        if let Some(k) = &kl {
            per_tok = (per_tok + (k * cfg.beta)?)?;
        }
        let coef: Vec<f32> = b
            .seq
            .iter()
            .map(|&s| match cfg.base {
                Base::Grpo => 1.0 / (lens[s] as f64 * norm.n_seq as f64),
                Base::DrGrpo => 1.0 / (norm.max_len.max(1) as f64 * norm.n_seq as f64),
                Base::Dapo => 1.0 / norm.n_tok.max(1) as f64,
                Base::Gspo => unreachable!(),
            } as f32)
            .collect();
        let coef = Tensor::from_vec(coef, n, dev)?;
        let ones = vec![1usize; n];
        ratio_stats(&mut stats, &w.to_vec1()?, &adv_tok, &ones, lo, hi);
        (per_tok * coef)?.sum_all()?
    };
    stats.loss = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    Ok((loss, stats))
}

/// min(r A, clip(r, lo, hi) A), elementwise.
fn clipped_objective(r: &Tensor, adv: &Tensor, lo: f64, hi: f64) -> Result<Tensor> {
    let un = (r * adv)?;
    let cl = (r.clamp(lo, hi)? * adv)?;
    Ok(un.minimum(&cl)?)
}

/// Count units whose clipped branch is the active one (PPO's clip fraction).
fn ratio_stats(st: &mut LossStats, r: &[f32], adv: &[f32], lens: &[usize], lo: f64, hi: f64) {
    for ((&r, &a), &l) in r.iter().zip(adv).zip(lens) {
        if l == 0 {
            continue;
        }
        let r = r as f64;
        if st.units == 0 {
            st.ratio_min = r;
            st.ratio_max = r;
        }
        st.units += 1;
        st.ratio_sum += r;
        st.ratio_min = st.ratio_min.min(r);
        st.ratio_max = st.ratio_max.max(r);
        if (a > 0.0 && r > hi) || (a < 0.0 && r < lo) {
            st.clipped += 1;
        }
    }
}

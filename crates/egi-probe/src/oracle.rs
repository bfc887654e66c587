//! The obviously-correct path, kept as the test oracle and the benchmark baseline: for each
//! target, one forward and one autograd backward with the q/k/v/o weights as variables, then
//! a full SVD of every weight gradient.

use anyhow::{Context, Result};
use candle_core::{DType, Tensor, D};
use egi_model::Transformer;
use faer::Mat;

use crate::norms::{frobenius_dense, nuclear_dense, Norm};
use egi_model::pass::{Proj, Target};

fn weight_name(l: usize, p: Proj) -> String {
    format!("model.layers.{l}.self_attn.{}_proj.weight", p.name())
}

/// Norms of d scalar / d W for each matrix, where the scalar is the sum over `targets`
/// (position, token id) of the chosen target quantity.
pub fn gradient_norms(
    model: &Transformer,
    ids: &[u32],
    targets: &[(usize, u32)],
    matrices: &[(usize, Proj)],
    target: Target,
    norm: Norm,
) -> Result<Vec<f64>> {
    let mut out = norms_of_sums(model, ids, &[targets.to_vec()], matrices, target, norm)?;
    Ok(out.remove(0))
}

/// [`gradient_norms`] of several scalars (each a sum over its targets) from one forward pass:
/// one autograd backward per scalar over the same graph.
pub fn norms_of_sums(
    model: &Transformer,
    ids: &[u32],
    sums: &[Vec<(usize, u32)>],
    matrices: &[(usize, Proj)],
    target: Target,
    norm: Norm,
) -> Result<Vec<Vec<f64>>> {
    // A private copy with exactly these weights trainable.
    let mut m = model.to_dtype(model.dtype())?;
    let names: Vec<String> = matrices.iter().map(|&(l, p)| weight_name(l, p)).collect();
    m.set_trainable(|n| names.iter().any(|x| x == n))?;
    let x = Tensor::new(ids, model.device())?.unsqueeze(0)?;
    let logits = m.forward(&x)?.squeeze(0)?;
    let vars = names
        .iter()
        .map(|n| {
            m.param(n)
                .and_then(|p| p.var.clone())
                .context("weight not found")
        })
        .collect::<Result<Vec<_>>>()?;
    sums.iter()
        .map(|targets| {
            let mut total: Option<Tensor> = None;
            for &(pos, id) in targets {
                let z = logits.get(pos - 1)?;
                let s = match target {
                    Target::Logit => z.get(id as usize)?,
                    Target::Logprob => {
                        candle_nn::ops::log_softmax(&z, D::Minus1)?.get(id as usize)?
                    }
                    Target::Nll => candle_nn::ops::log_softmax(&z, D::Minus1)?
                        .get(id as usize)?
                        .neg()?,
                };
                total = Some(match total {
                    None => s,
                    Some(t) => (t + s)?,
                });
            }
            let grads = total.context("no targets")?.backward()?;
            vars.iter()
                .map(|var| {
                    let g = grads
                        .get(var)
                        .context("no gradient")?
                        .to_dtype(DType::F64)?;
                    let v: Vec<Vec<f64>> = g.to_vec2()?;
                    let gm = Mat::<f64>::from_fn(v.len(), v[0].len(), |i, j| v[i][j]);
                    Ok(match norm {
                        Norm::Nuclear => nuclear_dense(&gm)?,
                        Norm::Frobenius => frobenius_dense(&gm),
                    })
                })
                .collect()
        })
        .collect()
}

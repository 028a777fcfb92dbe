//! The ELBO's step terms for a graph: `KL(q(z_s | z_t, z_0) ‖ p_θ(z_s | z_t))` (s = t − 1) summed
//! over its nodes and its node pairs — what the app's forward explorer plots per timestep. The noisy
//! graphs are drawn on the host (the network's structural features are computed there anyway), the
//! two posteriors on the device without waiting, and the KL on the host once both are read back.

use super::DigressModel;
use crate::error::{Error, Result};
use crate::ops::transition::X0;
use crate::process::graph::{Digress, Graph, GraphBatch};
use crate::rng::{Philox, Substream};
use crate::tensor::Tensor;

/// The two posteriors of `draws` noisy copies of one graph at one timestep, on the device.
pub struct StepPosteriors {
    pub t: usize,
    /// The graph's node count (the batch is `[draws, c]` nodes, `[draws, c, c]` pairs).
    pub nodes: usize,
    /// q(z_s | z_t, z_0) and p_θ(z_s | z_t): nodes `[draws, c, dx]`, pairs `[draws, c, c, de]`.
    pub truth: (Tensor, Tensor),
    pub model: (Tensor, Tensor),
}

/// A graph's node ids `[c]` and symmetric edge ids `[c·c]` (no edge, and the diagonal, class 0).
pub fn dense(g: &Graph) -> (Vec<u32>, Vec<u32>) {
    let c = g.num_nodes;
    let mut e = vec![0u32; c * c];
    for &(i, j, k) in &g.edges {
        if i < c && j < c && i != j {
            e[i * c + j] = k;
            e[j * c + i] = k;
        }
    }
    (g.node_classes.clone(), e)
}

/// One draw of z_t ~ q(z_t | z_0) on the host: each node, and each pair (i < j, mirrored), keeps its
/// class with probability ᾱ_t and otherwise takes one from the limit distribution, by inverse CDF
/// on a Philox uniform; the diagonal stays 0, as DiGress leaves it.
fn noised(p: &Digress, x0: &[u32], e0: &[u32], t: usize, key: Philox) -> (Vec<u32>, Vec<u32>) {
    let ab = p.schedule.alphas_bar[t];
    let mut draw_index = 0u32;
    let mut draw = |class: u32, limit: &[f32]| {
        let u = key.uniform(draw_index);
        draw_index += 1;
        let mut acc = 0.0;
        for (k, &l) in limit.iter().enumerate() {
            acc += (1.0 - ab) * l + if k as u32 == class { ab } else { 0.0 };
            if u < acc {
                return k as u32;
            }
        }
        limit.len() as u32 - 1
    };
    let x: Vec<u32> = x0.iter().map(|&c| draw(c, &p.x_limit)).collect();
    let c = x0.len();
    let mut e = vec![0u32; c * c];
    for i in 0..c {
        for j in i + 1..c {
            let k = draw(e0[i * c + j], &p.e_limit);
            e[i * c + j] = k;
            e[j * c + i] = k;
        }
    }
    (x, e)
}

/// The step term's two posteriors for `draws` noisy copies of `g` at timestep `t` (2..=T: t = 1 is
/// the reconstruction term), noise from Philox (`seed`, stream t). Records device work; reads
/// nothing back.
pub fn step_posteriors(
    model: &DigressModel,
    g: &Graph,
    t: usize,
    draws: usize,
    seed: u64,
) -> Result<StepPosteriors> {
    let steps = model.process.steps();
    let c = g.num_nodes;
    if !(2..=steps).contains(&t) || draws == 0 || c == 0 || c > model.max_nodes() {
        return Err(Error::Invalid(format!(
            "a step term needs t in 2..={steps}, at least one draw and 1 to {} nodes (got t = {t}, \
             {draws} draws, {c} nodes)",
            model.max_nodes()
        )));
    }
    let (x0, e0) = dense(g);
    let (mut xt, mut et) = (Vec::new(), Vec::new());
    for d in 0..draws {
        let key = Philox::new(seed.wrapping_add(d as u64), t as u32, Substream::Forward);
        let (x, e) = noised(&model.process, &x0, &e0, t, key);
        xt.extend(x);
        et.extend(e);
    }
    let p = &model.process;
    let device = model.device();
    let counts = vec![c; draws];
    let z = GraphBatch::from_host(device, &counts, c, &xt, &et, p.dx, p.de)?;
    let clean = GraphBatch::from_host(
        device,
        &counts,
        c,
        &x0.repeat(draws),
        &e0.repeat(draws),
        p.dx,
        p.de,
    )?;
    let out = model.predict(&z, &et, t)?;
    let pred = p.step_probs(&out.x, &out.e, &z, t - 1)?;
    let truth = p.step_probs_from(
        X0::Ids {
            ids: &clean.x,
            k: p.dx,
        },
        X0::Ids {
            ids: &clean.e,
            k: p.de,
        },
        &z,
        t - 1,
    )?;
    Ok(StepPosteriors {
        t,
        nodes: c,
        truth,
        model: pred,
    })
}

/// The step term in nats per graph, averaged over the draws, from the read-back posteriors (nodes
/// and pairs as [`StepPosteriors`] lays them out): the KL of every node and of every pair i < j.
pub fn step_kl_nats(
    nodes: usize,
    (dx, de): (usize, usize),
    truth: (&[f32], &[f32]),
    model: (&[f32], &[f32]),
) -> f64 {
    let kl = |p: &[f32], q: &[f32]| -> f64 {
        p.iter()
            .zip(q)
            .filter(|(&p, _)| p > 0.0)
            .map(|(&p, &q)| p as f64 * ((p as f64).ln() - (q as f64).max(1e-30).ln()))
            .sum::<f64>()
            .max(0.0)
    };
    let c = nodes;
    let draws = truth.0.len() / (c * dx).max(1);
    let mut total = 0.0;
    for d in 0..draws {
        for i in 0..c {
            let r = (d * c + i) * dx..(d * c + i + 1) * dx;
            total += kl(&truth.0[r.clone()], &model.0[r]);
            for j in i + 1..c {
                let r = ((d * c + i) * c + j) * de..((d * c + i) * c + j + 1) * de;
                total += kl(&truth.1[r.clone()], &model.1[r]);
            }
        }
    }
    total / draws.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{Cpu, CpuOptions};
    use crate::tensor::Device;

    #[test]
    fn the_host_draw_keeps_a_class_with_the_forward_process_probability() {
        let device = Device::Cpu(Cpu::new(&CpuOptions::default()));
        let p = Digress::new(&device, 500, &[0.2, 0.8], &[0.7, 0.3]).unwrap();
        // 400 nodes of class 0 and their 79,800 pairs all edges (class 1), at t = 120.
        let c = 400;
        let x0 = vec![0u32; c];
        let mut e0 = vec![1u32; c * c];
        for i in 0..c {
            e0[i * c + i] = 0;
        }
        let t = 120;
        let ab = p.schedule.alphas_bar[t] as f64;
        let (x, e) = noised(&p, &x0, &e0, t, Philox::new(9, 0, Substream::Forward));
        let kept_x = x.iter().filter(|&&v| v == 0).count() as f64 / c as f64;
        let want_x = ab + (1.0 - ab) * 0.2;
        // Binomial standard errors: sqrt(p(1-p)/n); allow 4 of them.
        assert!((kept_x - want_x).abs() < 4.0 * (want_x * (1.0 - want_x) / c as f64).sqrt());
        let pairs = c * (c - 1) / 2;
        let mut kept_e = 0usize;
        for i in 0..c {
            assert_eq!(e[i * c + i], 0, "the diagonal stays 0");
            for j in i + 1..c {
                assert_eq!(e[i * c + j], e[j * c + i], "symmetric");
                kept_e += (e[i * c + j] == 1) as usize;
            }
        }
        let kept_e = kept_e as f64 / pairs as f64;
        let want_e = ab + (1.0 - ab) * 0.3;
        assert!(
            (kept_e - want_e).abs() < 4.0 * (want_e * (1.0 - want_e) / pairs as f64).sqrt(),
            "{kept_e} vs {want_e}"
        );
    }

    #[test]
    fn the_step_kl_counts_every_node_and_each_pair_once() {
        // Two nodes (dx = 2), one pair (de = 2): the node KLs and the (0, 1) pair's, not the
        // diagonal's nor the mirrored (1, 0)'s; a prediction equal to the truth costs nothing.
        let truth_x = [1.0, 0.0, 0.5, 0.5];
        let model_x = [0.5, 0.5, 0.5, 0.5];
        // Pairs (0,0), (0,1), (1,0), (1,1).
        let truth_e = [1.0, 0.0, 0.25, 0.75, 0.9, 0.1, 1.0, 0.0];
        let model_e = [0.1, 0.9, 0.5, 0.5, 0.1, 0.9, 0.1, 0.9];
        let kl = step_kl_nats(2, (2, 2), (&truth_x, &truth_e), (&model_x, &model_e));
        let pair = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
        let want = 2f64.ln() + 0.0 + pair;
        assert!((kl - want).abs() < 1e-6, "{kl} vs {want}");
        let same = step_kl_nats(2, (2, 2), (&truth_x, &truth_e), (&truth_x, &truth_e));
        assert_eq!(same, 0.0);
    }
}

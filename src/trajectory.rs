//! A recorded reverse run: the settings that determine it and, per step, the state x_t and what the
//! model predicted (x̂0, ε̂). A trajectory is a pure function of (model, settings, initial state), so
//! replaying it — or re-running from step k with the same seed — gives the same bits on one backend.

use crate::error::{Error, Result};
use crate::process::gaussian::{PlannedStep, SampleSettings};

/// Host copies of one trajectory.
#[derive(Clone, Debug)]
pub struct Trajectory {
    pub settings: SampleSettings,
    /// `[N, ..sample shape]`.
    pub shape: Vec<usize>,
    pub plan: Vec<PlannedStep>,
    /// `states[k]` is x after k reverse steps (`states[0]` = x_T).
    pub states: Vec<Vec<f32>>,
    /// `x0[k]`, `eps[k]`: the model's view at step k (from `states[k]`).
    pub x0: Vec<Vec<f32>>,
    pub eps: Vec<Vec<f32>>,
}

impl Trajectory {
    pub fn final_state(&self) -> &[f32] {
        self.states.last().map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// Serialise as safetensors: `x_t` `[S+1, N, ..]`, `x0` and `eps` `[S, N, ..]`, `timesteps` `[S]`.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = Vec::new();
        let stack = |v: &[Vec<f32>]| -> (Vec<usize>, Vec<u8>) {
            let mut shape = vec![v.len()];
            shape.extend_from_slice(&self.shape);
            (
                shape,
                v.iter().flatten().flat_map(|f| f.to_le_bytes()).collect(),
            )
        };
        for (name, v) in [("x_t", &self.states), ("x0", &self.x0), ("eps", &self.eps)] {
            if !v.is_empty() {
                let (s, b) = stack(v);
                tensors.push((name.into(), s, b, safetensors::Dtype::F32));
            }
        }
        let ts: Vec<u8> = self
            .plan
            .iter()
            .flat_map(|p| (p.t as i64).to_le_bytes())
            .collect();
        tensors.push((
            "timesteps".into(),
            vec![self.plan.len()],
            ts,
            safetensors::Dtype::I64,
        ));
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(n, s, b, d)| {
                safetensors::tensor::TensorView::new(*d, s.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| Error::Encode {
                        what: "safetensors",
                        detail: format!("trajectory tensor {n}: {e}"),
                    })
            })
            .collect::<Result<_>>()?;
        let mut meta = std::collections::HashMap::new();
        meta.insert(
            "settings".to_string(),
            serde_json::to_string(&self.settings).unwrap_or_default(),
        );
        safetensors::serialize(views, Some(meta)).map_err(|e| Error::Encode {
            what: "safetensors",
            detail: format!("trajectory: {e}"),
        })
    }
}

/// The app's default cap on recorded states: 256 MiB holds every step of a 1000-step run of 32,768
/// 2-D points (256 KiB a state); longer or wider runs are thinned (see [`History`]).
pub const DEFAULT_HISTORY_BYTES: usize = 256 << 20;

/// Steps always kept at full resolution behind the newest, whatever the cap (unless the cap cannot
/// hold that many states, then as many as fit).
pub const DEFAULT_RECENT_STEPS: usize = 32;

/// Host copies of a trajectory's states under a memory cap, for views that scrub through a run that
/// may go on for hours.
///
/// **Policy.** Every step is kept until the states would exceed the cap. From then on the history is
/// thinned: x_T (step 0) and the newest `recent` steps are always kept; older steps are kept only at
/// multiples of a stride that doubles each time the cap is reached again (1 → 2 → 4 → …), so the
/// kept steps stay evenly spread over the whole run and memory never exceeds the cap however long
/// the run. A step that was thinned out is not lost for good: a trajectory is a pure function of its
/// settings, so re-running from the nearest kept earlier step reproduces it bit for bit.
///
/// [`History::get`] returns only exact steps; [`History::nearest`] returns the closest kept step at or
/// before the one asked for and says which, so a view never shows another step without saying so.
#[derive(Clone, Debug)]
pub struct History {
    cap_bytes: usize,
    recent: usize,
    stride: usize,
    states: std::collections::BTreeMap<usize, Vec<f32>>,
    bytes: usize,
    len: usize,
}

impl History {
    pub fn new(cap_bytes: usize, recent: usize) -> History {
        History {
            cap_bytes,
            recent: recent.max(1),
            stride: 1,
            states: Default::default(),
            bytes: 0,
            len: 0,
        }
    }

    /// Steps recorded so far (kept or not): the next push is step `len()`.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Steps actually held.
    pub fn kept(&self) -> usize {
        self.states.len()
    }

    /// Bytes held by the kept states.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn cap_bytes(&self) -> usize {
        self.cap_bytes
    }

    /// Older steps are kept only at multiples of this.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// State `k`, if it is kept.
    pub fn get(&self, k: usize) -> Option<&[f32]> {
        self.states.get(&k).map(|v| v.as_slice())
    }

    /// The newest kept step at or before `k`, and its state.
    pub fn nearest(&self, k: usize) -> Option<(usize, &[f32])> {
        self.states
            .range(..=k)
            .next_back()
            .map(|(&i, v)| (i, v.as_slice()))
    }

    /// The newest state.
    pub fn last(&self) -> Option<&[f32]> {
        self.states.values().next_back().map(|v| v.as_slice())
    }

    /// Kept step numbers, oldest first.
    pub fn steps(&self) -> impl Iterator<Item = usize> + '_ {
        self.states.keys().copied()
    }

    /// Record the next step's state.
    pub fn push(&mut self, state: Vec<f32>) {
        let size = std::mem::size_of_val(state.as_slice());
        // The recent window must fit under the cap on its own (plus x_T).
        if let Some(fit) = self.cap_bytes.checked_div(size) {
            self.recent = self.recent.min(fit.saturating_sub(1).max(1));
        }
        self.bytes += size;
        self.states.insert(self.len, state);
        self.len += 1;
        // The step that just left the recent window keeps only if it is on the stride.
        if let Some(old) = self.len.checked_sub(self.recent + 1) {
            if old != 0 && !old.is_multiple_of(self.stride) {
                self.remove(old);
            }
        }
        while self.bytes > self.cap_bytes {
            let before = self.states.len();
            self.stride *= 2;
            let stride = self.stride;
            let protected_from = self.len.saturating_sub(self.recent);
            let drop: Vec<usize> = self
                .states
                .keys()
                .copied()
                .filter(|&k| k != 0 && k < protected_from && !k.is_multiple_of(stride))
                .collect();
            for k in drop {
                self.remove(k);
            }
            if self.states.len() == before && self.stride > self.len {
                break; // only protected steps are left
            }
        }
    }

    fn remove(&mut self, k: usize) {
        if let Some(v) = self.states.remove(&k) {
            self.bytes -= std::mem::size_of_val(v.as_slice());
        }
    }

    /// A copy holding only steps `..=k` (to continue a run from step `k`).
    pub fn truncated(&self, k: usize) -> History {
        let mut h = self.clone();
        h.states = self
            .states
            .range(..=k)
            .map(|(&i, v)| (i, v.clone()))
            .collect();
        h.bytes = h
            .states
            .values()
            .map(|v| std::mem::size_of_val(v.as_slice()))
            .sum();
        h.len = (k + 1).min(self.len);
        h
    }
}

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn history_stays_under_its_cap_and_keeps_an_even_spread() {
        let per_state = 1000; // floats: 4000 bytes
        let cap = 100 * per_state * 4;
        let mut h = History::new(cap, 16);
        for k in 0..10_000usize {
            h.push(vec![k as f32; per_state]);
            assert!(h.bytes() <= cap, "step {k}: {} > {cap}", h.bytes());
            assert_eq!(h.len(), k + 1);
            // x_T and the recent window are always there, exactly.
            assert_eq!(h.get(0).unwrap()[0], 0.0);
            for r in k.saturating_sub(15)..=k {
                assert_eq!(
                    h.get(r).map(|v| v[0]),
                    Some(r as f32),
                    "step {k}: recent {r}"
                );
            }
        }
        // Older steps sit on the stride, and the cap is used well (not thinned to nothing).
        let stride = h.stride();
        let old: Vec<usize> = h.steps().filter(|&k| k < 10_000 - 16).collect();
        assert!(
            old.iter().all(|&k| k % stride == 0),
            "stride {stride}: {old:?}"
        );
        assert!(h.kept() * 2 > 100, "only {} of 100 states kept", h.kept());
        let gaps = old.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert_eq!(gaps, stride, "evenly spread");
        // A thinned step is reported as missing; nearest() says which step it shows instead.
        let missing = stride + 1;
        assert!(h.get(missing).is_none());
        let (k, v) = h.nearest(missing).unwrap();
        assert_eq!((k, v[0]), (stride, stride as f32));
        // Continuing from a kept step drops what came after it.
        let t = h.truncated(stride * 3);
        assert_eq!(t.len(), stride * 3 + 1);
        assert_eq!(t.last().unwrap()[0], (stride * 3) as f32);
        assert!(t.bytes() <= h.bytes());
    }

    #[test]
    fn a_cap_smaller_than_the_window_still_holds() {
        let mut h = History::new(10 * 4 * 8, 32); // room for 10 states of 8 floats
        for k in 0..1000 {
            h.push(vec![k as f32; 8]);
            assert!(h.bytes() <= 10 * 4 * 8, "step {k}");
            assert_eq!(h.last().unwrap()[0], k as f32);
        }
        assert_eq!(h.get(0).unwrap()[0], 0.0);
    }
}

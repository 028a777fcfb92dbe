//! Where a kernel's random draws come from: the same three sources for the Gumbel-max draws of
//! categorical sampling (uniforms) and the noise of the Gaussian updates (standard normals).

pub mod cpu;

use crate::error::{Error, Result};
use crate::rng::Philox;
use crate::tensor::{DType, Tensor};

#[derive(Clone, Copy, Debug)]
pub enum Noise<'a> {
    /// No noise: a deterministic argmax, or a step with σ = 0.
    None,
    /// Drawn in the kernel from Philox: element `i` uses index `i` of the key (by convention stream =
    /// the step, substream = what the draw is for).
    Philox(Philox),
    /// Given draws with the shape of the kernel's input — uniforms in (0, 1] for sampling, standard
    /// normals for an update — so a parity test or a reference's own noise sees the same draws.
    Injected(&'a Tensor),
}

impl<'a> Noise<'a> {
    /// The injected draws, checked to be f32 with `like`'s shape (`like_what` names it in errors).
    pub fn injected(
        &self,
        op: &'static str,
        like: &Tensor,
        like_what: &str,
    ) -> Result<Option<&'a Tensor>> {
        let Noise::Injected(t) = *self else {
            return Ok(None);
        };
        t.expect_dtype(op, DType::F32)?;
        check_injected_shape(op, t.shape(), like.shape(), like_what)?;
        Ok(Some(t))
    }
}

/// Injected draws must have the shape of the input they are drawn for (both backends check this).
pub(crate) fn check_injected_shape(
    op: &'static str,
    shape: &[usize],
    like: &[usize],
    like_what: &str,
) -> Result<()> {
    if shape != like {
        return Err(Error::shape(
            op,
            format!("injected noise {shape:?} must have {like_what}'s shape {like:?}"),
        ));
    }
    Ok(())
}

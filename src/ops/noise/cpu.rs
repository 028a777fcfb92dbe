//! The CPU backend's noise sources: [`super::Noise`] with host data in place of a tensor.

use super::check_injected_shape;
use crate::error::{Error, Result};
use crate::ops::check_host_len;
use crate::rng::Philox;

/// Where a CPU kernel's random draws come from, as [`super::Noise`] for the GPU: none, drawn from
/// Philox (the same draws as the GPU kernel makes for the same key), or given as host data with its
/// shape — uniforms in (0, 1] for sampling, standard normals for an update.
#[derive(Clone, Copy, Debug)]
pub enum Noise<'a> {
    None,
    Philox(Philox),
    /// The draws and their shape, which must be the kernel input's.
    Injected(&'a [f32], &'a [usize]),
}

impl<'a> Noise<'a> {
    /// The injected draws, checked to have the shape `like` (`like_what` names it in errors) and as
    /// many values as that shape holds.
    pub fn injected(
        &self,
        op: &'static str,
        like: &[usize],
        like_what: &str,
    ) -> Result<Option<&'a [f32]>> {
        let Noise::Injected(data, shape) = *self else {
            return Ok(None);
        };
        check_injected_shape(op, shape, like, like_what)?;
        check_host_len(op, "injected noise", data, shape)?;
        Ok(Some(data))
    }
}

/// The kernels index elements (and Philox draws) with u32: refuse shapes past that, as
/// [`crate::ops::check_u32_len`] does for tensors.
pub(crate) fn check_u32_count(op: &'static str, shape: &[usize]) -> Result<()> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n.is_none_or(|n| n > u32::MAX as usize) {
        return Err(Error::shape(
            op,
            format!("{shape:?} has more than 2^32 elements"),
        ));
    }
    Ok(())
}

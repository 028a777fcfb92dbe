//! Bounds on config sizes. A downloaded config can claim anything; these limits are generous for every
//! model diffscope can run (a device's binding limit is far smaller) and keep later arithmetic — size
//! products, embedding tables, timestep tables — from overflowing or exhausting memory. A model family
//! checks each size field with [`size`] / [`number`] and gets errors that name the field for free.

use crate::error::{Error, Result};
use std::ops::RangeInclusive;

/// Hidden width, channels of one block, embedding dimension.
pub const MAX_WIDTH: usize = 1 << 14;
/// Layers, blocks per level, residual blocks.
pub const MAX_DEPTH: usize = 256;
/// Classes (labels) of a conditional model.
pub const MAX_LABELS: usize = 1 << 20;
/// Side of an image sample, length of a sequence.
pub const MAX_SPATIAL: usize = 4096;
/// Channels of a data sample (image channels, point dimensions).
pub const MAX_DATA_CHANNELS: usize = 1024;
/// Resolution levels of a UNet.
pub const MAX_LEVELS: usize = 8;
/// Training timesteps of a diffusion process (the β and ᾱ tables hold one entry each).
pub const MAX_TRAIN_TIMESTEPS: usize = 100_000;

/// The error for `field` of `file`.
pub fn field_error(file: &str, field: &str, detail: impl Into<String>) -> Error {
    Error::ConfigField {
        file: file.to_string(),
        field: field.to_string(),
        detail: detail.into(),
    }
}

/// `value` must lie in `range`.
pub fn size(file: &str, field: &str, value: usize, range: RangeInclusive<usize>) -> Result<usize> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(field_error(
            file,
            field,
            format!(
                "{value} is outside {}..={}, what diffscope accepts",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// `value` must be finite and lie in `range`.
pub fn number(file: &str, field: &str, value: f64, range: RangeInclusive<f64>) -> Result<f64> {
    if value.is_finite() && range.contains(&value) {
        Ok(value)
    } else {
        Err(field_error(
            file,
            field,
            format!(
                "{value} is outside {}..={}, what diffscope accepts",
                range.start(),
                range.end()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_field_and_bounds() {
        assert_eq!(size("c.json", "dim", 8, 1..=16).unwrap(), 8);
        let e = size("c.json", "dim", 1 << 40, 1..=MAX_WIDTH).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("c.json") && s.contains("\"dim\"") && s.contains("16384"),
            "{s}"
        );
        assert!(matches!(e, Error::ConfigField { ref field, .. } if field == "dim"));
        assert!(number("c", "eps", f64::NAN, 0.0..=1.0).is_err());
        assert!(number("c", "eps", 1e-5, 0.0..=1.0).is_ok());
    }
}

//! What "compare runs side by side" varies, as a link or a lesson writes it: `kind:v1,v2,…`. Each
//! family has its own settings to vary (`gaussian::Variation`, `pipelines::sequence::variation`);
//! this is the part they share — reading the spec and the typed list of values, and the trait the
//! app's controls take.

use crate::error::{Error, Result};

/// A setting varied over a list of values, written `kind:values`.
pub trait Varied: Sized + PartialEq {
    /// The settings that can be varied, in menu order.
    const KINDS: &'static [&'static str];
    /// What this varies (one of [`Self::KINDS`]).
    fn kind(&self) -> &'static str;
    /// The values a comparison of `kind` starts with.
    fn default_of(kind: &str) -> Result<Self>;
    /// `kind` over comma-separated values as a user types them.
    fn with_values(kind: &str, values: &str) -> Result<Self>;
    /// The values as a user reads and types them: `0, 1, 3`.
    fn values_text(&self) -> String;

    /// `kind:values`; a kind alone means its default values.
    fn parse(spec: &str) -> Result<Self> {
        match spec.split_once(':') {
            Some((kind, values)) => Self::with_values(kind.trim(), values),
            None => Self::default_of(spec.trim()),
        }
    }

    /// `kind:v1,v2,…`, which [`Self::parse`] reads back as this.
    fn spec(&self) -> String {
        format!("{}:{}", self.kind(), self.values_text().replace(' ', ""))
    }
}

/// The comma-separated `values` of a `kind`, trimmed, empty ones dropped: 1 to `most` of them.
pub fn values(kind: &str, values: &str, most: usize) -> Result<Vec<String>> {
    let items: Vec<String> = values
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if items.is_empty() || items.len() > most {
        return Err(Error::Invalid(format!(
            "compare {kind}: give 1 to {most} values separated by commas (got {})",
            items.len()
        )));
    }
    Ok(items)
}

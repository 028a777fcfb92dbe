//! A JSON config read field by field: each typed read of a field names the field and the file in
//! its error, so every config (a UNet's, a VAE's, a scheduler's) says what is wrong the same way.

use crate::error::{Error, Result};

/// A config file's top-level object, or an error naming the file.
pub fn object(json: &str, file: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    let bad = |detail: String| Error::Config {
        file: file.to_string(),
        detail,
    };
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| bad(format!("not valid JSON ({e})")))?;
    match v {
        serde_json::Value::Object(o) => Ok(o),
        _ => Err(bad("expected a JSON object".into())),
    }
}

/// One field of a config file.
pub struct Field<'a> {
    pub file: &'a str,
    pub key: &'a str,
    pub val: &'a serde_json::Value,
}

impl Field<'_> {
    /// An error about this file.
    pub fn error(&self, detail: String) -> Error {
        Error::Config {
            file: self.file.to_string(),
            detail,
        }
    }

    pub fn int(&self) -> Result<usize> {
        self.val
            .as_u64()
            .and_then(|u| usize::try_from(u).ok())
            .ok_or_else(|| {
                self.error(format!(
                    "field \"{}\" must be a non-negative integer, got {}",
                    self.key, self.val
                ))
            })
    }

    /// An integer, or `None` for `null`.
    pub fn opt_int(&self) -> Result<Option<usize>> {
        if self.val.is_null() {
            Ok(None)
        } else {
            self.int().map(Some)
        }
    }

    pub fn num(&self) -> Result<f64> {
        self.val.as_f64().ok_or_else(|| {
            self.error(format!(
                "field \"{}\" must be a number, got {}",
                self.key, self.val
            ))
        })
    }

    pub fn boolean(&self) -> Result<bool> {
        self.val.as_bool().ok_or_else(|| {
            self.error(format!(
                "field \"{}\" must be true or false, got {}",
                self.key, self.val
            ))
        })
    }

    pub fn string(&self) -> Result<&str> {
        self.val.as_str().ok_or_else(|| {
            self.error(format!(
                "field \"{}\" must be a string, got {}",
                self.key, self.val
            ))
        })
    }

    pub fn strings(&self) -> Result<Vec<String>> {
        self.val
            .as_array()
            .and_then(|a| a.iter().map(|s| s.as_str().map(String::from)).collect())
            .ok_or_else(|| self.error(format!("field \"{}\" must be a list of strings", self.key)))
    }

    pub fn ints(&self) -> Result<Vec<usize>> {
        self.val
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|x| x.as_u64().and_then(|u| usize::try_from(u).ok()))
                    .collect()
            })
            .ok_or_else(|| self.error(format!("{} must be a list of integers", self.key)))
    }
}

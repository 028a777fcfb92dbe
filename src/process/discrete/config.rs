//! The settings of a discrete process as a model folder's `process.json` stores them.

/// The stationary distribution of a D3PM.
#[derive(Clone, Debug, PartialEq)]
pub enum DiscretePrior {
    Uniform,
    /// Everything is absorbed into this class (moco's `DiscreteMaskedPrior`; inclusive: K − 1).
    Absorbing(usize),
    /// Any π (moco's `DiscreteCustomPrior`).
    Custom(Vec<f32>),
}

/// The settings of a discrete process, as stored in a model's `process.json`.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// "d3pm" or "multinomial".
    pub process: String,
    pub num_classes: usize,
    pub seq_len: usize,
    pub nsteps: usize,
    pub schedule: ScheduleConfig,
    /// D3PM: "uniform", "absorbing" or "custom".
    #[serde(default)]
    pub prior: Option<String>,
    /// D3PM custom prior π.
    #[serde(default)]
    pub prior_dist: Option<Vec<f32>>,
    #[serde(default)]
    pub last_time_idx: usize,
    #[serde(default)]
    pub mask_token: Option<usize>,
    /// The class that pads short sequences (words), if any.
    #[serde(default)]
    pub pad_token: Option<usize>,
    /// One character per class id, for text and FASTA output.
    pub vocab: String,
}

#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// "cosine" (moco), "linear" (moco) or "hoogeboom_cosine_sqrt".
    pub kind: String,
    #[serde(default)]
    pub nu: Option<f32>,
    #[serde(default)]
    pub s: Option<f64>,
    #[serde(default)]
    pub beta_start: Option<f64>,
    #[serde(default)]
    pub beta_end: Option<f64>,
}

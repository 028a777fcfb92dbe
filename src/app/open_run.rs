//! The open run: whichever model family is open, the app holds one value that offers the same few
//! things — its controls, a non-blocking step, a central view drawn into any `Ui`, its exports, its
//! part of the status, and a resume on a new device. The app (and its one timeline) never reaches
//! into a family's state: it only calls [`OpenRun`]. Two runs are two such values, which is what a
//! side-by-side comparison needs.

use super::export::Export;
use super::{gaussian, graph, sequence};
use crate::pipelines::zoo::{self, Family};
use crate::tensor::Device;

/// How far a run is, for the timeline, the speed cap and the status.
#[derive(Clone, Copy)]
pub struct Progress {
    /// Steps recorded on the host (x_T is step 0).
    pub recorded: usize,
    /// Steps started: recorded plus the one in flight.
    pub launched: usize,
    /// Steps the finished run will have recorded (the sampling steps + 1).
    pub total: usize,
    /// When the run (or its latest fork) started, for its steps/s.
    pub started: web_time::Instant,
}

impl Progress {
    pub fn done(&self) -> bool {
        self.recorded >= self.total
    }
}

/// The spread of the newest state, for the status JSON (a blank or collapsed picture shows up here).
#[derive(Clone, Copy)]
pub struct LastState {
    pub mean: f64,
    pub std: f64,
    pub finite: bool,
}

impl Default for LastState {
    fn default() -> Self {
        LastState {
            mean: 0.0,
            std: 0.0,
            finite: true,
        }
    }
}

/// A family's own part of the status JSON.
#[derive(Default)]
pub struct RunStatus {
    /// The newest state's spread, where the family reports it (Gaussian runs).
    pub last: LastState,
    /// The sampling temperature, where the family has one (sequences).
    pub temperature: Option<f32>,
    /// The un-masking order's name, where the family has one (absorbing sequence runs).
    pub unmask: Option<&'static str>,
    /// Where padding may go (`suffix` or `free`), where the model pads (words).
    pub padding: Option<&'static str>,
    /// The reverse sampler's name, where the family has a choice (Gaussian runs).
    pub sampler: Option<&'static str>,
    /// Runs compared beside the open one (Gaussian runs: one entry per sampler), or null.
    pub compare: serde_json::Value,
    /// The user's own input and where the run starts from it, or null.
    pub input: serde_json::Value,
    /// The score field shown over a 2-D model's view (its t, and how much of it points inwards).
    pub score: serde_json::Value,
    /// A latent model's decoded picture (which latent, the step it shows, its shape), or null.
    pub decoded: serde_json::Value,
    /// The forward explorer's per-step ELBO terms for its example, or null.
    pub loss_curve: serde_json::Value,
    /// How undecided the network is at the viewed step, in bits, where the family reports it
    /// (graphs: the mean entropy of p_θ(edge) over node pairs).
    pub entropy: Option<f32>,
}

/// Settings that outlive the open run: the next model opened starts from them (the seed, the
/// Gaussian η, each discrete family's batch size and view switch).
#[derive(Clone)]
pub struct Carried {
    pub seed: u64,
    pub eta: f32,
    pub graphs: usize,
    pub graph_predicted: bool,
    pub sequences: usize,
    pub seq_show_x0: bool,
}

impl Default for Carried {
    fn default() -> Self {
        Carried {
            seed: 0,
            eta: 0.0,
            graphs: 4,
            graph_predicted: true,
            sequences: 8,
            seq_show_x0: true,
        }
    }
}

/// What the app needs from the open run, whatever its family. Nothing here touches the app's own
/// state: errors come back as values, and the viewed step is passed in.
pub trait OpenRun {
    /// The open model's name (the gallery marks it; the status reports it).
    fn model_name(&self) -> &str;
    fn family(&self) -> Family;
    /// Write the settings the next opened model starts from.
    fn remember(&self, carried: &mut Carried);
    /// Take the settings a link asks for, where they fit this model (before the first run starts).
    fn apply_link(&mut self, _link: &super::Link) {}
    /// The settings the current run started from, as the link that starts it again: the model and
    /// every setting of the family that changes its frames (what [`OpenRun::apply_link`] reads).
    fn link(&self) -> super::Link;

    /// Start a new trajectory from x_T with the current settings (the old one stays on failure).
    fn restart(&mut self) -> crate::Result<()>;
    /// The family's settings in the side panel; true when one changed and the run should restart.
    fn controls(&mut self, ui: &mut egui::Ui) -> bool;
    /// Under the controls: what the process does, and its schedule at step `viewed`.
    fn process_notes(&mut self, ui: &mut egui::Ui, viewed: usize);
    /// Collect what landed and, if `step`, record and submit the next step. Never waits.
    fn pump(&mut self, step: bool) -> crate::Result<()>;
    /// The forward explorer's own work (collect a draw, ask for the next). Never waits.
    fn pump_forward(&mut self) -> crate::Result<()>;
    /// Per-frame work for the view of step `viewed` (the graph layout relaxes a little).
    fn animate(&mut self, _viewed: usize) {}
    /// Frames must keep coming (work in flight, or more steps to play).
    fn wants_repaint(&self, playing: bool) -> bool;
    /// How far the run is; `None` if no trajectory has started.
    fn progress(&self) -> Option<Progress>;
    /// Continue from step `viewed` with the next seed. `Ok(false)`: nothing recorded to fork from.
    fn fork(&mut self, viewed: usize) -> crate::Result<bool>;

    /// The run's view of step `viewed` (or the forward explorer), drawn into `ui`.
    fn central(&mut self, ui: &mut egui::Ui, viewed: usize);
    /// The forward explorer's switch and its sliders, under the timeline.
    fn forward_row(&mut self, ui: &mut egui::Ui);
    /// Show the forward explorer at timestep `t` (brought into the process's range), or the
    /// reverse run (`None`): what a lesson step asks for.
    fn show_forward(&mut self, t: Option<usize>);
    /// The forward explorer's timestep while it is shown.
    fn forward_shown(&self) -> Option<usize>;
    /// The user's own input the run started from (data units, one sample), if it did.
    fn own_input(&self) -> Option<Vec<f32>> {
        None
    }
    /// The family's export buttons; the export made if one was clicked.
    fn export_buttons(&mut self, ui: &mut egui::Ui, viewed: usize)
        -> Option<crate::Result<Export>>;
    fn status(&self) -> RunStatus;
    /// The state after step `k` as recorded on the host (token and class ids as numbers; a graph's
    /// node then edge classes), or `None` if it is not (or no longer) kept.
    fn recorded_state(&self, k: usize) -> Option<Vec<f32>>;
    /// Reload the model on `device` and carry on from the newest host copy, exactly as the run would
    /// have gone on. Nothing changes unless everything succeeds (a failed recovery can be retried).
    fn resume_on(&mut self, device: &Device) -> crate::Result<()>;
}

/// A shipped model of any family, opened with `carried` settings (no trajectory started yet).
pub fn open_shipped(
    device: &Device,
    name: &str,
    carried: &Carried,
) -> crate::Result<Box<dyn OpenRun>> {
    Ok(match zoo::find(name).map(|m| m.family) {
        Some(Family::Graph) => Box::new(graph::OpenGraphs::open(device, name, carried)?),
        Some(Family::Sequence) => Box::new(sequence::OpenSequences::open(device, name, carried)?),
        // An unknown name reaches the Gaussian loader, whose error lists the models.
        _ => Box::new(gaussian::OpenGaussian::open_shipped(device, name, carried)?),
    })
}

/// The seed and "new seed" row every family shows; true when the seed changed.
pub fn seed_row(ui: &mut egui::Ui, seed: &mut u64) -> bool {
    let mut changed = false;
    let r = ui.horizontal(|ui| {
        let name = ui.label("seed").id;
        changed |= ui
            .add(egui::DragValue::new(seed))
            .labelled_by(name)
            .changed();
        if ui.button("new seed").clicked() {
            *seed = seed.wrapping_add(1);
            changed = true;
        }
    });
    super::highlight::mark(ui, "seed", r.response);
    changed
}

/// The two view switches under the timeline that every family with an own-input editor shows: "your
/// own input" and the forward explorer (`forward_label`), which exclude each other. `input_help` is
/// the own-input switch's hover text.
pub fn view_switches(
    ui: &mut egui::Ui,
    editing: &mut bool,
    forward_shown: &mut bool,
    forward_label: &str,
    input_help: &str,
) {
    if ui
        .checkbox(editing, "your own input")
        .on_hover_text(input_help)
        .changed()
        && *editing
    {
        *forward_shown = false;
    }
    let r = ui.checkbox(forward_shown, forward_label);
    if r.changed() && *forward_shown {
        *editing = false;
    }
    super::highlight::mark(ui, "forward", r);
}

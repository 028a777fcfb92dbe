//! Your own input for a Gaussian model: draw an image (mouse or touch) or place 2-D points, see it
//! noised to any t, and denoise it from there — SDEdit: the reverse run starts at the first of its
//! steps whose timestep is at most t, from q(x_t | your input), and the steps before it show your input
//! going the other way, through the forward process (so scrubbing back dissolves it into noise).

use super::super::images;
use crate::pipelines::gaussian::GaussianModel;
use crate::rng::{Philox, Substream};
use egui::{Color32, Pos2, Sense, Stroke, TextureHandle, Vec2};

/// Inpainting: which half of the drawing the run keeps (the model draws the rest), or none (SDEdit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Keep {
    #[default]
    Nothing,
    Top,
    Bottom,
    Left,
    Right,
}

impl Keep {
    const ALL: [Keep; 5] = [
        Keep::Nothing,
        Keep::Top,
        Keep::Bottom,
        Keep::Left,
        Keep::Right,
    ];

    fn label(self) -> &'static str {
        match self {
            Keep::Nothing => "nothing (SDEdit)",
            Keep::Top => "the top half",
            Keep::Bottom => "the bottom half",
            Keep::Left => "the left half",
            Keep::Right => "the right half",
        }
    }

    /// Whether pixel (y, x) of an h × w image is kept.
    fn keeps(self, y: usize, x: usize, h: usize, w: usize) -> bool {
        match self {
            Keep::Nothing => false,
            Keep::Top => y < h / 2,
            Keep::Bottom => y >= h / 2,
            Keep::Left => x < w / 2,
            Keep::Right => x >= w / 2,
        }
    }

    /// The mask of one `[c, h, w]` sample: 1 where kept (`None` for no inpainting).
    pub fn mask(self, [c, h, w]: [usize; 3]) -> Option<Vec<f32>> {
        (self != Keep::Nothing).then(|| {
            (0..c * h * w)
                .map(|i| self.keeps(i / w % h, i % w, h, w) as u8 as f32)
                .collect()
        })
    }
}

/// Brush radius in image pixels (the stroke is solid within it and fades over one more pixel).
const BRUSH: f32 = 1.1;

pub(super) struct OwnInput {
    /// The editor is shown instead of the reverse run.
    pub editing: bool,
    /// Images: `[C·H·W]` in data units; points: `[N·2]`.
    pub values: Vec<f32>,
    /// Denoise from this timestep.
    pub t0: usize,
    /// The reverse run starts from the input (set by "Denoise", cleared by "start from noise").
    pub active: bool,
    /// Ask the app for a restart (it comes back through `controls`).
    pub restart: bool,
    /// Where the pointer was on the previous frame of a stroke, in image pixels.
    last: Option<Pos2>,
    /// The canvas and the noised preview.
    textures: [Option<TextureHandle>; 2],
    /// The noised preview is of these values at this t.
    preview_of: Option<(usize, u64, usize)>,
    /// Points placed so far (each click adds a small cluster; counts the clusters for their jitter).
    clicks: u32,
    /// Images: inpaint, keeping this part of the drawing at every step.
    pub keep: Keep,
}

impl OwnInput {
    pub fn new(m: &GaussianModel) -> OwnInput {
        let mut o = OwnInput {
            editing: false,
            values: Vec::new(),
            t0: m.process.train_timesteps() / 2,
            active: false,
            restart: false,
            last: None,
            textures: [None, None],
            preview_of: None,
            clicks: 0,
            keep: Keep::Nothing,
        };
        o.clear(m);
        o
    }

    /// The part kept when images are inpainted, in words.
    pub fn keep_label(&self) -> Option<&'static str> {
        (self.keep != Keep::Nothing).then(|| self.keep.label())
    }

    /// The inpainting mask of one sample, when images are inpainted.
    pub fn keep_mask(&self, m: &GaussianModel) -> Option<Vec<f32>> {
        Self::images(m).and_then(|shape| self.keep.mask(shape))
    }

    fn images(m: &GaussianModel) -> Option<[usize; 3]> {
        match m.denoiser.sample_shape() {
            &[c, h, w] => Some([c, h, w]),
            _ => None,
        }
    }

    /// A blank canvas (the data range's low end), or no points.
    pub fn clear(&mut self, m: &GaussianModel) {
        self.values = match Self::images(m) {
            Some([c, h, w]) => vec![m.data_range[0]; c * h * w],
            None => Vec::new(),
        };
        self.preview_of = None;
        self.clicks = 0;
    }

    /// The input as a batch of `n` samples: the drawing repeated (each copy gets its own noise),
    /// or the placed points (then `n` is their number).
    pub fn batch(&self, m: &GaussianModel, n: usize) -> (Vec<f32>, usize) {
        match Self::images(m) {
            Some(_) => (self.values.repeat(n), n),
            None => (self.values.clone(), self.values.len() / 2),
        }
    }

    /// Whether there is anything to denoise.
    pub fn is_empty(&self, m: &GaussianModel) -> bool {
        match Self::images(m) {
            Some(_) => self.values.iter().all(|&v| v <= m.data_range[0]),
            None => self.values.len() < 2,
        }
    }

    /// The editor: the canvas (or the point field), the input noised to t0, and the buttons.
    pub fn ui(&mut self, ui: &mut egui::Ui, m: &GaussianModel, example: Option<&[f32]>, seed: u64) {
        ui.label(
            "Your own input: draw (drag with the mouse or a finger), then choose t and denoise. The \
             reverse run starts from your input noised to t — SDEdit: a little noise keeps your \
             shape and lets the model clean it up; a lot lets it redraw freely.",
        );
        ui.horizontal(|ui| {
            if ui.button("clear").clicked() {
                self.clear(m);
            }
            if let Some(ex) = example {
                if ui
                    .button("start from an example")
                    .on_hover_text("the shipped example for the chosen label")
                    .clicked()
                {
                    let per = self.per_sample(m);
                    self.values = ex[..per.min(ex.len())].to_vec();
                    self.preview_of = None;
                }
            }
            let tt = m.process.train_timesteps();
            ui.add(egui::Slider::new(&mut self.t0, 1..=tt - 1).text("denoise from t"));
            let a = m.process.alphas_cumprod[self.t0.min(tt - 1)];
            ui.weak(format!("ᾱ_t = {a:.3}"));
            let empty = self.is_empty(m);
            if ui
                .add_enabled(
                    !empty,
                    egui::Button::new(format!("Denoise from t = {}", self.t0)),
                )
                .on_disabled_hover_text("draw something first")
                .clicked()
            {
                self.active = true;
                self.editing = false;
                self.restart = true;
            }
        });
        if Self::images(m).is_some() {
            ui.horizontal(|ui| {
                egui::ComboBox::from_label("inpaint: keep")
                    .selected_text(self.keep.label())
                    .show_ui(ui, |ui| {
                        for k in Keep::ALL {
                            ui.selectable_value(&mut self.keep, k, k.label());
                        }
                    })
                    .response
                    .on_hover_text(
                        "inpainting: at every step the kept part is replaced by your drawing noised \
                         to that step's t, so the model only draws the rest — try the top half of a \
                         digit denoised from t = 999",
                    );
            });
        }
        let side = (ui.available_width() / 2.0 - 12.0).clamp(120.0, 360.0);
        ui.horizontal_top(|ui| match Self::images(m) {
            Some(shape) => {
                ui.vertical(|ui| {
                    ui.label("your drawing");
                    self.canvas(ui, m, shape, side);
                });
                ui.vertical(|ui| {
                    ui.label(format!("q(x_t | your drawing) at t = {}", self.t0));
                    self.preview(ui, m, shape, side, seed);
                });
            }
            None => {
                ui.vertical(|ui| {
                    ui.label("click or drag to place points");
                    self.point_field(ui, m, side);
                });
                ui.vertical(|ui| {
                    ui.label(format!("q(x_t | your points) at t = {}", self.t0));
                    let noised = self.noised(m, self.t0, seed);
                    with_side(ui, side, |ui| {
                        super::super::points::draw(ui, &[&noised[..]], None, m.data_range);
                    });
                });
            }
        });
    }

    fn per_sample(&self, m: &GaussianModel) -> usize {
        m.denoiser.sample_shape().iter().product()
    }

    /// The input noised to `t` on the host with the forward explorer's Philox stream (the same ε the
    /// explorer draws, to ~1e-6), for the preview and for the steps before the run's first.
    pub fn noised(&self, m: &GaussianModel, t: usize, seed: u64) -> Vec<f32> {
        forward_on_host(&self.values, m.process.alphas_cumprod[t], seed)
    }

    fn canvas(&mut self, ui: &mut egui::Ui, m: &GaussianModel, [c, h, w]: [usize; 3], side: f32) {
        let img = images::grid(
            &self.values,
            [1, c, h, w],
            1,
            images::Scale::Range(m.data_range),
        );
        let tex = match &mut self.textures[0] {
            Some(t) => {
                t.set(img, egui::TextureOptions::NEAREST);
                t.clone()
            }
            None => {
                let t = ui
                    .ctx()
                    .load_texture("own-input", img, egui::TextureOptions::NEAREST);
                self.textures[0] = Some(t.clone());
                t
            }
        };
        let r = ui.add(egui::Image::new((tex.id(), Vec2::splat(side))).sense(Sense::drag()));
        r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Canvas, true, "drawing canvas"));
        ui.painter().rect_stroke(
            r.rect,
            2.0,
            Stroke::new(1.0, Color32::from_gray(120)),
            egui::StrokeKind::Outside,
        );
        // Inpainting: shade the part the model will draw.
        if self.keep != Keep::Nothing {
            let (a, b) = (r.rect.min, r.rect.max);
            let mid = r.rect.center();
            let free = match self.keep {
                Keep::Top => egui::Rect::from_min_max(Pos2::new(a.x, mid.y), b),
                Keep::Bottom => egui::Rect::from_min_max(a, Pos2::new(b.x, mid.y)),
                Keep::Left => egui::Rect::from_min_max(Pos2::new(mid.x, a.y), b),
                _ => egui::Rect::from_min_max(a, Pos2::new(mid.x, b.y)),
            };
            ui.painter()
                .rect_filled(free, 0.0, Color32::from_rgba_unmultiplied(40, 90, 200, 70));
        }
        // The grid image has a 1-pixel border: pixel (x, y) spans [x + 1, x + 2) of w + 2.
        let to_px = |p: Pos2| {
            let u = (p - r.rect.min) / r.rect.size();
            Pos2::new(u.x * (w + 2) as f32 - 1.0, u.y * (h + 2) as f32 - 1.0)
        };
        let down = r.is_pointer_button_down_on() || r.dragged();
        match (down, r.interact_pointer_pos()) {
            (true, Some(p)) => {
                let p = to_px(p);
                let from = self.last.unwrap_or(p);
                paint_stroke(&mut self.values, [c, h, w], m.data_range, from, p, BRUSH);
                self.last = Some(p);
                self.preview_of = None;
            }
            _ => self.last = None,
        }
    }

    fn preview(
        &mut self,
        ui: &mut egui::Ui,
        m: &GaussianModel,
        [c, h, w]: [usize; 3],
        side: f32,
        seed: u64,
    ) {
        let key = (self.t0, seed, self.values_hash());
        if self.preview_of != Some(key) || self.textures[1].is_none() {
            let noised = self.noised(m, self.t0, seed);
            let img = images::grid(&noised, [1, c, h, w], 1, images::Scale::Range(m.data_range));
            match &mut self.textures[1] {
                Some(t) => t.set(img, egui::TextureOptions::NEAREST),
                None => {
                    self.textures[1] = Some(ui.ctx().load_texture(
                        "own-input-noised",
                        img,
                        egui::TextureOptions::NEAREST,
                    ))
                }
            }
            self.preview_of = Some(key);
        }
        if let Some(t) = &self.textures[1] {
            ui.image((t.id(), Vec2::splat(side)));
        }
    }

    fn values_hash(&self) -> usize {
        self.values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.to_bits() as usize).wrapping_mul(i + 1))
            .fold(self.values.len(), usize::wrapping_add)
    }

    fn point_field(&mut self, ui: &mut egui::Ui, m: &GaussianModel, side: f32) {
        let (r, painter) = ui.allocate_painter(Vec2::splat(side), Sense::click_and_drag());
        let rect = r.rect;
        painter.rect_filled(rect, 4.0, Color32::from_gray(250));
        let [lo, hi] = crate::picture::points_frame(m.data_range);
        let to_data = |p: Pos2| {
            [
                lo + (p.x - rect.left()) / rect.width() * (hi - lo),
                lo + (rect.bottom() - p.y) / rect.height() * (hi - lo),
            ]
        };
        let to_screen = |x: f32, y: f32| {
            Pos2::new(
                rect.left() + (x - lo) / (hi - lo) * rect.width(),
                rect.bottom() - (y - lo) / (hi - lo) * rect.height(),
            )
        };
        let placing = r.clicked() || r.dragged();
        if let (true, Some(p)) = (placing, r.interact_pointer_pos()) {
            // A small cluster per click (a few per frame while dragging), jittered by a counter so
            // the same clicks give the same points.
            let jitter = Philox::new(self.clicks as u64, 0, Substream::Other).normals(16);
            let [x, y] = to_data(p);
            for j in jitter.chunks_exact(2) {
                self.values.extend([x + 0.02 * j[0], y + 0.02 * j[1]]);
            }
            self.clicks += 1;
        }
        for p in self.values.chunks_exact(2) {
            painter.circle_filled(to_screen(p[0], p[1]), 1.8, Color32::from_rgb(31, 119, 180));
        }
        ui.weak(format!("{} points", self.values.len() / 2));
    }
}

/// Draw into `ui` within a square of `side` pixels.
fn with_side(ui: &mut egui::Ui, side: f32, add: impl FnOnce(&mut egui::Ui)) {
    ui.allocate_ui(Vec2::splat(side), add);
}

/// √ᾱ·x0 + √(1−ᾱ)·ε with ε from Philox (`seed`, stream 0, `Forward`): the draw the forward
/// explorer makes on the device.
pub(super) fn forward_on_host(x0: &[f32], alpha_bar: f32, seed: u64) -> Vec<f32> {
    let eps = Philox::new(seed, 0, Substream::Forward).normals(x0.len());
    let (a, b) = (alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt());
    x0.iter().zip(eps).map(|(&x, e)| a * x + b * e).collect()
}

/// Paint a stroke from `from` to `to` (image pixel coordinates, pixel (x, y) centred at x + 0.5,
/// y + 0.5) in ink (the data range's high end) on every channel: solid within `radius`, fading over
/// one more pixel; ink only ever adds.
pub(super) fn paint_stroke(
    values: &mut [f32],
    [c, h, w]: [usize; 3],
    range: [f32; 2],
    from: Pos2,
    to: Pos2,
    radius: f32,
) {
    let steps = ((to - from).length() / 0.4).ceil().max(1.0) as usize;
    for s in 0..=steps {
        let p = from + (to - from) * (s as f32 / steps as f32);
        let (x0, x1) = ((p.x - radius - 1.0).floor(), (p.x + radius + 1.0).ceil());
        let (y0, y1) = ((p.y - radius - 1.0).floor(), (p.y + radius + 1.0).ceil());
        for y in (y0.max(0.0) as usize)..(y1.max(0.0) as usize).min(h) {
            for x in (x0.max(0.0) as usize)..(x1.max(0.0) as usize).min(w) {
                let d = Vec2::new(x as f32 + 0.5 - p.x, y as f32 + 0.5 - p.y).length();
                let ink = (radius + 1.0 - d).clamp(0.0, 1.0);
                for ch in 0..c {
                    let v = &mut values[ch * h * w + y * w + x];
                    let u = ((*v - range[0]) / (range[1] - range[0])).max(ink);
                    *v = range[0] + u * (range[1] - range[0]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stroke_inks_the_pixels_along_it_and_nothing_far_away() {
        let (h, w) = (28, 28);
        let mut v = vec![-1.0; 2 * h * w];
        let from = Pos2::new(14.5, 4.5);
        let to = Pos2::new(14.5, 23.5);
        paint_stroke(&mut v, [2, h, w], [-1.0, 1.0], from, to, BRUSH);
        for ch in 0..2 {
            let at = |x: usize, y: usize| v[ch * h * w + y * w + x];
            for y in 4..24 {
                assert_eq!(at(14, y), 1.0, "on the stroke at row {y}");
            }
            assert_eq!(at(3, 14), -1.0);
            assert_eq!(at(14, 27), -1.0);
            assert!(at(16, 14) > -1.0 && at(16, 14) < 1.0, "the edge fades");
        }
        // Ink only adds: painting again does not lighten anything.
        let before = v.clone();
        paint_stroke(&mut v, [2, h, w], [-1.0, 1.0], from, from, 0.2);
        assert!(v.iter().zip(&before).all(|(a, b)| a >= b));
        // A stroke off the canvas is clipped, not a panic.
        paint_stroke(
            &mut v,
            [2, h, w],
            [-1.0, 1.0],
            Pos2::new(-9.0, -9.0),
            Pos2::new(40.0, 50.0),
            3.0,
        );
    }

    #[test]
    fn the_host_forward_draw_is_the_process_formula() {
        let x0 = vec![0.5; 1000];
        let e = Philox::new(3, 0, Substream::Forward).normals(1000);
        let got = forward_on_host(&x0, 0.36, 3);
        for (g, e) in got.iter().zip(e) {
            assert!((g - (0.6 * 0.5 + 0.8 * e)).abs() < 1e-6);
        }
        assert_eq!(forward_on_host(&x0, 1.0, 3), x0);
    }
}

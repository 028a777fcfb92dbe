//! The app on any screen: below [`NARROW`] points of width (a phone, a narrow window) the side panel
//! becomes a drawer behind a "Controls" button at the top, closed until asked for, so the run's view
//! gets the screen; on a touch screen (or a narrow one) hit targets grow to finger size. The canvas
//! follows the device pixel ratio through eframe (`pixels_per_point`).

use egui::vec2;

/// Narrower than this (in points) the side panel is a drawer.
pub const NARROW: f32 = 760.0;

/// The layout's state: whether the drawer is open, and the hit-target size last applied.
#[derive(Default)]
pub struct Layout {
    pub drawer_open: bool,
    /// Large hit targets are applied (touch or narrow).
    large_targets: bool,
    /// Narrow at the last frame (the drawer closes when the screen becomes narrow).
    was_narrow: Option<bool>,
    /// The run's view's width last frame, in points (status: the drawer covers it, not shrinks it).
    pub view_width: f32,
}

impl Layout {
    /// Per frame, before the panels: whether the screen is narrow now; hit targets follow.
    pub fn update(&mut self, ctx: &egui::Context) -> bool {
        let narrow = ctx.content_rect().width() < NARROW;
        if self.was_narrow != Some(narrow) {
            // Becoming narrow closes the drawer (the view comes first).
            self.drawer_open = !narrow;
            self.was_narrow = Some(narrow);
        }
        if !narrow {
            // A wide screen always shows the panel (it has no button to bring it back).
            self.drawer_open = true;
        }
        let large = narrow || ctx.input(|i| i.has_touch_screen());
        if large != self.large_targets {
            self.large_targets = large;
            ctx.all_styles_mut(|s| {
                // egui's defaults are 18 points tall; a fingertip needs about 30 (≈ 7 mm).
                s.spacing.interact_size.y = if large { 30.0 } else { 18.0 };
                s.spacing.button_padding = if large {
                    vec2(10.0, 6.0)
                } else {
                    vec2(4.0, 1.0)
                };
                s.spacing.item_spacing = if large {
                    vec2(8.0, 6.0)
                } else {
                    vec2(8.0, 3.0)
                };
            });
        }
        narrow
    }

    /// The bar at the top of a narrow screen: the drawer's button.
    pub fn drawer_bar(&mut self, ui: &mut egui::Ui, model: Option<&str>) {
        ui.horizontal(|ui| {
            let label = if self.drawer_open {
                "Hide controls"
            } else {
                "Controls"
            };
            if ui.button(label).clicked() {
                self.drawer_open = !self.drawer_open;
            }
            if let Some(m) = model {
                ui.label(m);
            }
        });
    }

    pub fn status(&self, narrow: bool, ctx: &egui::Context) -> serde_json::Value {
        serde_json::json!({
            "narrow": narrow,
            "drawer_open": self.drawer_open,
            "large_targets": self.large_targets,
            "view_width": self.view_width,
            "pixels_per_point": ctx.pixels_per_point(),
        })
    }
}

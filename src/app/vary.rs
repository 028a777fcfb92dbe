//! What compared runs differ in, as the side panel chooses it: a menu of the family's settings and
//! the typed list of values (`process::varied::Varied`), shared by the Gaussian and sequence
//! comparisons.

use crate::process::varied::Varied;

/// The setting chosen, its values as typed, and why the last typed values were not taken.
pub struct VaryChoice<V: Varied> {
    pub varied: V,
    typed: String,
    typed_error: Option<String>,
}

impl<V: Varied> VaryChoice<V> {
    pub fn new(varied: V) -> VaryChoice<V> {
        VaryChoice {
            typed: varied.values_text(),
            varied,
            typed_error: None,
        }
    }

    /// "runs differ in" and the kinds `offered` (each starts at its default values); true when the
    /// kind changed.
    pub fn kind_menu(
        &mut self,
        ui: &mut egui::Ui,
        id: &str,
        offered: impl Fn(&str) -> bool,
    ) -> bool {
        let kind = self.varied.kind();
        let mut picked = None;
        ui.horizontal(|ui| {
            ui.label("runs differ in");
            egui::ComboBox::from_id_salt(id)
                .selected_text(kind)
                .show_ui(ui, |ui| {
                    for &k in V::KINDS.iter().filter(|k| offered(k)) {
                        if ui.selectable_label(k == kind, k).clicked() && k != kind {
                            picked = V::default_of(k).ok();
                        }
                    }
                });
        });
        match picked {
            Some(v) => {
                *self = VaryChoice::new(v);
                true
            }
            None => false,
        }
    }

    /// The values, comma-separated; taken when the field loses focus (Enter), or said why not.
    /// True when they changed.
    pub fn values_field(&mut self, ui: &mut egui::Ui) -> bool {
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut self.typed)
                    .hint_text("values, separated by commas"),
            )
            .on_hover_text("one run per value (Enter to start them)");
        let mut changed = false;
        if r.lost_focus() {
            match V::with_values(self.varied.kind(), &self.typed) {
                Ok(v) => {
                    self.typed_error = None;
                    changed = v != self.varied;
                    self.varied = v;
                }
                Err(e) => self.typed_error = Some(e.to_string()),
            }
        }
        if let Some(e) = &self.typed_error {
            ui.colored_label(egui::Color32::YELLOW, e);
        }
        changed
    }
}

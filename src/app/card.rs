//! Model cards in the app: what a card suggests for opening its model (its `"app"` object), and the
//! card in brief for the gallery — parsed once per opened model, not once per frame.

/// What a model card suggests for opening the model in the app (its `"app"` object), if anything.
pub fn card_app(card: &str) -> Option<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_str(card).ok()?;
    Some(v.get_mut("app")?.take())
}

/// A shipped model's card in a few lines: its size and training, its data, and what it was measured
/// to do (the card's `status`, where it has one). None if the card says none of these.
fn card_about(card: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(card).ok()?;
    let mut lines = Vec::new();
    let mut size = Vec::new();
    if let Some(p) = v["parameters"].as_u64() {
        size.push(format!("{:.2} M parameters", p as f64 / 1e6));
    }
    if let Some(s) = v["training"]["steps"].as_u64() {
        size.push(format!("{s} training steps"));
    }
    if !size.is_empty() {
        lines.push(size.join(", "));
    }
    for key in ["data", "status"] {
        if let Some(t) = v[key].as_str() {
            lines.push(t.to_string());
        }
    }
    (!lines.is_empty()).then(|| lines.join("\n\n"))
}

/// `text` with each character the UI's font cannot draw replaced — arrows and relations by ASCII,
/// anything else by '?' — so a card written for people shows no tofu boxes.
fn drawable(ui: &egui::Ui, text: &str, font: &egui::FontId) -> String {
    ui.ctx().fonts_mut(|f| {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c.is_control() || f.has_glyph(font, c) {
                out.push(c);
                continue;
            }
            out.push_str(match c {
                '→' => "->",
                '≤' => "<=",
                '≥' => ">=",
                '≈' => "~",
                '−' | '–' | '—' => "-",
                '…' => "...",
                _ => "?",
            });
        }
        out
    })
}

/// The open model's card in brief, ready to draw, and the model it belongs to.
#[derive(Default)]
pub struct About {
    shown_for: Option<(String, Option<String>)>,
}

impl About {
    /// "about this model" for the shipped model `name` (nothing for a model without a card).
    pub fn show(&mut self, ui: &mut egui::Ui, name: &str) {
        if self.shown_for.as_ref().map(|(n, _)| n.as_str()) != Some(name) {
            let font = egui::TextStyle::Small.resolve(ui.style());
            let text = crate::pipelines::zoo::find(name)
                .and_then(|s| card_about(s.card))
                .map(|t| drawable(ui, &t, &font));
            self.shown_for = Some((name.to_string(), text));
        }
        if let Some((_, Some(about))) = &self.shown_for {
            egui::CollapsingHeader::new("about this model").show(ui, |ui| {
                ui.label(egui::RichText::new(about.as_str()).small());
            });
        }
    }
}

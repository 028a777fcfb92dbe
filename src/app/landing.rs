//! The landing strip: on a first visit, above the default model's live run, a row with every
//! shipped model's thumbnail — the end of its reverse run, so the first screen shows what the models
//! make and not only noise. A click opens that model; "put away" hides the strip, and the side
//! panel's "thumbnails" button brings it back. Natively the thumbnails are embedded; the page
//! fetches each model's `thumbnail.png` on its own (a few kB each, cached like the models).

use super::download::{Download, State};
use crate::pipelines::zoo;
use egui::{ColorImage, RichText, TextureHandle, TextureOptions};

/// How tall a thumbnail is drawn, in points, where the row fits ...
const HEIGHT: f32 = 96.0;
/// ... and how small it may get so that it does (below that, the row scrolls sideways).
const MIN_HEIGHT: f32 = 56.0;

enum Thumb {
    /// Not asked for yet (the page fetches on first show).
    Idle,
    Fetching(Download),
    Shown(TextureHandle),
    /// Why there is no picture (shown as the card's text).
    Missing(String),
}

pub(super) struct Landing {
    pub shown: bool,
    thumbs: Vec<(&'static zoo::Shipped, Thumb)>,
}

impl Landing {
    pub fn new(shown: bool) -> Landing {
        Landing {
            shown,
            thumbs: zoo::MODELS.iter().map(|s| (s, Thumb::Idle)).collect(),
        }
    }

    /// Thumbnails ready to draw.
    pub fn loaded(&self) -> usize {
        self.thumbs
            .iter()
            .filter(|(_, t)| matches!(t, Thumb::Shown(_)))
            .count()
    }

    /// Fetch (web), decode and upload what has arrived. `fetch`: the page may start fetching
    /// now — not before the open run's first step (the live run before the pictures of the
    /// others).
    fn load(&mut self, ctx: &egui::Context, fetch: bool) {
        for (s, t) in &mut self.thumbs {
            if let (Thumb::Idle, Err(_), false) = (&*t, s.thumbnail(), fetch) {
                continue;
            }
            if let Thumb::Idle = t {
                *t = match s.thumbnail() {
                    Ok(bytes) => texture(ctx, s.name, &bytes),
                    // The browser build: fetch it as its own job beside the model's files.
                    Err(_) => Thumb::Fetching(Download::start_as(
                        &format!("{} thumbnail", s.name),
                        s.name,
                        vec!["thumbnail.png"],
                    )),
                };
            }
            if let Thumb::Fetching(d) = t {
                match d.poll().clone() {
                    State::Loading { .. } => ctx.request_repaint(),
                    State::Done => {
                        *t = match s.thumbnail() {
                            Ok(bytes) => texture(ctx, s.name, &bytes),
                            Err(e) => Thumb::Missing(e.to_string()),
                        }
                    }
                    State::Failed(e) => *t = Thumb::Missing(e),
                }
            }
        }
    }

    /// The strip; returns the model whose thumbnail was clicked. `fetch`: see [`Self::load`].
    pub fn ui(&mut self, ui: &mut egui::Ui, fetch: bool) -> Option<&'static str> {
        self.load(ui.ctx(), fetch);
        let mut pick = None;
        ui.horizontal(|ui| {
            ui.label(RichText::new("What the models make").strong());
            ui.label(
                RichText::new(
                    "— each picture is the end of a reverse run; click one to watch it denoise",
                )
                .weak(),
            );
            if ui
                .small_button("put away")
                .on_hover_text(
                    "hide these thumbnails (the side panel's \"thumbnails\" shows them again)",
                )
                .clicked()
            {
                self.shown = false;
            }
        });
        // Every thumbnail in view where the row can be shrunk to fit (down to MIN_HEIGHT).
        let aspect = |t: &Thumb| match t {
            Thumb::Shown(tex) => tex.size_vec2().x / tex.size_vec2().y.max(1.0),
            _ => 1.0,
        };
        let pad = ui.spacing().item_spacing.x + 2.0 * ui.spacing().button_padding.x;
        let aspects: f32 = self.thumbs.iter().map(|(_, t)| aspect(t)).sum();
        let room = ui.available_width() - pad * self.thumbs.len() as f32;
        let height = (room / aspects.max(1.0)).clamp(MIN_HEIGHT, HEIGHT);
        egui::ScrollArea::horizontal()
            .id_salt("landing")
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    for (s, t) in &self.thumbs {
                        let width = height * aspect(t);
                        let clicked = ui
                            .vertical(|ui| {
                                ui.set_max_width(width + 2.0 * ui.spacing().button_padding.x);
                                let r = match t {
                                    Thumb::Shown(tex) => ui.add(egui::Button::image((
                                        tex.id(),
                                        egui::vec2(width, height),
                                    ))),
                                    Thumb::Missing(why) => ui
                                        .add_sized(
                                            [height, height],
                                            egui::Button::new("no picture"),
                                        )
                                        .on_hover_text(why.as_str()),
                                    _ => ui.add_sized([height, height], egui::Spinner::new()),
                                };
                                // A long name is cut to the thumbnail's width (the hover has it).
                                ui.add(egui::Label::new(RichText::new(s.name).small()).truncate());
                                // What a screen reader (and the app tests) call the card.
                                let label = format!("open {}", s.name);
                                r.widget_info(|| {
                                    egui::WidgetInfo::labeled(egui::Role::Button, true, &label)
                                });
                                r.on_hover_text(s.summary).clicked()
                            })
                            .inner;
                        if clicked {
                            pick = Some(s.name);
                        }
                    }
                });
            });
        ui.separator();
        if pick.is_some() {
            self.shown = false;
        }
        pick
    }
}

fn texture(ctx: &egui::Context, name: &str, bytes: &[u8]) -> Thumb {
    match crate::picture::decode_png(bytes) {
        Ok((rgba, w, h)) => {
            let img = ColorImage::from_rgba_unmultiplied([w, h], &rgba);
            Thumb::Shown(ctx.load_texture(format!("thumbnail {name}"), img, TextureOptions::LINEAR))
        }
        Err(e) => Thumb::Missing(format!("{name}/thumbnail.png: {e}")),
    }
}

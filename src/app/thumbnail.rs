//! A model's thumbnail: the picture of its finished run that the landing strip shows
//! (`landing.rs`). Each family's view marks where its main picture is drawn ([`mark`]: the samples'
//! grid, the points, the sequences, the graphs), and `diffscope --thumbnail W --screenshot F` crops
//! the window's screenshot to that rectangle and scales it to W pixels wide ([`crop`]) — so a
//! thumbnail is made by diffscope itself, from the same view a visitor sees.

use egui::Rect;
#[cfg(not(target_arch = "wasm32"))]
use egui::{Color32, ColorImage};

fn id() -> egui::Id {
    egui::Id::unique("diffscope-thumbnail-rect")
}

/// The open run's main picture is drawn in `rect` this frame.
pub(super) fn mark(ui: &egui::Ui, rect: Rect) {
    ui.ctx().data_mut(|d| d.insert_temp(id(), rect));
}

/// Where the main picture was drawn last (in points). Thumbnails are made natively.
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn marked(ctx: &egui::Context) -> Option<Rect> {
    ctx.data(|d| d.get_temp(id()))
}

/// `rect` (points, `ppp` pixels per point) of a screenshot — its top-left part at most 4:3 either way
/// — scaled to `width` pixels wide by averaging the source pixels each thumbnail pixel covers.
/// `None` when the rectangle misses the image.
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn crop(img: &ColorImage, rect: Rect, ppp: f32, width: usize) -> Option<ColorImage> {
    let [w, h] = img.size;
    let x0 = ((rect.left() * ppp).round().max(0.0) as usize).min(w);
    let y0 = ((rect.top() * ppp).round().max(0.0) as usize).min(h);
    let x1 = ((rect.right() * ppp).round().max(0.0) as usize).min(w);
    let y1 = ((rect.bottom() * ppp).round().max(0.0) as usize).min(h);
    let (cw, ch) = (x1.checked_sub(x0)?, y1.checked_sub(y0)?);
    if cw == 0 || ch == 0 || width == 0 {
        return None;
    }
    // At most 4:3 either way, keeping the top-left part: rows of 50 DNA letters would otherwise
    // shrink to an unreadable strip.
    let (cw, ch) = (cw.min(ch * 4 / 3).max(1), ch.min(cw * 4 / 3).max(1));
    let tw = width.min(cw);
    let th = (ch * tw).div_ceil(cw).max(1);
    let mut out = ColorImage::filled([tw, th], Color32::BLACK);
    for ty in 0..th {
        let (sy0, sy1) = (
            y0 + ty * ch / th,
            y0 + ((ty + 1) * ch / th).max(ty * ch / th + 1),
        );
        for tx in 0..tw {
            let (sx0, sx1) = (
                x0 + tx * cw / tw,
                x0 + ((tx + 1) * cw / tw).max(tx * cw / tw + 1),
            );
            let mut sum = [0u32; 4];
            let mut n = 0u32;
            for sy in sy0..sy1.min(h) {
                for sx in sx0..sx1.min(w) {
                    let p = img.pixels[sy * w + sx];
                    for (s, c) in sum.iter_mut().zip(p.to_array()) {
                        *s += u32::from(c);
                    }
                    n += 1;
                }
            }
            let [r, g, b, a] = sum.map(|s| (s / n.max(1)) as u8);
            out.pixels[ty * tw + tx] = Color32::from_rgba_premultiplied(r, g, b, a);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_takes_the_rectangle_and_averages_down() {
        // 8×4 pixels: left half black, right half white; crop the right 4×4 at 2 pixels per point.
        let mut img = ColorImage::filled([8, 4], Color32::BLACK);
        for y in 0..4 {
            for x in 4..8 {
                img.pixels[y * 8 + x] = Color32::WHITE;
            }
        }
        let r = Rect::from_min_max(egui::pos2(1.0, 0.0), egui::pos2(3.0, 2.0));
        // Points 1..3 × 0..2 are pixels 2..6 × 0..4: two black columns, two white, halved.
        let t = crop(&img, r, 2.0, 2).unwrap();
        assert_eq!(t.size, [2, 2]);
        assert_eq!(t.pixels[0], Color32::BLACK);
        assert_eq!(t.pixels[1], Color32::WHITE);
        assert_eq!(t.pixels[3], Color32::WHITE);
        // Scaling averages: one pixel over a black and a white column is mid grey.
        let r = Rect::from_min_max(egui::pos2(1.5, 0.0), egui::pos2(2.5, 1.0));
        let t = crop(&img, r, 2.0, 1).unwrap();
        assert_eq!(t.pixels[0], Color32::from_gray(127));
        // A wide rectangle keeps its left 4:3.
        let wide = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(4.0, 1.5));
        let t = crop(&img, wide, 2.0, 4).unwrap();
        assert_eq!(t.size, [4, 3]);
        assert!(
            t.pixels.iter().all(|&p| p == Color32::BLACK),
            "only the left part"
        );
        // A rectangle outside the image is nothing.
        let off = Rect::from_min_max(egui::pos2(10.0, 10.0), egui::pos2(12.0, 12.0));
        assert!(crop(&img, off, 2.0, 3).is_none());
    }
}

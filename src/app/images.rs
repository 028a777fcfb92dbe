//! Image batches as a grid: x_t, the predicted clean image x0_pred and the predicted noise ε_pred side by side.

use egui::{Color32, ColorImage, TextureHandle, TextureOptions};

/// How a tensor's values map to grey: data lives in the model's range; noise is shown over ±3σ so
/// that "pure noise" looks the same at every step.
#[derive(Clone, Copy)]
pub enum Scale {
    Range([f32; 2]),
    Noise,
}

/// `[N, C, H, W]` values (C = 1 grey or 3 RGB) tiled into a grid of `cols` columns with a 1-pixel gap.
pub fn grid(values: &[f32], shape: [usize; 4], cols: usize, scale: Scale) -> ColorImage {
    let [n, c, h, w] = shape;
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols);
    let (gw, gh) = (cols * (w + 1) + 1, rows * (h + 1) + 1);
    let mut img = ColorImage::filled([gw, gh], Color32::from_gray(40));
    let (lo, hi) = match scale {
        Scale::Range(r) => (r[0], r[1]),
        Scale::Noise => (-3.0, 3.0),
    };
    let to_u8 = |v: f32| {
        if !v.is_finite() {
            return 0;
        }
        (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0).round() as u8
    };
    for i in 0..n {
        let (ox, oy) = ((i % cols) * (w + 1) + 1, (i / cols) * (h + 1) + 1);
        let base = i * c * h * w;
        for y in 0..h {
            for x in 0..w {
                let at = |ch: usize| values.get(base + ch * h * w + y * w + x).copied();
                let px = match c {
                    3 => Color32::from_rgb(
                        to_u8(at(0).unwrap_or(f32::NAN)),
                        to_u8(at(1).unwrap_or(f32::NAN)),
                        to_u8(at(2).unwrap_or(f32::NAN)),
                    ),
                    _ => Color32::from_gray(to_u8(at(0).unwrap_or(f32::NAN))),
                };
                img.pixels[(oy + y) * gw + ox + x] = px;
            }
        }
    }
    img
}

/// One panel of the view: a caption over the grid, scaled to `size` pixels wide. Returns where the
/// picture was drawn.
pub fn panel(
    ui: &mut egui::Ui,
    tex: &mut Option<TextureHandle>,
    id: &str,
    image: ColorImage,
    caption: &str,
    width: f32,
) -> Option<egui::Rect> {
    let aspect = image.size[1] as f32 / image.size[0] as f32;
    match tex {
        Some(t) => t.set(image, TextureOptions::NEAREST),
        None => *tex = Some(ui.ctx().load_texture(id, image, TextureOptions::NEAREST)),
    }
    ui.vertical(|ui| {
        ui.label(caption);
        tex.as_ref()
            .map(|t| ui.image((t.id(), egui::vec2(width, width * aspect))).rect)
    })
    .inner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_places_each_image_in_its_cell() {
        // Two 2x2 grey images, values -1 and 1, in a 2-column grid: 2·3+1 by 1·3+1 pixels.
        let v = [-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0];
        let img = grid(&v, [2, 1, 2, 2], 2, Scale::Range([-1.0, 1.0]));
        assert_eq!(img.size, [7, 4]);
        assert_eq!(img.pixels[7 + 1], Color32::from_gray(0));
        assert_eq!(img.pixels[7 + 4], Color32::from_gray(255));
        assert_eq!(
            img.pixels[0],
            Color32::from_gray(40),
            "gaps keep the border colour"
        );
    }

    #[test]
    fn noise_scale_is_symmetric_and_non_finite_is_black() {
        let img = grid(&[0.0, f32::NAN], [2, 1, 1, 1], 2, Scale::Noise);
        assert_eq!(img.size, [5, 3]);
        assert_eq!(img.pixels[5 + 1], Color32::from_gray(128));
        assert_eq!(img.pixels[5 + 3], Color32::from_gray(0));
    }
}

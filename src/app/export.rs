//! Export what the app shows as files people can keep: the viewed frame and a trajectory strip as
//! PNG, sequences as FASTA (DNA) or text, graphs as JSON. On the desktop a file goes to
//! `diffscope-exports/` under the working directory (or the app's export folder); in the browser it
//! downloads.

use egui::{Color32, ColorImage};

/// One file to hand to the user.
pub struct Export {
    pub file_name: String,
    /// The browser's download needs the type; a desktop file has only its extension.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub mime: &'static str,
    pub bytes: Vec<u8>,
}

/// An RGBA PNG of `img`.
pub fn png(img: &ColorImage) -> crate::Result<Vec<u8>> {
    let data: Vec<u8> = img.pixels.iter().flat_map(|c| c.to_array()).collect();
    crate::picture::png(
        &data,
        img.size[0],
        img.size[1],
        crate::picture::Channels::Rgba,
    )
}

/// Each pixel as a `factor × factor` block: a 28×28 digit is too small to look at as a file.
pub fn upscale(img: &ColorImage, factor: usize) -> ColorImage {
    let f = factor.max(1);
    let [w, h] = img.size;
    let mut out = ColorImage::filled([w * f, h * f], Color32::BLACK);
    for y in 0..h * f {
        for x in 0..w * f {
            out.pixels[y * w * f + x] = img.pixels[(y / f) * w + x / f];
        }
    }
    out
}

/// Images side by side (top-aligned) with `gap` pixels of `bg` between them.
pub fn hstack(imgs: &[ColorImage], gap: usize, bg: Color32) -> ColorImage {
    let h = imgs.iter().map(|i| i.size[1]).max().unwrap_or(1);
    let w = imgs.iter().map(|i| i.size[0]).sum::<usize>() + gap * imgs.len().saturating_sub(1);
    let mut out = ColorImage::filled([w.max(1), h], bg);
    let mut ox = 0;
    for img in imgs {
        for y in 0..img.size[1] {
            for x in 0..img.size[0] {
                out.pixels[y * out.size[0] + ox + x] = img.pixels[y * img.size[0] + x];
            }
        }
        ox += img.size[0] + gap;
    }
    out
}

/// Images one under the other (left-aligned).
pub fn vstack(imgs: &[ColorImage], gap: usize, bg: Color32) -> ColorImage {
    let w = imgs.iter().map(|i| i.size[0]).max().unwrap_or(1);
    let h = imgs.iter().map(|i| i.size[1]).sum::<usize>() + gap * imgs.len().saturating_sub(1);
    let mut out = ColorImage::filled([w, h.max(1)], bg);
    let mut oy = 0;
    for img in imgs {
        for y in 0..img.size[1] {
            let row = (oy + y) * w;
            out.pixels[row..row + img.size[0]]
                .copy_from_slice(&img.pixels[y * img.size[0]..(y + 1) * img.size[0]]);
        }
        oy += img.size[1] + gap;
    }
    out
}

/// 2-D points (`[N·2]`, in `range` scaled by 1.4 as the view does) as dots on a white square.
pub fn points_image(points: &[f32], range: [f32; 2], side: usize) -> ColorImage {
    let mut img = ColorImage::filled([side, side], Color32::WHITE);
    let (lo, hi) = (range[0] * 1.4, range[1] * 1.4);
    for p in points.chunks_exact(2) {
        if !(p[0].is_finite() && p[1].is_finite()) {
            continue;
        }
        let x = ((p[0] - lo) / (hi - lo) * side as f32) as i64;
        let y = ((1.0 - (p[1] - lo) / (hi - lo)) * side as f32) as i64;
        for dy in -1..=1 {
            for dx in -1..=1 {
                let (px, py) = (x + dx, y + dy);
                if (0..side as i64).contains(&px) && (0..side as i64).contains(&py) {
                    img.pixels[py as usize * side + px as usize] = Color32::from_rgb(31, 119, 180);
                }
            }
        }
    }
    img
}

/// FASTA records `>{prefix}{i}` with 60 characters per line.
pub fn fasta(prefix: &str, seqs: &[String]) -> String {
    let mut s = String::new();
    for (i, q) in seqs.iter().enumerate() {
        s.push_str(&format!(">{prefix}{}\n", i + 1));
        let chars: Vec<char> = q.chars().collect();
        for line in chars.chunks(60) {
            s.extend(line.iter());
            s.push('\n');
        }
    }
    s
}

/// A file name from a model name and what is exported: only `[A-Za-z0-9._-]`.
pub fn file_name(model: &str, what: &str, ext: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}-{}.{ext}", clean(model), clean(what))
}

/// Hand the file to the user: write it under `dir`; returns where it went (for the status line).
#[cfg(not(target_arch = "wasm32"))]
pub fn deliver(e: &Export, dir: &std::path::Path) -> crate::Result<String> {
    std::fs::create_dir_all(dir).map_err(|err| {
        crate::Error::Io(std::io::Error::new(
            err.kind(),
            format!("creating {}: {err}", dir.display()),
        ))
    })?;
    let path = dir.join(&e.file_name);
    std::fs::write(&path, &e.bytes).map_err(|err| {
        crate::Error::Io(std::io::Error::new(
            err.kind(),
            format!("writing {}: {err}", path.display()),
        ))
    })?;
    Ok(format!("saved {}", path.display()))
}

/// Hand the file to the user: the browser downloads it (a Blob URL on a temporary link).
#[cfg(target_arch = "wasm32")]
pub fn deliver(e: &Export) -> crate::Result<String> {
    use wasm_bindgen::JsCast;
    let fail = |what: &str| crate::Error::Invalid(format!("download failed: {what}"));
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(e.bytes.as_slice()));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(e.mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts)
        .map_err(|_| fail("Blob"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| fail("object URL"))?;
    let doc = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| fail("no document"))?;
    let a: web_sys::HtmlAnchorElement = doc
        .create_element("a")
        .map_err(|_| fail("link"))?
        .dyn_into()
        .map_err(|_| fail("link"))?;
    a.set_href(&url);
    a.set_download(&e.file_name);
    a.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(format!("downloaded {}", e.file_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_through_the_decoder() {
        let mut img = ColorImage::filled([3, 2], Color32::from_gray(7));
        img.pixels[4] = Color32::from_rgb(200, 10, 30);
        let bytes = png(&img).unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&buf[16..20], &[200, 10, 30, 255]);
        assert_eq!(&buf[0..4], &[7, 7, 7, 255]);
    }

    #[test]
    fn stacking_and_upscaling_place_pixels() {
        let a = ColorImage::filled([2, 1], Color32::RED);
        let b = ColorImage::filled([1, 2], Color32::GREEN);
        let h = hstack(&[a.clone(), b.clone()], 1, Color32::BLACK);
        assert_eq!(h.size, [4, 2]);
        assert_eq!(h.pixels[0], Color32::RED);
        assert_eq!(h.pixels[2], Color32::BLACK);
        assert_eq!(h.pixels[3], Color32::GREEN);
        assert_eq!(h.pixels[4], Color32::BLACK, "below the short image");
        let v = vstack(&[a, b], 0, Color32::BLUE);
        assert_eq!(v.size, [2, 3]);
        assert_eq!(v.pixels[3], Color32::BLUE);
        let u = upscale(&h, 3);
        assert_eq!(u.size, [12, 6]);
        assert_eq!(u.pixels[2], Color32::RED);
        assert_eq!(u.pixels[9], Color32::GREEN);
    }

    #[test]
    fn fasta_wraps_at_60_and_names_records() {
        let s = fasta("sample", &["A".repeat(61), "CG".into()]);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], ">sample1");
        assert_eq!(lines[1].len(), 60);
        assert_eq!(lines[2], "A");
        assert_eq!(lines[3], ">sample2");
        assert_eq!(lines[4], "CG");
    }

    #[test]
    fn file_names_are_tame() {
        assert_eq!(
            file_name("my model/../x", "step 3", "png"),
            "my_model_.._x-step_3.png"
        );
    }

    #[test]
    fn points_outside_the_view_are_dropped() {
        let img = points_image(&[0.0, 0.0, 100.0, 100.0, f32::NAN, 0.0], [-1.0, 1.0], 20);
        let blue = img.pixels.iter().filter(|&&c| c != Color32::WHITE).count();
        assert_eq!(blue, 9, "one 3×3 dot");
    }
}

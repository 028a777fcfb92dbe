//! A Gaussian run's exports: the viewed frame as drawn, and a trajectory strip of every image sample.

use super::super::export::{self, Export};
use super::super::images;
use super::stepping::{split_frame, Session};
use crate::pipelines::gaussian::GaussianModel;
use egui::Color32;

/// The viewed step: x_t | x0_pred | ε_pred grids for images, the point cloud for points.
pub(super) fn frame(m: &GaussianModel, s: &Session, viewed: usize) -> crate::Result<Export> {
    let (v, f) = s
        .states
        .nearest(viewed)
        .ok_or_else(|| crate::Error::NotReady("no step recorded yet".into()))?;
    let shape = m.denoiser.sample_shape();
    let img = if let &[c, h, w] = shape {
        let per = s.n * c * h * w;
        let (fx, fx0, feps) = split_frame(f, per);
        let dims = [s.n, c, h, w];
        let cols = (s.n as f64).sqrt().ceil() as usize;
        let range = images::Scale::Range(m.data_range);
        let mut parts = vec![images::grid(fx, dims, cols, range)];
        parts.extend(fx0.map(|x0| images::grid(x0, dims, cols, range)));
        parts.extend(feps.map(|e| images::grid(e, dims, cols, images::Scale::Noise)));
        export::upscale(&export::hstack(&parts, 2, Color32::WHITE), 4)
    } else {
        export::points_image(split_frame(f, s.n * 2).0, m.data_range, 512)
    };
    Ok(Export {
        file_name: export::file_name(
            &m.name,
            &format!("seed{}-step{v}", s.run.settings.seed),
            "png",
        ),
        mime: "image/png",
        bytes: export::png(&img)?,
    })
}

/// Each image sample as a row of x_t at 10 evenly spaced kept steps from x_T to the viewed one.
pub(super) fn strip(m: &GaussianModel, s: &Session, viewed: usize) -> crate::Result<Export> {
    let &[c, h, w] = m.denoiser.sample_shape() else {
        return Err(crate::Error::Invalid(
            "a trajectory strip is for image models; export a frame instead".into(),
        ));
    };
    let end = viewed.min(s.states.len().saturating_sub(1));
    let mut steps: Vec<usize> = (0..10).map(|i| i * end / 9).collect();
    steps.dedup();
    let per = c * h * w;
    let frames: Vec<(usize, &[f32])> = steps.iter().filter_map(|&k| s.states.nearest(k)).collect();
    let rows: Vec<egui::ColorImage> = (0..s.n.min(8))
        .map(|i| {
            let tiles: Vec<f32> = frames
                .iter()
                .flat_map(|(_, f)| split_frame(f, s.n * per).0[i * per..(i + 1) * per].to_vec())
                .collect();
            images::grid(
                &tiles,
                [frames.len(), c, h, w],
                frames.len(),
                images::Scale::Range(m.data_range),
            )
        })
        .collect();
    let img = export::upscale(&export::vstack(&rows, 0, Color32::WHITE), 3);
    Ok(Export {
        file_name: export::file_name(
            &m.name,
            &format!("seed{}-strip-to-step{end}", s.run.settings.seed),
            "png",
        ),
        mime: "image/png",
        bytes: export::png(&img)?,
    })
}

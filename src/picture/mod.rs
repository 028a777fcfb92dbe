//! A run's state as pixels, shared by the app's views and exports and the CLI's `--out x.png`: one PNG
//! encoder and one frame for 2-D points, so a picture of the same state looks the same wherever it is
//! made.

use crate::error::{Error, Result};

/// How the bytes of a picture are laid out, one byte per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channels {
    Rgb,
    Rgba,
}

impl Channels {
    fn count(self) -> usize {
        match self {
            Channels::Rgb => 3,
            Channels::Rgba => 4,
        }
    }
}

/// `pixels` (row-major, `width × height`, 8 bits per channel) as a PNG file.
pub fn png(pixels: &[u8], width: usize, height: usize, channels: Channels) -> Result<Vec<u8>> {
    let err = |detail: String| Error::Encode {
        what: "PNG",
        detail,
    };
    if width == 0 || height == 0 || pixels.len() != width * height * channels.count() {
        return Err(err(format!(
            "{} bytes for a {width}×{height} picture of {} channels",
            pixels.len(),
            channels.count()
        )));
    }
    let (w, h) = (
        u32::try_from(width).map_err(|e| err(e.to_string()))?,
        u32::try_from(height).map_err(|e| err(e.to_string()))?,
    );
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(match channels {
            Channels::Rgb => png::ColorType::Rgb,
            Channels::Rgba => png::ColorType::Rgba,
        });
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(|e| err(e.to_string()))?;
        wr.write_image_data(pixels)
            .map_err(|e| err(e.to_string()))?;
        wr.finish().map_err(|e| err(e.to_string()))?;
    }
    Ok(out)
}

/// A PNG file's pixels as 8-bit RGBA (row-major) with its width and height: grey, palette and 16-bit
/// files are converted. A truncated or malformed file is an error.
pub fn decode_png(bytes: &[u8]) -> Result<(Vec<u8>, usize, usize)> {
    let err = |detail: String| Error::Encode {
        what: "PNG",
        detail,
    };
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = dec.read_info().map_err(|e| err(e.to_string()))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| err("the picture is too large".into()))?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| err(e.to_string()))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let px = &buf[..info.buffer_size()];
    let rgba: Vec<u8> = match info.color_type {
        png::ColorType::Rgba => px.to_vec(),
        png::ColorType::Rgb => px
            .chunks_exact(3)
            .flat_map(|c| [c[0], c[1], c[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => px
            .chunks_exact(2)
            .flat_map(|c| [c[0], c[0], c[0], c[1]])
            .collect(),
        png::ColorType::Grayscale => px.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::Indexed => return Err(err("a palette was not expanded".into())),
    };
    if rgba.len() != w * h * 4 {
        return Err(err(format!("{} bytes for a {w}×{h} picture", rgba.len())));
    }
    Ok((rgba, w, h))
}

/// How far past the data range a view of 2-D points reaches: the data fills the middle, and points
/// still far out at high noise stay in the picture.
pub const POINTS_MARGIN: f32 = 1.4;

/// The square a view of 2-D points in `range` shows, as `[lo, hi]` on both axes.
pub fn points_frame(range: [f32; 2]) -> [f32; 2] {
    [range[0] * POINTS_MARGIN, range[1] * POINTS_MARGIN]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_png_decodes_to_the_same_pixels() {
        let (w, h) = (3, 2);
        let px: Vec<u8> = (0..w * h * 3).map(|i| (i * 17) as u8).collect();
        let bytes = png(&px, w, h, Channels::Rgb).unwrap();
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; dec.output_buffer_size().unwrap()];
        let info = dec.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&buf[..info.buffer_size()], &px[..]);
        assert!(matches!(
            png(&px[1..], w, h, Channels::Rgb),
            Err(Error::Encode { what: "PNG", .. })
        ));
    }

    #[test]
    fn decode_png_gives_rgba_and_refuses_a_truncated_file() {
        let (w, h) = (3, 2);
        let px: Vec<u8> = (0..w * h * 3).map(|i| (i * 17) as u8).collect();
        let bytes = png(&px, w, h, Channels::Rgb).unwrap();
        let (rgba, dw, dh) = decode_png(&bytes).unwrap();
        assert_eq!((dw, dh), (3, 2));
        let want: Vec<u8> = px.chunks(3).flat_map(|c| [c[0], c[1], c[2], 255]).collect();
        assert_eq!(rgba, want);
        let cut = &bytes[..bytes.len() / 2];
        assert!(matches!(
            decode_png(cut),
            Err(Error::Encode { what: "PNG", .. })
        ));
        assert!(decode_png(b"not a png").is_err());
    }
}

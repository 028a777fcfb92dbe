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
}

//! How much memory a `UNet2DModel` forward pass needs at a batch size, from its config alone
//! (`nn::Footprint`): the feature maps at each resolution (doubled where an up block concatenates
//! its skip connection), the attention scores (batch × heads × (H·W)², the tensor that grows fastest
//! with resolution), on the CPU backend the convolution's im2col columns, and at the peak every kept
//! skip connection plus a few working maps. An estimate from above, good to the size class: it
//! decides whether to refuse a run before it allocates, not how to schedule one.

use super::UNetConfig;
use crate::nn::Footprint;

pub fn footprint(c: &UNetConfig, param_bytes: u64, batch: usize, host: bool) -> Footprint {
    let b = batch as u64;
    let ch = &c.block_out_channels;
    let mut largest = (0u64, String::new());
    let mut bigger = |bytes: u64, what: String| {
        if bytes > largest.0 {
            largest = (bytes, what);
        }
    };
    let mut skips = 0u64;
    let mut widest_map = 0u64;
    for (i, &chi) in ch.iter().enumerate() {
        let r = (c.sample_size >> i).max(1) as u64;
        let next = ch.get(i + 1).copied().unwrap_or(chi) as u64;
        // An up block's first resnet sees its input and the skip connection side by side.
        let cin = chi as u64 + next;
        let map = b * cin * r * r * 4;
        widest_map = widest_map.max(map);
        bigger(map, format!("the {r}×{r}×{cin} feature maps"));
        skips += (c.layers_per_block as u64 + 1) * b * chi as u64 * r * r * 4;
        let attn = c
            .down_block_types
            .get(i)
            .is_some_and(|t| t.starts_with("Attn"))
            || (i + 1 == ch.len() && c.add_attention);
        if attn {
            let heads = c.attention_head_dim.map_or(1, |d| (chi / d.max(1)).max(1)) as u64;
            let scores = b * heads * (r * r) * (r * r) * 4;
            bigger(
                scores,
                format!("the attention scores at {r}×{r} ({heads} heads)"),
            );
        }
        if host {
            let cols = cin * 9 * b * r * r * 4;
            bigger(
                cols,
                format!("a 3×3 convolution's im2col columns at {r}×{r}×{cin}"),
            );
        }
    }
    Footprint {
        param_bytes,
        peak_bytes: skips + 4 * widest_map + largest.0,
        largest_bytes: largest.0,
        largest: largest.1,
    }
}

//! `cargo bench --bench conv`: the CPU backend's conv2d in each layout ([`ConvOrder`]) on the
//! shipped UNets' layer shapes at batch 1, 4 and 16 — how [`ConvOrder::for_layer`] was chosen.
//! Median of 9 runs after a warm-up, on the backend's threads (`RAYON_NUM_THREADS`), in one sitting;
//! compare the columns of a row, not figures across machines.

use diffscope::ops::conv::cpu::{conv2d_via, ConvOrder, BAND_ELEMENTS};
use diffscope::ops::conv::Padding;

fn median_ms(f: impl Fn()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..9)
        .map(|_| {
            let t0 = std::time::Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let cpu = diffscope::cpu::Cpu::new(&Default::default());
    println!("{}", cpu.describe());
    println!("batch  cin   h×w  cout  stride  patches-right ms  channels-last ms  ratio  picked");
    // (cin, side, cout, stride): mnist-unet's (16/32/96 channels at 28/14/7) and emoji-unet's
    // (32/64/128 at 32/16/8) 3×3 layers, their concatenated skips and downsamplers.
    let layers = [
        (16, 28, 16, 1),
        (48, 28, 16, 1),
        (16, 28, 16, 2),
        (16, 14, 32, 1),
        (32, 14, 32, 1),
        (32, 7, 96, 1),
        (96, 7, 96, 1),
        (192, 7, 96, 1),
        (32, 32, 32, 1),
        (64, 16, 64, 1),
        (128, 8, 128, 1),
        (256, 8, 128, 1),
    ];
    for batch in [1usize, 4, 16] {
        for &(cin, side, cout, stride) in &layers {
            let x: Vec<f32> = (0..batch * cin * side * side)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let w: Vec<f32> = (0..cout * cin * 9)
                .map(|i| ((i * 104729) % 1000) as f32 / 5000.0 - 0.1)
                .collect();
            let b = vec![0.1f32; cout];
            let run = |order| {
                std::hint::black_box(
                    conv2d_via(
                        (&x, &[batch, cin, side, side]),
                        (&w, &[cout, cin, 3, 3]),
                        Some(&b),
                        stride,
                        Padding::same(1),
                        Some(order),
                    )
                    .expect("conv2d"),
                );
            };
            let right = median_ms(|| run(ConvOrder::PatchesRight));
            let last = median_ms(|| {
                run(ConvOrder::ChannelsLast {
                    band: BAND_ELEMENTS,
                })
            });
            let picked = match ConvOrder::for_layer(
                batch,
                (side / stride) * (side / stride),
                cout,
                stride,
            ) {
                ConvOrder::PatchesRight => "right",
                ConvOrder::ChannelsLast { .. } => "last",
            };
            println!(
                "{batch:5} {cin:4} {side:3}² {cout:5} {stride:7} {right:17.3} {last:17.3} {:6.2}  {picked}",
                last / right
            );
        }
    }
}

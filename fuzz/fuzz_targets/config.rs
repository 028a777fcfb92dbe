//! The config parsers (FiLM-MLP, UNet2DModel, diffusers scheduler) on arbitrary text. The first byte
//! picks the parser; an accepted scheduler config also builds its tables and plans, so absurd sizes
//! that slip through validation show up as out-of-memory or overflow crashes.
#![no_main]

use diffscope::models::film_mlp::FilmMlp;
use diffscope::models::unet::UNetConfig;
use diffscope::process::gaussian::{Gaussian, Sampler, SchedulerConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(json) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 3 {
        0 => {
            let _ = FilmMlp::parse_config(json, "config.json");
        }
        1 => {
            let _ = UNetConfig::from_json(json, "config.json");
        }
        _ => {
            if let Ok(c) = SchedulerConfig::from_json(json, "scheduler_config.json") {
                if let Ok(g) = Gaussian::new(c) {
                    let t = g.train_timesteps();
                    for steps in [1, t / 3, t] {
                        let _ = g.plan(Sampler::Ddpm, steps);
                        let _ = g.plan(Sampler::Ddim { eta: 0.0 }, steps);
                    }
                }
            }
        }
    }
});

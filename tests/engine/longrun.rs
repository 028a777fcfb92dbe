//! A kiosk-length run: 10,000 reverse steps of toy2d-mlp (50 trajectories of 200 DDPM steps, one
//! after another, each state read back and recorded as the app does) with a flat count of GPU
//! buffers, pipelines and bind groups (the runtime's counters) and flat process memory (resident set
//! size). The measurement runs in a child process of this test binary so that other tests running
//! at the same time cannot move its memory figures.

use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::trajectory::History;
use diffscope::{Gpu, Tensor};

const STEPS_PER_RUN: usize = 200;
const RUNS: usize = 50;

/// Resident set size of this process in bytes (Linux), from /proc/self/statm.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn ten_thousand_steps_keep_buffers_and_memory_flat() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "longrun::long_run_in_its_own_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("run the long-run child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in text
        .lines()
        .filter_map(|l| l.find("longrun:").map(|i| &l[i..]))
    {
        eprintln!("{line}");
    }
    assert!(out.status.success(), "the long run failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the child ran no test (filter?):\n{text}"
    );
}

#[test]
#[ignore = "run by ten_thousand_steps_keep_buffers_and_memory_flat, in its own process"]
fn long_run_in_its_own_process() {
    // Its own device: the counters are per device.
    let gpu = Gpu::new(&Default::default()).unwrap();
    let g = diffscope::Device::Gpu(gpu.clone());
    let m = diffscope::pipelines::gaussian::load_shipped(&g, "toy2d-mlp").unwrap();
    let n = 1;
    let plan = m.process.plan(Sampler::Ddpm, STEPS_PER_RUN).unwrap();
    // The app's recorded trajectory, with a cap small enough that the run thins it many times.
    let cap = 64 << 10;
    let mut history = History::new(cap, 32);
    let t0 = std::time::Instant::now();
    let mut samples: Vec<(usize, u64, diffscope::gpu::CounterSnapshot)> = Vec::new();
    let mut step = 0usize;
    let mut baseline = None;
    // Runs 0 and 1 warm up (pipelines, pool classes, bind groups, allocator arenas — and the first
    // boundary between runs: an upload into a new tensor takes a free buffer rather than flushing the
    // recorded work, so the first new run may need one more buffer than the steps did); the 50 after
    // them are the measured 10,000 steps.
    const WARM_UP_RUNS: usize = 2;
    for run in 0..RUNS + WARM_UP_RUNS {
        let settings = SampleSettings {
            sampler: Sampler::Ddpm,
            steps: STEPS_PER_RUN,
            seed: run as u64,
            labels: Some(vec![(run % 6) as u32; n]),
            guidance: None,
        };
        let mut x: Tensor = m.process.initial(&g, n, &[2], settings.seed).unwrap();
        for k in 0..plan.len() {
            x = m
                .process
                .step(
                    m.denoiser.as_ref(),
                    &x,
                    &plan,
                    k,
                    &settings,
                    Default::default(),
                )
                .unwrap()
                .x_prev;
            g.submit();
            let v = x.to_f32().unwrap();
            g.check().unwrap();
            assert!(v.iter().all(|f| f.is_finite()), "run {run} step {k}: {v:?}");
            history.push(v);
            if run >= WARM_UP_RUNS {
                step += 1;
                if step.is_multiple_of(1000) {
                    samples.push((step, rss_bytes().unwrap_or(0), g.counters()));
                }
            }
        }
        if run + 1 == WARM_UP_RUNS {
            baseline = Some((
                rss_bytes().unwrap_or(0),
                g.counters(),
                gpu.pooled_free_bytes(),
            ));
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let (rss0, c0, pool0) = baseline.unwrap();
    let (_, rss_end, c_end) = *samples.last().unwrap();
    let d = c_end - c0;
    println!(
        "longrun: {step} steps (batch {n}) in {secs:.1} s ({:.2} ms/step incl. warm-up)",
        secs * 1e3 / (step + WARM_UP_RUNS * STEPS_PER_RUN) as f64
    );
    println!(
        "longrun: counters over the 10,000 steps: buffers_created {}, pipelines_created {}, \
         bind_groups_created {}, submissions {}, dispatches {}",
        d.buffers_created, d.pipelines_created, d.bind_groups_created, d.submissions, d.dispatches
    );
    let (_, _, c_half) = samples[samples.len() / 2 - 1];
    println!(
        "longrun: bind groups created in the second 5,000 steps: {}",
        (c_end - c_half).bind_groups_created
    );
    println!(
        "longrun: pooled free bytes {} -> {}; history {} of {} steps kept, {} bytes (cap {cap})",
        pool0,
        gpu.pooled_free_bytes(),
        history.kept(),
        history.len(),
        history.bytes()
    );
    let rss: Vec<String> = samples
        .iter()
        .map(|(s, r, _)| format!("{s}:{:.1}", *r as f64 / (1 << 20) as f64))
        .collect();
    println!(
        "longrun: RSS MiB after warm-up {:.1}; by step {}",
        rss0 as f64 / (1 << 20) as f64,
        rss.join(" ")
    );
    assert_eq!(step, RUNS * STEPS_PER_RUN);
    assert_eq!(
        d.buffers_created, 0,
        "a GPU buffer was created after warm-up: {d:?}"
    );
    assert_eq!(d.pipelines_created, 0, "{d:?}");
    // Each run's x_T takes whichever pooled buffer is free, so the first runs meet a few new buffer
    // combinations (bind groups are cached, and the cache is bounded); by the second half, none.
    let late = c_end - c_half;
    assert_eq!(
        late.bind_groups_created, 0,
        "bind groups still created late: {late:?}"
    );
    assert!(d.bind_groups_created <= 64, "{d:?}");
    // One submission for each step and one for its readback copy; nothing else (uploading a run's
    // labels into a new tensor no longer flushes x_T's recorded noise as a submission of its own).
    assert_eq!(d.submissions as usize, 2 * step, "{d:?}");
    assert_eq!(
        gpu.pooled_free_bytes(),
        pool0,
        "the pool neither grew nor shrank"
    );
    assert!(history.bytes() <= cap);
    // Flat memory: between the first and the last thousand measured steps the resident set may move
    // by allocator noise, not by a per-step leak (one of 64 bytes a step would add 576 KiB).
    let (_, rss_first, _) = samples[0];
    let growth = rss_end as i64 - rss_first as i64;
    assert!(
        growth < 512 << 10,
        "resident memory grew by {growth} bytes over 9,000 steps: {rss:?}"
    );
}

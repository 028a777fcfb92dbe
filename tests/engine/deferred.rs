//! The CPU backend in deferred mode (the page's: ops are recorded and run a slice per readback poll)
//! computes exactly what it computes at once: every family's runs, bit for bit, and a readback that
//! is polled with no time at all still arrives, one recorded op per poll.

use crate::common::cpu;
use diffscope::pipelines::gaussian::run as gaussian_run;
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::{Cpu, CpuOptions, Device, Tensor};
use std::sync::OnceLock;

fn deferred() -> (Cpu, Device) {
    static CPU: OnceLock<Cpu> = OnceLock::new();
    let c = CPU
        .get_or_init(|| {
            Cpu::new(&CpuOptions {
                deferred: true,
                ..Default::default()
            })
        })
        .clone();
    assert!(c.deferred());
    (c.clone(), Device::Cpu(c))
}

/// Gaussian models under samplers of each kind (ancestral, deterministic, multistep with history,
/// guided): the trajectories, x̂0 included, are the eager backend's bit for bit.
#[test]
fn gaussian_runs_equal_the_eager_backend() {
    let (_, lazy) = deferred();
    let eager = cpu();
    for name in ["toy2d-mlp", "mnist-unet"] {
        let a = diffscope::pipelines::gaussian::load_shipped(&eager, name).unwrap();
        let b = diffscope::pipelines::gaussian::load_shipped(&lazy, name).unwrap();
        let n = 2;
        let cases = [
            (Sampler::Ddpm, 3, None),
            (Sampler::Ddim { eta: 0.5 }, 3, Some(2.0)),
            (
                Sampler::DpmSolver {
                    sde: false,
                    karras: false,
                },
                4,
                None,
            ),
        ];
        for (sampler, steps, guidance) in cases {
            let s = SampleSettings {
                sampler,
                steps,
                seed: 21,
                labels: Some(vec![3; n]),
                guidance,
            };
            let want = gaussian_run::sample(&a, &s, n, None, true).unwrap();
            let got = gaussian_run::sample(&b, &s, n, None, true).unwrap();
            assert_eq!(got.states, want.states, "{name} {sampler:?}: states");
            assert_eq!(got.x0, want.x0, "{name} {sampler:?}: x̂0");
        }
    }
}

/// Discrete sequences (absorbing, uniform, multinomial) and a DiGress stretch: the same ids.
#[test]
fn discrete_and_graph_runs_equal_the_eager_backend() {
    use diffscope::pipelines::graph::run::GraphRun;
    use diffscope::pipelines::sequence::run::SequenceRun;
    let (_, lazy) = deferred();
    let eager = cpu();
    for name in ["words-absorb", "words-uniform", "promoter-multinomial"] {
        let run = |d: &Device| {
            let m = diffscope::pipelines::sequence::load_shipped(d, name).unwrap();
            let x_t = m.process.prior_sample(d, 2, m.config.seq_len, 5).unwrap();
            let start = x_t.to_u32().unwrap();
            let mut r = SequenceRun::resume(&m, &start, 0, 5, 0.9).unwrap();
            let mut out = vec![start];
            for _ in 0..4 {
                r.step(&m).unwrap();
                out.push(r.state().to_u32().unwrap());
            }
            out
        };
        assert_eq!(run(&lazy), run(&eager), "{name}");
    }
    let graphs = |d: &Device| {
        let m = diffscope::pipelines::graph::load_graph_shipped(d, "planar-digress").unwrap();
        let counts = m.sample_counts(2, 5).unwrap();
        let mut r = GraphRun::start(&m, &counts, 5).unwrap();
        let mut out = Vec::new();
        for _ in 0..3 {
            let e = r.state().e.to_u32().unwrap();
            r.step(&m, &e).unwrap();
            out.push((r.state().x.to_u32().unwrap(), r.state().e.to_u32().unwrap()));
        }
        out
    };
    assert_eq!(graphs(&lazy), graphs(&eager), "planar-digress");
}

/// A recorded op computes nothing until read; a readback polled with no time to spare runs one op
/// per poll and arrives with the eager value; a host write after recorded reads keeps their order.
#[test]
fn recorded_ops_run_when_read() {
    use diffscope::ops::elementwise::{add, affine};
    let (c, lazy) = deferred();
    let x = Tensor::from_f32(&lazy, &[3], &[1.0, 2.0, 3.0]).unwrap();
    let mut y = x.clone();
    for _ in 0..5 {
        y = add(&affine(&y, 2.0, 1.0).unwrap(), &x).unwrap();
    }
    // Nothing has run yet: 10 ops queued (and the readback's copy makes 11).
    let mut r = y.read();
    let mut polls = 0;
    while !c.run_for(web_time::Duration::ZERO).unwrap() {
        polls += 1;
        assert!(polls < 100, "the queue never emptied");
    }
    assert!(
        polls >= 10,
        "the recorded ops ran in {polls} polls, not one op each"
    );
    let got = r.try_f32().expect("ready once the queue has run").unwrap();
    let want: Vec<f32> = [1.0f32, 2.0, 3.0]
        .iter()
        .map(|&x0| (0..5).fold(x0, |y, _| 2.0 * y + 1.0 + x0))
        .collect();
    assert_eq!(got, want);

    // A write into a tensor that a recorded op reads lands after that op has read it.
    let z = affine(&x, 1.0, 10.0).unwrap();
    x.write_f32(&[0.0, 0.0, 0.0]).unwrap();
    assert_eq!(z.to_f32().unwrap(), vec![11.0, 12.0, 13.0]);
    assert_eq!(x.to_f32().unwrap(), vec![0.0, 0.0, 0.0]);
}

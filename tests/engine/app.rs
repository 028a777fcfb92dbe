//! The app driven headlessly through egui's own test harness (egui_kittest): real frames of the
//! real UI on a real compute device, buttons clicked by their accessible labels. Each test checks a
//! flow a user would take — sampling advances and stays responsive, step back, the forward explorer,
//! exports (their files are decoded and checked), and errors shown in the UI instead of a panic.

use diffscope::app::{DiffscopeApp, Start};
use diffscope::Gpu;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use std::path::PathBuf;

/// A fresh export folder per test.
fn export_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("diffscope-app-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn harness(start: Start, exports: &PathBuf) -> Harness<'static, DiffscopeApp> {
    // Its own device: device errors other tests provoke on the shared one must not reach the app.
    let g = Gpu::new(&Default::default())
        .map(diffscope::Device::Gpu)
        .map_err(|e| e.to_string());
    let app = DiffscopeApp::with_device(g, start).with_export_dir(exports);
    Harness::builder()
        .with_size([1280.0, 900.0])
        .build_ui_state(|ui, app: &mut DiffscopeApp| app.show(ui), app)
}

fn status(h: &Harness<'_, DiffscopeApp>) -> serde_json::Value {
    serde_json::from_str(&h.state().status_json()).unwrap()
}

/// Run frames until `done` holds (a frame waits a little so GPU work can finish); panics with the
/// app's status after `max_frames`.
fn run_until(
    h: &mut Harness<'_, DiffscopeApp>,
    max_frames: usize,
    mut done: impl FnMut(&serde_json::Value) -> bool,
) {
    for _ in 0..max_frames {
        h.step();
        let s = status(h);
        assert!(s["error"].is_null(), "the app shows an error: {s}");
        if done(&s) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!(
        "condition not reached in {max_frames} frames: {}",
        status(h)
    );
}

/// Click the widget labelled `label` once the layout has settled: the first result landing
/// resizes the panels, and a click aims at where the widget was drawn in the last frame, so a
/// click in the frame right after it can land beside the widget.
fn click_settled(h: &mut Harness<'_, DiffscopeApp>, label: &str) {
    h.run_steps(5);
    h.get_by_label(label).click();
}

/// Run frames until a widget whose label contains `text` shows (GPU work lands a few frames later).
fn wait_for_label(h: &mut Harness<'_, DiffscopeApp>, text: &str, max_frames: usize) {
    for _ in 0..max_frames {
        h.step();
        if h.query_by_label_contains(text).is_some() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("no \"{text}\" after {max_frames} frames: {}", status(h));
}

/// Pause and let the step in flight land: frames run until the recorded count has not moved for
/// 30 frames, ≥ 0.3 s (a fixed three frames raced a slow step on a loaded machine).
fn pause(h: &mut Harness<'_, DiffscopeApp>) {
    h.get_by_label("Pause").click();
    let mut last = None;
    let mut still = 0;
    for _ in 0..2000 {
        h.step();
        let now = status(h)["recorded"].as_u64();
        if now == last {
            still += 1;
            if still >= 30 {
                return;
            }
        } else {
            (last, still) = (now, 0);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn files_in(dir: &PathBuf) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn points_model_samples_pauses_steps_back_and_exports_a_png() {
    let dir = export_dir("points");
    let mut h = harness(Start::Shipped("toy2d-mlp".into()), &dir);
    run_until(&mut h, 2000, |s| s["recorded"].as_u64() >= Some(6));
    h.get_by_label("Pause").click();
    h.step();
    h.step();
    // What is recorded now stays: no step starts while paused (one may still land).
    let paused_at = status(&h)["recorded"].as_u64().unwrap();
    for _ in 0..20 {
        h.step();
    }
    let after = status(&h)["recorded"].as_u64().unwrap();
    assert!(
        after <= paused_at + 1,
        "{paused_at} -> {after} while paused"
    );
    assert!(
        h.query_by_label("Play").is_some(),
        "the button flips to Play"
    );

    // Step back twice from the newest step: the viewed-step slider follows.
    let newest = (after - 1).to_string();
    assert!(
        h.query_by_value(&newest).is_some(),
        "viewing the newest step {newest}"
    );
    h.get_by_label("< Step back").click();
    h.step();
    h.get_by_label("< Step back").click();
    h.step();
    let back = (after - 3).to_string();
    assert!(
        h.query_by_value(&back).is_some(),
        "after two steps back the slider shows {back}"
    );

    h.get_by_label("frame (PNG)").click();
    h.step();
    h.step();
    let files = files_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("toy2d-mlp-seed0-step"), "{name}");
    let dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&files[0]).unwrap(),
    ));
    let info = dec.read_info().unwrap();
    assert_eq!((info.info().width, info.info().height), (512, 512));
    assert!(
        h.query_by_label_contains("saved").is_some(),
        "the UI says where it went"
    );

    // The speed cap: switching it on adds its rate slider (beside the measured steps/s).
    let before = h.query_all_by_label_contains("steps/s").count();
    h.get_by_label("slow down").click();
    h.step();
    h.step();
    let after = h.query_all_by_label_contains("steps/s").count();
    assert!(after > before, "{before} -> {after} nodes mention steps/s");
    // Playing at the default cap of 5 steps/s: a slow machine can only be slower, so this bound holds
    // anywhere; and it does move.
    h.get_by_label("Play").click();
    h.step();
    let r0 = status(&h)["recorded"].as_u64().unwrap();
    let t0 = std::time::Instant::now();
    while t0.elapsed().as_secs_f64() < 1.5 {
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let (steps, secs) = (
        status(&h)["recorded"].as_u64().unwrap() - r0,
        t0.elapsed().as_secs_f64(),
    );
    assert!(steps >= 1, "no step in {secs:.1} s at 5 steps/s");
    assert!(
        steps as f64 <= 5.0 * secs + 2.0,
        "{steps} steps in {secs:.2} s with the cap at 5 steps/s"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn absorbing_words_unmask_for_good_and_the_forward_explorer_draws() {
    let dir = export_dir("words");
    let mut h = harness(Start::Shipped("words-absorb".into()), &dir);
    run_until(&mut h, 3000, |s| s["recorded"].as_u64() >= Some(12));
    // The run uses the temperature and un-masking order the model card suggests.
    let s = status(&h);
    let t = s["temperature"].as_f64().unwrap();
    assert!((t - 1.0).abs() < 1e-6, "temperature {t}");
    assert_eq!(s["unmask"], "annealed", "{s}");
    assert_eq!(
        s["padding"], "suffix",
        "padding ends every word by default: {s}"
    );
    // The gallery tells what the open model is and how good it is, from its card.
    h.get_by_label("about this model").click();
    wait_for_label(&mut h, "training steps", 50);
    assert!(
        h.query_by_label_contains("are dictionary words").is_some(),
        "the card's measured quality is shown"
    );
    h.get_by_label("about this model").click();
    h.step();
    assert!(
        h.query_by_label_contains("the model's x0_pred").is_some(),
        "the detail panel is shown"
    );
    pause(&mut h);

    // The selected sequence's trajectory: x_T is all mask, and under absorbing noise a token, once
    // un-masked, never changes again.
    h.get_by_label("trajectory of the selected sequence")
        .click();
    h.step();
    let files = files_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
    assert!(lines.len() >= 12, "{} lines", lines.len());
    assert!(lines.iter().all(|l| l.len() == 12), "{text}");
    assert!(lines[0].iter().all(|&c| c == '?'), "x_T: {:?}", lines[0]);
    for w in lines.windows(2) {
        for (a, b) in w[0].iter().zip(&w[1]) {
            assert!(*a == '?' || a == b, "an un-masked token changed: {text}");
        }
    }

    // Fork four steps back: the run continues from there with a new seed, and keeps the steps up to
    // the fork exactly.
    let kept = lines.len() - 4; // frames 0..kept stay
    for _ in 0..4 {
        h.get_by_label("< Step back").click();
        h.step();
    }
    h.get_by_label("Fork here").click();
    h.step();
    assert_eq!(status(&h)["recorded"].as_u64(), Some(kept as u64));
    run_until(&mut h, 3000, |s| {
        s["recorded"].as_u64() >= Some(kept as u64 + 5)
    });
    pause(&mut h);
    h.get_by_label("trajectory of the selected sequence")
        .click();
    h.step();
    let new_file = files_in(&dir)
        .into_iter()
        .find(|f| f != &files[0])
        .expect("a second export");
    let forked: Vec<Vec<char>> = std::fs::read_to_string(&new_file)
        .unwrap()
        .lines()
        .map(|l| l.chars().collect())
        .collect();
    assert!(
        forked.len() >= kept + 5,
        "{} lines after the fork",
        forked.len()
    );
    assert_eq!(
        &forked[..kept],
        &lines[..kept],
        "the steps before the fork are kept"
    );

    // The forward explorer: an example, its q(x_t | x0) and draws from it.
    h.get_by_label("forward process q(x_t | x0)").click();
    wait_for_label(&mut h, "draws of x_t", 200);
    assert!(h.query_by_label_contains("x0: \"").is_some());

    // Padding let free: the run starts again (from x_T, paused as it was), drawing wherever the
    // model puts a pad.
    h.get_by_label("forward process q(x_t | x0)").click();
    h.get_by_label("padding only ends a word").click();
    run_until(&mut h, 3000, |s| {
        s["padding"] == "free" && s["recorded"].as_u64() == Some(1)
    });
    assert!(status(&h)["link"]
        .as_str()
        .unwrap()
        .contains("padding=free"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn graphs_export_as_json_with_valid_edges() {
    let dir = export_dir("graphs");
    let mut h = harness(Start::Shipped("planar-digress".into()), &dir);
    run_until(&mut h, 3000, |s| s["recorded"].as_u64() >= Some(3));
    // How undecided the network is about the viewed step's pairs, in bits (binary entropy).
    let e = status(&h)["entropy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&e) && e > 0.0, "{e}");
    assert!(h
        .query_by_label_contains("The network's uncertainty")
        .is_some());
    h.get_by_label("graphs (viewed step, JSON)").click();
    h.step();
    let files = files_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(v["model"], "planar-digress");
    let graphs = v["graphs"].as_array().unwrap();
    assert_eq!(graphs.len(), 4, "the app's default batch");
    for g in graphs {
        let n = g["num_nodes"].as_u64().unwrap();
        assert!(n >= 1);
        assert_eq!(g["node_classes"].as_array().unwrap().len() as u64, n);
        for e in g["edges"].as_array().unwrap() {
            let (i, j) = (e[0].as_u64().unwrap(), e[1].as_u64().unwrap());
            assert!(i < j && j < n, "edge {e} in a graph of {n} nodes");
            assert!(e[2].as_u64().unwrap() >= 1, "edge class 0 means no edge");
        }
    }

    // Fork from one step back: the graphs are uploaded from the host copy and the run goes on.
    pause(&mut h);
    let r = status(&h)["recorded"].as_u64().unwrap();
    h.get_by_label("< Step back").click();
    h.step();
    h.get_by_label("Fork here").click();
    h.step();
    assert_eq!(status(&h)["recorded"].as_u64(), Some(r - 1));
    run_until(&mut h, 3000, |s| s["recorded"].as_u64() >= Some(r + 1));

    // The forward explorer: a held-out data graph and a draw of q(G_t | G_0) beside it.
    h.get_by_label("forward process q(G_t | G_0)").click();
    wait_for_label(&mut h, "G_t ~ q(G_t | G_0)", 300);
    assert!(h.query_by_label_contains("G_0 (a data graph)").is_some());

    // Your own graph: it starts as the data graph shown; clear its edges, then click node 0 and
    // node 3 to join them, and again to part them. The draw of q(G_t | G_0) follows each edit.
    h.get_by_label("your own graph").click();
    run_until(&mut h, 300, |s| s["input"]["edges"].as_u64() > Some(0));
    h.get_by_label("clear edges").click();
    run_until(&mut h, 300, |s| {
        s["input"]["edges"] == 0 && s["input"]["drawn"].as_array().is_some_and(|d| d.len() > 3)
    });
    let node = |h: &Harness<'_, DiffscopeApp>, i: usize| {
        let p = &status(h)["input"]["drawn"][i];
        egui::pos2(p[0].as_f64().unwrap() as f32, p[1].as_f64().unwrap() as f32)
    };
    let click = |h: &mut Harness<'_, DiffscopeApp>, at: egui::Pos2| {
        h.hover_at(at);
        h.drag_at(at);
        h.drop_at(at);
        h.step();
        h.step();
    };
    for want in [1u64, 0] {
        let (a, b) = (node(&h, 0), node(&h, 3));
        click(&mut h, a);
        assert_eq!(
            status(&h)["input"]["selected"],
            0,
            "the first click selects"
        );
        click(&mut h, b);
        run_until(&mut h, 300, |s| s["input"]["edges"].as_u64() == Some(want));
        assert!(status(&h)["input"]["selected"].is_null());
    }
    wait_for_label(&mut h, "G_t ~ q(G_t | G_0)", 300);

    // Denoise from t (SDEdit): the run starts at G_t, T − t = 375 steps in (planar-digress: T 500,
    // the explorer opens at T/4), and goes on from there — far fewer frames than a run from z_T.
    h.get_by_label("denoise G_t from t").click();
    run_until(&mut h, 200, |s| s["recorded"].as_u64() >= Some(378));
    assert!(
        h.query_by_label("G_t ~ q(G_t | G_0)").is_none(),
        "back on the reverse run"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_model_folder_and_a_missing_device_are_errors_in_the_ui() {
    let dir = export_dir("errors");
    let mut h = harness(Start::Dir("/nonexistent/diffscope-model".into()), &dir);
    h.step();
    assert!(
        h.query_by_label_contains("error:").is_some(),
        "{}",
        status(&h)
    );
    assert!(status(&h)["error"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/diffscope-model"));

    let app = DiffscopeApp::with_device(
        Err("no adapter here".into()),
        Start::Shipped("toy2d-mlp".into()),
    );
    let mut h = Harness::builder()
        .with_size([800.0, 600.0])
        .build_ui_state(|ui, app: &mut DiffscopeApp| app.show(ui), app);
    h.step();
    assert!(h.query_by_label_contains("no adapter here").is_some());
}

/// Lose the app's device after `lose_at` recorded steps, press the recovery button, and check the run
/// carries on on a new device exactly as an uninterrupted run does (state `check_at`, bit for bit).
fn recovery_continues_exactly(model: &str, lose_at: u64, check_at: usize) {
    let dir = export_dir("recover");
    let mut a = harness(Start::Shipped(model.into()), &dir);
    run_until(&mut a, 4000, |s| {
        s["recorded"].as_u64() > Some(check_at as u64)
    });
    pause(&mut a);
    let want = a.state().recorded_state(check_at).expect("reference state");
    drop(a);

    let mut b = harness(Start::Shipped(model.into()), &dir);
    run_until(&mut b, 4000, |s| s["recorded"].as_u64() >= Some(lose_at));
    b.state()
        .device()
        .and_then(diffscope::Device::gpu)
        .expect("a GPU device")
        .device()
        .destroy();
    wait_for_label(&mut b, "Open a new GPU device and continue", 400);
    // egui ignores a click on a widget in the frame it first appears (no user could make one).
    b.step();
    let err = status(&b)["error"].as_str().unwrap_or_default().to_string();
    assert!(
        err.contains("lost"),
        "{model}: the error says the device was lost: {err}"
    );
    b.get_by_label("Open a new GPU device and continue").click();
    b.step();
    assert!(status(&b)["error"].is_null(), "{model}: {}", status(&b));
    run_until(&mut b, 4000, |s| {
        s["recorded"].as_u64() > Some(check_at as u64)
    });
    pause(&mut b);
    let got = b
        .state()
        .recorded_state(check_at)
        .expect("state after recovery");
    assert_eq!(got.len(), want.len());
    let differ = got
        .iter()
        .zip(&want)
        .filter(|(g, w)| g.to_bits() != w.to_bits())
        .count();
    assert_eq!(
        differ,
        0,
        "{model}: {differ} of {} values differ at step {check_at}",
        want.len()
    );
}

#[test]
fn compute_switches_between_gpu_and_cpu_and_the_run_goes_on() {
    let dir = export_dir("switch");
    let mut h = harness(Start::Shipped("toy2d-mlp".into()), &dir);
    run_until(&mut h, 4000, |s| s["recorded"].as_u64() >= Some(3));
    assert_eq!(status(&h)["backend"], "gpu");
    for (label, backend) in [("CPU", "cpu"), ("GPU", "gpu")] {
        let before = status(&h)["recorded"].as_u64().unwrap();
        h.get_by_label(label).click();
        h.step();
        let s = status(&h);
        assert_eq!(s["backend"], backend, "after clicking {label}: {s}");
        // The run carries on from where it was on the new device.
        run_until(&mut h, 4000, |s| s["recorded"].as_u64() >= Some(before + 3));
        assert_eq!(status(&h)["model"], "toy2d-mlp");
    }
}

#[test]
fn a_lost_device_is_reported_and_the_run_resumes_exactly_on_a_new_one() {
    recovery_continues_exactly("toy2d-mlp", 3, 8);
    recovery_continues_exactly("words-absorb", 4, 10);
    recovery_continues_exactly("planar-digress", 2, 4);
}

#[test]
fn image_model_shows_x_t_x0_pred_and_eps_pred_and_exports_them() {
    let dir = export_dir("images");
    let mut h = harness(Start::Shipped("mnist-unet".into()), &dir);
    run_until(&mut h, 4000, |s| s["recorded"].as_u64() >= Some(3));
    pause(&mut h);
    for caption in ["x_t (t = ", "x0_pred: the network", "ε_pred: the noise"] {
        assert!(
            h.query_all_by_label_contains(caption).count() >= 1,
            "no \"{caption}\" panel"
        );
    }
    assert!(
        h.query_by_label_contains("UI frame").is_some(),
        "the frame time is shown"
    );
    let frames = status(&h)["ui_frames"]["frames"].as_u64().unwrap_or(0);
    assert!(frames >= 3, "frame stats: {}", status(&h));

    h.get_by_label("frame (PNG)").click();
    h.step();
    let files = files_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let mut dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&files[0]).unwrap(),
    ));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    let (w, hgt) = (info.width as usize, info.height as usize);
    let bpp = info.line_size / w;
    // Three square grids side by side (x_t | x0_pred | ε_pred) with 2-pixel gaps, upscaled 4×.
    let panel = (w - 2 * 2 * 4) / 3;
    assert_eq!(panel, hgt, "{w}×{hgt}: three square panels");
    let grey = |x: usize, y: usize| buf[y * info.line_size + x * bpp] as f64;
    let stats = |p: usize| {
        let x0 = p * (panel + 8);
        let v: Vec<f64> = (0..hgt)
            .flat_map(|y| (x0..x0 + panel).map(move |x| (x, y)))
            .map(|(x, y)| grey(x, y))
            .collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        (m, sd, v)
    };
    let (xt, x0, eps) = (stats(0), stats(1), stats(2));
    for (name, s) in [("x_t", &xt), ("x0_pred", &x0), ("ε_pred", &eps)] {
        assert!(
            s.1 > 5.0,
            "{name} panel is flat: mean {:.1}, sd {:.1}",
            s.0,
            s.1
        );
    }
    assert_ne!(xt.2, x0.2, "x0_pred differs from x_t");
    assert_ne!(xt.2, eps.2, "ε_pred differs from x_t");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_sampler_menu_runs_every_sampler() {
    let dir = export_dir("sampler-menu");
    let mut h = harness(Start::Shipped("toy2d-mlp".into()), &dir);
    run_until(&mut h, 2000, |s| s["recorded"].as_u64() >= Some(2));
    for name in ["dpm++2m", "heun", "pndm", "euler-a"] {
        h.get_by_label("sampler").click();
        // The popup opens on the next frame and lays out on the one after.
        h.step();
        h.step();
        h.get_by_label(name).click();
        h.step();
        run_until(&mut h, 4000, |s| {
            s["sampler"] == name && s["recorded"].as_u64() >= Some(3)
        });
        let s = status(&h);
        assert!(s["last_finite"].as_bool().unwrap(), "{name}: {s}");
        if name == "heun" {
            // Two evaluations per step but the last: the timeline counts evaluations.
            let steps = s["total"].as_u64().unwrap() - 1;
            assert_eq!(steps % 2, 1, "{name}: {s}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_samplers_runs_the_same_x_t_through_each_side_by_side() {
    let dir = export_dir("compare");
    let mut h = harness(Start::Shipped("mnist-unet".into()), &dir);
    run_until(&mut h, 2000, |s| s["recorded"].as_u64() >= Some(1));
    h.get_by_label("compare runs side by side").click();
    run_until(&mut h, 6000, |s| {
        s["compare"]
            .as_array()
            .is_some_and(|c| c.len() == 4 && c.iter().all(|r| r["recorded"].as_u64() >= Some(3)))
    });
    let s = status(&h);
    let names: Vec<&str> = s["compare"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sampler"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ddim", "dpm++2m", "euler-a", "heun"], "{s}");
    // Heun evaluates the network twice per step but the last.
    let evals = |name: &str| {
        s["compare"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["sampler"] == name)
            .unwrap()["evaluations"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(evals("heun"), 2 * evals("ddim") - 1, "{s}");
    // How far each run is from the first at the viewed stage: 0 for the first itself, and the
    // stochastic euler-a (fresh noise every step) away from the deterministic ddim.
    let rms = |name: &str| {
        s["compare"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["sampler"] == name)
            .unwrap()["rms_from_first"]
            .as_f64()
    };
    assert_eq!(rms("ddim"), Some(0.0), "{s}");
    assert!(rms("euler-a").is_some_and(|r| r > 0.0), "{s}");
    for caption in ["RMS distance from ddim", "follow the pixel at row"] {
        assert!(
            h.query_by_label_contains(caption).is_some(),
            "no \"{caption}\" under the columns"
        );
    }
    for caption in ["x0_pred", "model evaluations"] {
        assert!(
            h.query_all_by_label_contains(caption).count() >= 4,
            "no \"{caption}\" in every column"
        );
    }
    // A sampler added to the comparison joins it.
    h.get_by_label("unipc").click();
    run_until(&mut h, 4000, |s| {
        s["compare"].as_array().is_some_and(|c| c.len() == 5)
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compared_runs_can_differ_in_one_setting_from_the_same_x_t() {
    let compared = |h: &Harness<'_, DiffscopeApp>| -> Vec<serde_json::Value> {
        status(h)["compare"].as_array().cloned().unwrap_or_default()
    };
    let settle = |h: &mut Harness<'_, DiffscopeApp>, runs: usize| {
        run_until(h, 6000, |s| {
            s["compare"].as_array().is_some_and(|c| {
                c.len() == runs
                    && c.iter().all(|r| {
                        r["recorded"].as_u64() > r["evaluations"].as_u64()
                            && r["rms_from_first"].is_number()
                    })
            })
        });
    };
    // Runs that differ in their noise seed share x_T: DDIM at η = 0 draws no noise after it, so
    // the three runs are one run, bit for bit; DDPM draws fresh noise every step, so they part.
    let mut h = linked("?model=mnist-unet&n=2&sampler=ddim&eta=0&steps=8&label=3&vary=seed:0,1,2");
    settle(&mut h, 3);
    let runs = compared(&h);
    let labels: Vec<&str> = runs.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["noise seed 0", "noise seed 1", "noise seed 2"]);
    for r in &runs {
        assert_eq!(r["rms_from_first"].as_f64(), Some(0.0), "{r}");
        assert_eq!(r["sampler"], "ddim", "{r}");
    }
    let link = status(&h)["link"].as_str().unwrap_or_default().to_string();
    assert!(
        link.contains("vary=seed%3A0%2C1%2C2") || link.contains("vary=seed:0,1,2"),
        "{link}"
    );
    let mut h = linked("?model=mnist-unet&n=2&sampler=ddpm&steps=8&label=3&vary=seed:0,1");
    settle(&mut h, 2);
    let runs = compared(&h);
    assert!(
        runs[1]["rms_from_first"].as_f64().unwrap() > 0.01,
        "{runs:?}"
    );
    // Guidance: one run per weight, the rest of the settings the run's own.
    let mut h = linked("?model=mnist-unet&n=2&sampler=ddim&steps=6&label=3&vary=guidance:0,3");
    settle(&mut h, 2);
    let runs = compared(&h);
    let w: Vec<Option<f64>> = runs.iter().map(|r| r["guidance"].as_f64()).collect();
    assert_eq!(w, [Some(0.0), Some(3.0)], "{runs:?}");
    assert!(
        runs.iter()
            .all(|r| r["steps"] == 6 && r["sampler"] == "ddim"),
        "{runs:?}"
    );
    assert!(
        runs[1]["rms_from_first"].as_f64().unwrap() > 0.01,
        "{runs:?}"
    );
    // A setting the model cannot vary says why instead of running.
    let mut h = linked("?model=toy2d-mlp&n=64&sampler=heun&steps=10&vary=eta:0,1");
    for _ in 0..30 {
        h.run_steps(1);
    }
    assert!(compared(&h).is_empty());
    assert!(
        h.query_by_label_contains("η is DDIM's; this run's sampler is heun")
            .is_some(),
        "the refusal is not shown"
    );
}

#[test]
fn a_multistep_run_moved_to_the_cpu_and_back_is_the_same_run() {
    // Reference: DPM-Solver++ on the GPU, uninterrupted.
    let dir = export_dir("switch-dpm");
    let pick = |h: &mut Harness<'_, DiffscopeApp>| {
        h.get_by_label("sampler").click();
        h.step();
        h.step();
        h.get_by_label("dpm++2m").click();
        h.step();
    };
    let check_at = 12;
    let mut a = harness(Start::Shipped("toy2d-mlp".into()), &dir);
    pick(&mut a);
    run_until(&mut a, 4000, |s| {
        s["sampler"] == "dpm++2m" && s["recorded"].as_u64() > Some(check_at as u64)
    });
    pause(&mut a);
    let want = a.state().recorded_state(check_at).expect("reference state");
    drop(a);
    // The same run moved to the CPU backend after a few steps, then back to the GPU.
    let mut b = harness(Start::Shipped("toy2d-mlp".into()), &dir);
    pick(&mut b);
    run_until(&mut b, 4000, |s| {
        s["sampler"] == "dpm++2m" && s["recorded"].as_u64() >= Some(4)
    });
    pause(&mut b);
    for (label, backend) in [("CPU", "cpu"), ("GPU", "gpu")] {
        b.get_by_label(label).click();
        b.step();
        assert_eq!(status(&b)["backend"], backend);
        // egui ignores a click in the frame after a layout change; let the new device settle.
        for _ in 0..3 {
            b.step();
        }
    }
    b.get_by_label("Play").click();
    run_until(&mut b, 4000, |s| {
        s["recorded"].as_u64() > Some(check_at as u64)
    });
    pause(&mut b);
    let got = b
        .state()
        .recorded_state(check_at)
        .expect("state after the moves");
    let differ = got
        .iter()
        .zip(&want)
        .filter(|(g, w)| g.to_bits() != w.to_bits())
        .count();
    assert_eq!(
        differ,
        0,
        "{differ} of {} values differ at step {check_at}",
        want.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_link_sets_the_sampler_batch_and_seed_of_the_model_it_opens() {
    let dir = export_dir("link");
    let g = Gpu::new(&Default::default())
        .map(diffscope::Device::Gpu)
        .map_err(|e| e.to_string());
    let link = diffscope::app::Link::parse(
        "?model=mnist-unet&sampler=dpm%2B%2B2m&steps=12&n=1&guidance=1&seed=5&label=7&bogus=1",
    );
    let app = DiffscopeApp::with_device(g, Start::Shipped("mnist-unet".into()))
        .with_export_dir(&dir)
        .with_link(link);
    let mut h = Harness::builder()
        .with_size([1280.0, 900.0])
        .build_ui_state(|ui, app: &mut DiffscopeApp| app.show(ui), app);
    run_until(&mut h, 4000, |s| s["recorded"].as_u64() >= Some(2));
    let s = status(&h);
    assert_eq!(s["sampler"], "dpm++2m", "{s}");
    assert_eq!(s["total"].as_u64(), Some(13), "12 steps: {s}");
    let x_t = h.state().recorded_state(0).unwrap();
    assert_eq!(x_t.len(), 28 * 28, "one image");
    // The link's seed is the run's: another seed starts from another x_T.
    let first = x_t.clone();
    drop(h);
    let g = Gpu::new(&Default::default())
        .map(diffscope::Device::Gpu)
        .map_err(|e| e.to_string());
    let app = DiffscopeApp::with_device(g, Start::Shipped("mnist-unet".into())).with_link(
        diffscope::app::Link::parse("seed=6&n=1&sampler=dpm%2B%2B2m&steps=12"),
    );
    let mut h = Harness::builder()
        .with_size([1280.0, 900.0])
        .build_ui_state(|ui, app: &mut DiffscopeApp| app.show(ui), app);
    run_until(&mut h, 4000, |s| s["recorded"].as_u64() >= Some(1));
    let other = h.state().recorded_state(0).unwrap();
    assert_eq!(other.len(), first.len());
    assert_ne!(other, first, "seed 6 and seed 5 start from the same x_T");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_link_sets_a_sequence_models_temperature_and_batch() {
    let g = Gpu::new(&Default::default())
        .map(diffscope::Device::Gpu)
        .map_err(|e| e.to_string());
    let app = DiffscopeApp::with_device(g, Start::Shipped("words-absorb".into())).with_link(
        diffscope::app::Link::parse("temperature=1.25&n=3&seed=9&unmask=confident&padding=free"),
    );
    let mut h = Harness::builder()
        .with_size([1280.0, 900.0])
        .build_ui_state(|ui, app: &mut DiffscopeApp| app.show(ui), app);
    run_until(&mut h, 4000, |s| s["recorded"].as_u64() >= Some(2));
    let s = status(&h);
    assert_eq!(s["temperature"].as_f64(), Some(1.25), "{s}");
    assert_eq!(s["unmask"], "confident", "{s}");
    assert_eq!(s["padding"], "free", "{s}");
    let link = s["link"].as_str().unwrap();
    assert!(
        link.contains("unmask=confident") && link.contains("padding=free"),
        "{s}"
    );
    let x_t = h.state().recorded_state(0).unwrap();
    assert_eq!(x_t.len(), 3 * 12, "three sequences of 12: {s}");
    // The run ends with every position revealed (the mask is class 27), and a revealed token
    // never changes.
    run_until(&mut h, 20000, |s| s["recorded"] == s["total"]);
    let total = status(&h)["total"].as_u64().unwrap() as usize;
    let last = h.state().recorded_state(total - 1).unwrap();
    assert!(last.iter().all(|&v| v != 27.0), "masks left: {last:?}");
    for k in 1..total {
        let (a, b) = (
            h.state().recorded_state(k - 1).unwrap(),
            h.state().recorded_state(k).unwrap(),
        );
        for (x, y) in a.iter().zip(&b) {
            assert!(*x == 27.0 || x == y, "step {k}: a revealed token changed");
        }
    }
}

/// The app opened on `link` (its own device), as the page opens its address.
fn linked(link: &str) -> Harness<'static, DiffscopeApp> {
    let g = Gpu::new(&Default::default())
        .map(diffscope::Device::Gpu)
        .map_err(|e| e.to_string());
    let link = diffscope::app::Link::parse(link);
    let model = link.opens().unwrap();
    let app = DiffscopeApp::with_device(g, Start::Shipped(model)).with_link(link);
    Harness::builder()
        .with_size([1280.0, 900.0])
        .build_ui_state(|ui, app: &mut DiffscopeApp| app.show(ui), app)
}

#[test]
fn the_apps_link_follows_its_state_and_reopens_the_same_frame() {
    let mut h = linked(
        "?model=mnist-unet&n=1&sampler=ddim&steps=10&eta=0.5&guidance=2&label=4&seed=11&step=5",
    );
    let held_at = |k: u64| move |s: &serde_json::Value| s["playing"] == false && s["viewed"] == k;
    run_until(&mut h, 4000, held_at(5));
    // The user steps back: the link names the step now viewed, with every setting of the run.
    h.get_by_label("< Step back").click();
    run_until(&mut h, 50, held_at(4));
    let query = status(&h)["link"].as_str().unwrap().to_string();
    let link = diffscope::app::Link::parse(&query);
    assert_eq!(link.model.as_deref(), Some("mnist-unet"), "{query}");
    assert_eq!(
        (link.seed, link.n, link.steps, link.label, link.step),
        (Some(11), Some(1), Some(10), Some(4), Some(4)),
        "{query}"
    );
    assert_eq!(link.sampler.as_deref(), Some("ddim"), "{query}");
    assert_eq!((link.eta, link.guidance), (Some(0.5), Some(2.0)), "{query}");
    let frame = h.state().recorded_state(4).unwrap();
    // What the next session reopens: the same settings, playing from x_T.
    assert_eq!(
        h.state().resume_link().as_deref(),
        Some(query.trim_end_matches("&step=4")),
        "{query}"
    );
    drop(h);
    // Opened elsewhere, the link shows that frame, bit for bit, and links to itself.
    let mut h = linked(&query);
    run_until(&mut h, 4000, held_at(4));
    assert_eq!(status(&h)["link"].as_str(), Some(query.as_str()));
    let again = h.state().recorded_state(4).unwrap();
    assert!(
        frame
            .iter()
            .zip(&again)
            .all(|(a, b)| a.to_bits() == b.to_bits())
            && frame.len() == again.len(),
        "the linked frame differs"
    );
    // A lesson links to its step, and nothing else.
    let mut h = linked("?lesson=dna-motifs&lesson_step=2");
    run_until(&mut h, 4000, |s| s["lesson"]["step"].as_u64() == Some(2));
    assert_eq!(
        status(&h)["link"].as_str(),
        Some("lesson=dna-motifs&lesson_step=2")
    );
}

#[test]
fn on_a_narrow_screen_the_controls_are_a_drawer() {
    let dir = export_dir("narrow");
    let g = Gpu::new(&Default::default())
        .map(diffscope::Device::Gpu)
        .map_err(|e| e.to_string());
    let app = DiffscopeApp::with_device(g, Start::Shipped("toy2d-mlp".into()));
    // A phone's width in points.
    let mut h = Harness::builder()
        .with_size([390.0, 800.0])
        .build_ui_state(|ui, app: &mut DiffscopeApp| app.show(ui), app);
    run_until(&mut h, 4000, |s| s["recorded"].as_u64() >= Some(2));
    let s = status(&h);
    assert_eq!(s["layout"]["narrow"], true, "{s}");
    assert_eq!(
        s["layout"]["drawer_open"], false,
        "the drawer starts closed: {s}"
    );
    assert_eq!(s["layout"]["large_targets"], true, "{s}");
    assert!(
        h.query_by_label("new seed").is_none(),
        "the side panel shows while closed"
    );
    let closed_width = s["layout"]["view_width"].as_f64().unwrap();
    assert!(closed_width > 350.0, "the view takes the width: {s}");
    h.get_by_label("Controls").click();
    run_until(&mut h, 100, |s| s["layout"]["drawer_open"] == true);
    wait_for_label(&mut h, "new seed", 50);
    assert_eq!(
        status(&h)["layout"]["view_width"].as_f64(),
        Some(closed_width),
        "the drawer lies over the view instead of shrinking it"
    );
    // Its controls work from the drawer: a new seed restarts the run.
    h.get_by_label("new seed").click();
    run_until(&mut h, 4000, |s| s["recorded"].as_u64() >= Some(2));
    h.get_by_label("Hide controls").click();
    run_until(&mut h, 100, |s| s["layout"]["drawer_open"] == false);
    // A tap on the view beside the open drawer closes it.
    wait_for_label(&mut h, "Controls", 50);
    h.get_by_label("Controls").click();
    run_until(&mut h, 100, |s| s["layout"]["drawer_open"] == true);
    let beside = egui::pos2(370.0, 500.0);
    h.hover_at(beside);
    h.drag_at(beside);
    h.drop_at(beside);
    run_until(&mut h, 100, |s| s["layout"]["drawer_open"] == false);
    // Widened, the panel is back for good.
    h.set_size(egui::vec2(1280.0, 900.0));
    run_until(&mut h, 100, |s| {
        s["layout"]["narrow"] == false && s["layout"]["drawer_open"] == true
    });
    assert!(h.query_by_label("Controls").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run frames until the lesson's step has shown its view and the run has stopped where the step
/// holds it (or, for a forward step, the explorer is up).
fn lesson_settles(h: &mut Harness<'_, DiffscopeApp>, step: u64) {
    run_until(h, 20000, |s| {
        s["lesson"]["step"].as_u64() == Some(step)
            && s["lesson"]["waiting"] == false
            && (s["forward_t"].is_u64() || s["playing"] == false)
    });
}

#[test]
fn a_lesson_is_followed_end_to_end_through_its_panel() {
    let dir = export_dir("lesson");
    let g = Gpu::new(&Default::default())
        .map(diffscope::Device::Gpu)
        .map_err(|e| e.to_string());
    let lesson = diffscope::lessons::find("reverse-step").unwrap();
    let held: Vec<u64> = lesson
        .steps
        .iter()
        .map(|s| match s.view {
            diffscope::lessons::View::ReverseAt(k) => k as u64,
            _ => panic!("every step of reverse-step holds the run at a step"),
        })
        .collect();
    let app = DiffscopeApp::with_device(g, Start::Shipped("mnist-unet".into()))
        .with_export_dir(&dir)
        .with_lesson(lesson, 0);
    let mut h = Harness::builder()
        .with_size([1280.0, 900.0])
        .build_ui_state(|ui, app: &mut DiffscopeApp| app.show(ui), app);
    lesson_settles(&mut h, 1);
    let s = status(&h);
    assert_eq!(
        (s["model"].as_str(), s["sampler"].as_str()),
        (Some("mnist-unet"), Some("ddpm")),
        "{s}"
    );
    assert_eq!(
        s["total"].as_u64(),
        Some(51),
        "the step's 50 DDPM steps: {s}"
    );
    assert_eq!(s["viewed"].as_u64(), Some(held[0]), "{s}");
    let x_t = h.state().recorded_state(0).unwrap();
    assert_eq!(x_t.len(), 4 * 28 * 28, "the step's four images: {s}");
    h.get_by_label_contains("One reverse step");
    // Next through every step: the run plays on to each step's held step and pauses there, on the
    // same trajectory (the steps ask for the same settings, so nothing restarts).
    for (k, &at) in held.iter().enumerate().skip(1) {
        h.get_by_label("Next").click();
        lesson_settles(&mut h, k as u64 + 1);
        let s = status(&h);
        assert_eq!(s["viewed"].as_u64(), Some(at), "step {}: {s}", k + 1);
        assert!(s["recorded"].as_u64() > Some(at), "step {}: {s}", k + 1);
        assert_eq!(
            h.state().recorded_state(0).unwrap(),
            x_t,
            "step {} restarted the run",
            k + 1
        );
    }
    // The last step's view is the finished sample; Back shows an earlier step of the same run.
    assert_eq!(status(&h)["recorded"].as_u64(), Some(51));
    h.get_by_label("Back").click();
    lesson_settles(&mut h, held.len() as u64 - 1);
    assert_eq!(status(&h)["viewed"].as_u64(), Some(held[held.len() - 2]));
    h.get_by_label("close lesson").click();
    h.step();
    assert!(status(&h)["lesson"].is_null());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_lesson_step_looks_the_same_however_it_is_reached() {
    let lesson = diffscope::lessons::Lesson::parse(
        "test",
        r#"{"title": "T", "summary": "S", "steps": [
            {"title": "forward", "text": "t", "model": "toy2d-mlp", "settings": {"n": 64, "seed": 2}, "forward_t": 40},
            {"title": "ddim", "text": "t", "settings": {"sampler": "ddim", "steps": 20}, "at_step": 3},
            {"title": "words", "text": "t", "model": "words-absorb", "settings": {"n": 2, "temperature": 0.5}, "forward_t": 30}
        ]}"#,
    )
    .unwrap();
    let g = Gpu::new(&Default::default())
        .map(diffscope::Device::Gpu)
        .map_err(|e| e.to_string());
    let app =
        DiffscopeApp::with_device(g, Start::Shipped("toy2d-mlp".into())).with_lesson(lesson, 0);
    let mut h = Harness::builder()
        .with_size([1280.0, 900.0])
        .build_ui_state(|ui, app: &mut DiffscopeApp| app.show(ui), app);
    lesson_settles(&mut h, 1);
    let first = status(&h);
    assert_eq!(first["forward_t"].as_u64(), Some(40), "{first}");
    assert_eq!(first["sampler"], "ddpm", "{first}");
    h.get_by_label("Next").click();
    lesson_settles(&mut h, 2);
    let s = status(&h);
    assert_eq!(
        (s["sampler"].as_str(), s["total"].as_u64()),
        (Some("ddim"), Some(21)),
        "{s}"
    );
    assert!(
        s["forward_t"].is_null() && s["viewed"].as_u64() == Some(3),
        "{s}"
    );
    h.get_by_label("Next").click();
    lesson_settles(&mut h, 3);
    let s = status(&h);
    assert_eq!(
        (s["model"].as_str(), s["forward_t"].as_u64()),
        (Some("words-absorb"), Some(30)),
        "{s}"
    );
    assert_eq!(s["temperature"].as_f64(), Some(0.5), "{s}");
    // Back twice: step 1 again, with step 1's sampler (step 2's DDIM does not leak back).
    h.get_by_label("Back").click();
    lesson_settles(&mut h, 2);
    h.get_by_label("Back").click();
    lesson_settles(&mut h, 1);
    let s = status(&h);
    assert_eq!(
        (s["model"].as_str(), s["sampler"].as_str()),
        (Some("toy2d-mlp"), Some("ddpm")),
        "{s}"
    );
    assert_eq!(s["forward_t"].as_u64(), Some(40), "{s}");
    let x_t = h.state().recorded_state(0).unwrap();
    assert_eq!(x_t.len(), 64 * 2, "the lesson's 64 points: {s}");
}

#[test]
fn a_lesson_starts_from_the_side_panel_and_closes() {
    let dir = export_dir("lesson-list");
    let mut h = harness(Start::Shipped("toy2d-mlp".into()), &dir);
    run_until(&mut h, 2000, |s| s["recorded"].as_u64() >= Some(1));
    h.get_by_label_contains("Lessons (").click();
    h.step();
    h.get_by_label("The forward process: how noise erases data")
        .click();
    lesson_settles(&mut h, 1);
    let s = status(&h);
    assert_eq!(
        (s["model"].as_str(), s["forward_t"].as_u64()),
        (Some("mnist-unet"), Some(0)),
        "{s}"
    );
    assert_eq!(s["lesson"]["name"], "forward-process", "{s}");
    h.get_by_label("Next").click();
    lesson_settles(&mut h, 2);
    assert_eq!(status(&h)["forward_t"].as_u64(), Some(250));
    h.get_by_label("close lesson").click();
    h.step();
    let s = status(&h);
    assert!(s["lesson"].is_null(), "{s}");
    assert_eq!(
        s["forward_t"].as_u64(),
        Some(250),
        "closing a lesson leaves the app as it is: {s}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Mean squared difference.
fn mse(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>() / a.len() as f32
}

/// A vertical stroke down the middle of the open drawing canvas: a 1.
fn draw_a_one(h: &mut Harness<'_, DiffscopeApp>) {
    let r = h.get_by_label("drawing canvas").rect();
    let at = |v: f32| r.min + r.size() * egui::vec2(0.5, v);
    h.hover_at(at(0.2));
    h.step();
    h.drag_at(at(0.2));
    h.step();
    for i in 0..=12 {
        h.hover_at(at(0.2 + 0.6 * i as f32 / 12.0));
        h.step();
    }
    h.drop_at(at(0.8));
    h.step();
}

#[test]
fn a_drawing_is_inpainted_keeping_its_top_half() {
    let mut h = linked("?model=mnist-unet&n=2&steps=10&sampler=ddim&label=7&guidance=3&seed=3");
    run_until(&mut h, 2000, |s| s["recorded"].as_u64() >= Some(1));
    h.get_by_label("your own input").click();
    h.step();
    draw_a_one(&mut h);
    h.get_by_label("inpaint: keep").click();
    // The popup opens on the next frame and lays out on the one after.
    h.step();
    h.step();
    h.get_by_label("the top half").click();
    h.step();
    assert_eq!(status(&h)["input"]["keep"], "Top");
    h.get_by_label_contains("Denoise from t = 500").click();
    run_until(&mut h, 4000, |s| {
        s["input"]["active"] == true && s["total"].as_u64().is_some() && s["recorded"] == s["total"]
    });
    let drawn = h.state().own_input().unwrap();
    let last = h.state().recorded_state(10).unwrap();
    assert_eq!(last.len(), 2 * 28 * 28, "two copies");
    for (c, img) in last.chunks(28 * 28).enumerate() {
        // The kept top half is the drawing, exactly; the model drew the bottom half.
        for i in 0..14 * 28 {
            assert_eq!(
                img[i].to_bits(),
                drawn[i].to_bits(),
                "copy {c}, kept pixel {i}"
            );
        }
        let redrawn = (14 * 28..28 * 28).filter(|&i| img[i] != drawn[i]).count();
        assert!(
            redrawn > 100,
            "copy {c}: only {redrawn} pixels of the free half drawn"
        );
        assert!(img.iter().all(|v| v.is_finite()));
    }
    // Each copy draws its own bottom half.
    assert_ne!(&last[14 * 28..28 * 28], &last[28 * 28 + 14 * 28..]);
}

#[test]
fn a_drawn_digit_is_denoised_from_t() {
    let mut h = linked("?model=mnist-unet&n=1&steps=20&sampler=ddim&label=1&guidance=3&seed=3");
    run_until(&mut h, 2000, |s| s["recorded"].as_u64() >= Some(1));
    h.get_by_label("your own input").click();
    h.step();
    assert_eq!(status(&h)["input"]["editing"], true);
    draw_a_one(&mut h);
    assert_eq!(
        status(&h)["input"]["empty"],
        false,
        "the stroke reached the canvas"
    );
    h.get_by_label_contains("Denoise from t = 500").click();
    run_until(&mut h, 4000, |s| {
        s["input"]["active"] == true && s["total"].as_u64().is_some() && s["recorded"] == s["total"]
    });
    let s = status(&h);
    let drawn = h
        .state()
        .own_input()
        .expect("the run started from the drawing");
    let inked: Vec<usize> = (0..drawn.len()).filter(|&i| drawn[i] > 0.0).collect();
    assert!(inked.len() >= 15, "a stroke of {} pixels: {s}", inked.len());
    assert!(
        inked.iter().all(|i| (11..=17).contains(&(i % 28))),
        "the stroke is where it was drawn"
    );
    // DDIM 20 steps: timesteps 950, 900, …; the model's first step is the first at t ≤ 500.
    let k = s["input"]["from_step"].as_u64().unwrap() as usize;
    assert_eq!(k, 9, "{s}");
    let first = h.state().recorded_state(0).unwrap();
    let x_k = h.state().recorded_state(k).unwrap();
    let last = h.state().recorded_state(20).unwrap();
    // The drawing reached the model: the state it started from is the drawing under noise
    // (ᾱ_500 ≈ 0.08), nearer the drawing than the steps before it are.
    assert!(mse(&x_k, &drawn) < mse(&first, &drawn), "{s}");
    // The denoised result is closer to the data than the noised input: nearer to the drawing and to
    // the nearest MNIST example digit.
    let examples = {
        let bytes = diffscope::pipelines::zoo::find("mnist-unet")
            .unwrap()
            .data()
            .unwrap();
        let mut w = diffscope::weights::Weights::from_bytes(&bytes, "examples").unwrap();
        let shape = w.shape_of("images").unwrap().to_vec();
        w.take("images", &shape).unwrap().data
    };
    let nearest = |x: &[f32]| {
        examples
            .chunks(28 * 28)
            .map(|e| mse(x, e))
            .fold(f32::INFINITY, f32::min)
    };
    assert!(mse(&last, &drawn) < mse(&x_k, &drawn), "{s}");
    assert!(nearest(&last) < nearest(&x_k), "{s}");
    assert!(last.iter().all(|v| v.is_finite()));
}

#[test]
fn a_typed_word_with_masks_is_filled_in_and_its_letters_stay() {
    let g = Gpu::new(&Default::default())
        .map(diffscope::Device::Gpu)
        .map_err(|e| e.to_string());
    let app = DiffscopeApp::with_device(g, Start::Shipped("words-absorb".into()))
        .with_link(diffscope::app::Link::parse("n=3&seed=4&temperature=1"));
    let mut h = Harness::builder()
        .with_size([1280.0, 900.0])
        .build_ui_state(|ui, app: &mut DiffscopeApp| app.show(ui), app);
    run_until(&mut h, 2000, |s| s["recorded"].as_u64() >= Some(1));
    h.get_by_label("your own input").click();
    h.step();
    let field = h.get_by_label("your sequence");
    field.focus();
    h.step();
    h.key_combination_modifiers(egui::Modifiers::COMMAND, &[egui::Key::A]);
    h.get_by_label("your sequence").type_text("ga??en");
    h.step();
    assert_eq!(status(&h)["input"]["text"], "ga??en");
    h.get_by_label_contains("Denoise from t =").click();
    run_until(&mut h, 4000, |s| {
        s["input"]["active"] == true && s["total"].as_u64().is_some() && s["recorded"] == s["total"]
    });
    let s = status(&h);
    let typed = h
        .state()
        .own_input()
        .expect("the run started from the typed word");
    let mask = 27.0;
    assert_eq!(
        &typed[..6],
        &[7.0, 1.0, mask, mask, 5.0, 14.0],
        "g a ? ? e n: {s}"
    );
    let k = s["input"]["from_step"].as_u64().unwrap() as usize;
    assert!(k > 0, "{s}");
    let start = h.state().recorded_state(k).unwrap();
    let last = h
        .state()
        .recorded_state(s["total"].as_u64().unwrap() as usize - 1)
        .unwrap();
    assert_eq!(start.len(), 3 * 12);
    for (c, (x_k, x_0)) in start.chunks(12).zip(last.chunks(12)).enumerate() {
        for i in 0..12 {
            if x_k[i] == mask {
                assert_ne!(
                    x_0[i], mask,
                    "sequence {c} position {i} is still masked: {s}"
                );
            } else {
                // A letter (or pad) the model started from is never changed.
                assert_eq!(
                    x_k[i], typed[i],
                    "sequence {c} position {i}: the input's token"
                );
                assert_eq!(x_0[i], x_k[i], "sequence {c} position {i} changed: {s}");
            }
        }
        assert_eq!(
            (x_k[2], x_k[3]),
            (mask, mask),
            "the typed masks stay masks at t0"
        );
    }
}

#[test]
fn the_score_field_of_a_2d_model_points_back_towards_the_data() {
    let g = Gpu::new(&Default::default())
        .map(diffscope::Device::Gpu)
        .map_err(|e| e.to_string());
    let app = DiffscopeApp::with_device(g, Start::Shipped("toy2d-mlp".into())).with_link(
        diffscope::app::Link::parse("n=64&seed=1&label=2&steps=20&sampler=ddim"),
    );
    let mut h = Harness::builder()
        .with_size([1280.0, 900.0])
        .build_ui_state(|ui, app: &mut DiffscopeApp| app.show(ui), app);
    run_until(&mut h, 4000, |s| {
        s["recorded"] == s["total"] && s["total"] == 21
    });
    h.get_by_label("score field").click();
    // x_T's step, t = 190 (the first of DDIM's 20); the field there is nearly the Gaussian
    // prior's, −x/√(1−ᾱ_t): every border arrow points inwards.
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "viewed step")
        .set_value_accesskit(0.0);
    run_until(&mut h, 2000, |s| {
        s["score"]["ready"] == true && s["viewed"] == 0
    });
    let s = status(&h);
    let t_first = s["score"]["t"].as_u64().unwrap();
    assert!(t_first > 150, "{s}");
    assert!(s["score"]["inward_share"].as_f64().unwrap() > 0.95, "{s}");
    // A later step: another t, another field, computed when it is viewed.
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "viewed step")
        .set_value_accesskit(15.0);
    run_until(&mut h, 2000, |s| {
        s["score"]["ready"] == true && s["score"]["t"].as_u64().is_some_and(|t| t != t_first)
    });
    let s = status(&h);
    assert_eq!(s["viewed"].as_u64(), Some(15));
    assert!(s["score"]["t"].as_u64().unwrap() < t_first, "{s}");
    assert!(s["score"]["inward_share"].as_f64().unwrap() > 0.5, "{s}");
}

/// A latent diffusion folder (unet/, vqvae/, scheduler/) opens in the app: the run steps through
/// latents, and the viewed step's latent is decoded to an image panel — x_t by default, x0_pred when
/// chosen — whose shape is the decoder's (2× the 8 × 8 latent), never blocking the frames.
#[test]
fn a_latent_model_shows_its_decoded_latents() {
    let exports = export_dir("latent");
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ldm_tiny"
    ));
    let mut h = harness(Start::Dir(dir), &exports);
    run_until(&mut h, 3000, |s| {
        s["recorded"].as_u64().unwrap_or(0) >= 3 && s["decoded"]["step"].as_u64().is_some()
    });
    let s = status(&h);
    assert_eq!(s["decoded"]["source"], "x_t", "{s}");
    assert_eq!(s["decoded"]["shape"][2], 16, "{s}");
    assert_eq!(s["decoded"]["shape"][1], 3, "{s}");
    pause(&mut h);
    h.get_by_label("x0_pred").click();
    run_until(&mut h, 3000, |s| {
        s["decoded"]["source"] == "x0_pred" && s["decoded"]["busy"] == false
    });
    let s = status(&h);
    assert!(s["decoded"]["error"].is_null(), "{s}");
    assert!(
        s["decoded"]["min"].as_f64().unwrap().is_finite()
            && s["decoded"]["max"].as_f64().unwrap().is_finite(),
        "{s}"
    );
    let _ = std::fs::remove_dir_all(&exports);
}

/// The forward explorer shows what the model pays at each step for its example: the ELBO's KL term
/// at 32 timesteps, every one finite and non-negative, larger near the data than near pure noise.
#[test]
fn the_forward_explorer_shows_the_loss_at_each_step() {
    let dir = export_dir("loss-curve");
    let mut h = harness(Start::Shipped("toy2d-mlp".into()), &dir);
    run_until(&mut h, 2000, |s| s["recorded"].as_u64() >= Some(1));
    click_settled(&mut h, "forward process q(x_t | x0)");
    run_until(&mut h, 2000, |s| {
        s["loss_curve"]["points"].as_u64() == Some(32)
    });
    let s = status(&h);
    let c = &s["loss_curve"];
    assert_eq!(c["finite_non_negative"], true, "{s}");
    assert!(
        c["first"].as_f64().unwrap() > c["last"].as_f64().unwrap(),
        "the first steps cost the most: {s}"
    );
    assert!(c["total_bits_per_dim"].as_f64().unwrap() > 0.0, "{s}");
    assert!(h
        .query_by_label_contains("The ELBO's term at each step")
        .is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sequence forward explorer has the same curve: the ELBO's step terms for its example at 32
/// timesteps (`Process::step_kl`), for a D3PM and a multinomial model.
#[test]
fn the_sequence_forward_explorer_shows_the_loss_at_each_step() {
    for model in ["words-uniform", "promoter-multinomial"] {
        let dir = export_dir(&format!("seq-loss-{model}"));
        let mut h = harness(Start::Shipped(model.into()), &dir);
        run_until(&mut h, 2000, |s| s["recorded"].as_u64() >= Some(1));
        click_settled(&mut h, "forward process q(x_t | x0)");
        run_until(&mut h, 2000, |s| {
            s["loss_curve"]["points"].as_u64() == Some(32)
        });
        let s = status(&h);
        let c = &s["loss_curve"];
        assert_eq!(c["finite_non_negative"], true, "{model}: {s}");
        let total = c["total"].as_f64().unwrap();
        assert!(total > 0.0 && total.is_finite(), "{model}: {s}");
        assert!(
            h.query_by_label_contains("bits per token").is_some(),
            "{model}: no caption"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// And the graph forward explorer: the ELBO's step terms for its graph at 16 timesteps.
#[test]
fn the_graph_forward_explorer_shows_the_loss_at_each_step() {
    let mut h = linked("?lesson=digress-graphs&lesson_step=2");
    run_until(&mut h, 3000, |s| {
        s["loss_curve"]["points"].as_u64() == Some(16)
    });
    let s = status(&h);
    assert_eq!(s["model"], "planar-digress", "{s}");
    let c = &s["loss_curve"];
    assert_eq!(c["finite_non_negative"], true, "{s}");
    assert!(c["total"].as_f64().unwrap() > 0.0, "{s}");
    assert!(h.query_by_label_contains("bits per graph").is_some());
}

/// Sequence runs side by side: the same x_T under two un-masking orders (absorbing) or two
/// temperatures, stepping together; the first run against itself differs nowhere, the confident
/// order repeats itself more; an order on a model without a mask says why.
#[test]
fn sequence_runs_compare_side_by_side() {
    let runs = |h: &Harness<'_, DiffscopeApp>| -> Vec<serde_json::Value> {
        status(h)["compare"].as_array().cloned().unwrap_or_default()
    };
    let done = |s: &serde_json::Value| {
        s["compare"].as_array().is_some_and(|c| {
            c.len() == 2
                && c.iter()
                    .all(|r| r["recorded"].as_u64() > r["evaluations"].as_u64())
        })
    };
    let mut h = linked("?model=words-absorb&n=16&seed=5&vary=unmask:random,confident");
    run_until(&mut h, 6000, done);
    let c = runs(&h);
    assert_eq!(c[0]["unmask"], "random", "{c:?}");
    assert_eq!(c[1]["unmask"], "confident", "{c:?}");
    assert_eq!(c[0]["differs_from_first"].as_f64(), Some(0.0), "{c:?}");
    assert!(c[1]["differs_from_first"].as_f64().unwrap() > 0.0, "{c:?}");
    assert!(
        c[1]["distinct"].as_u64() <= c[0]["distinct"].as_u64(),
        "most-confident-first repeats itself at least as much: {c:?}"
    );
    assert!(status(&h)["link"]
        .as_str()
        .is_some_and(|l| l.contains("vary=unmask")));
    let mut h = linked("?model=promoter-multinomial&n=4&vary=temperature:1,0.5");
    run_until(&mut h, 6000, done);
    let t: Vec<f64> = runs(&h)
        .iter()
        .map(|r| r["temperature"].as_f64().unwrap())
        .collect();
    assert_eq!(t, [1.0, 0.5]);
    let mut h = linked("?model=words-uniform&vary=unmask:random,confident");
    h.run_steps(20);
    assert!(runs(&h).is_empty());
    assert!(h.query_by_label_contains("this one has no mask").is_some());
}

/// A first visit shows what every model makes above the default model's run: a thumbnail per
/// shipped model, decoded from its PNG; a click opens that model and puts the strip away; the side panel's
/// "thumbnails" brings it back. A model opened on purpose starts without it.
#[test]
fn a_first_visit_shows_every_models_thumbnail() {
    let dir = export_dir("landing");
    let mut h = harness(Start::FirstVisit, &dir);
    run_until(&mut h, 2000, |s| {
        s["recorded"].as_u64() >= Some(1)
            && s["landing"]["thumbnails"].as_u64()
                == Some(diffscope::pipelines::zoo::MODELS.len() as u64)
    });
    assert!(h.query_by_label("open emoji-unet").is_some());
    let s = status(&h);
    assert_eq!(s["model"], "toy2d-mlp", "{s}");
    assert_eq!(s["landing"]["shown"], true, "{s}");
    click_settled(&mut h, "open mnist-unet");
    run_until(&mut h, 2000, |s| s["model"] == "mnist-unet");
    assert_eq!(status(&h)["landing"]["shown"], false);
    h.run_steps(2);
    assert!(h.query_by_label("open words-absorb").is_none());
    click_settled(&mut h, "thumbnails");
    run_until(&mut h, 50, |s| s["landing"]["shown"] == true);
    h.run_steps(2);
    assert!(h.query_by_label("open words-absorb").is_some());

    let plain = harness(Start::Shipped("toy2d-mlp".into()), &dir);
    assert_eq!(status(&plain)["landing"]["shown"], false);
    let _ = std::fs::remove_dir_all(&dir);
}

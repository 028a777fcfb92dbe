"""Parity fixtures for diffusers' samplers (diffusers 0.42.1 itself). Rerun with

    python tools/fixtures_samplers.py

Writes tests/fixtures/samplers/:
- cases.json: every case - the sampler's diffscope name, --karras, the steps, and the scheduler file
  (a dict that the diffusers class is built from with `Cls.from_config`, exactly as a user swaps
  schedulers; diffscope parses the same JSON).
- replay.safetensors: per case, the scheduler alone driven by fixed random "model outputs" (one per
  evaluation, independent of the input, so the run is linear in them and not chaotic): what the
  model would have been fed at each evaluation (`scale_model_input`'s output - the
  variance-preserving x_t), the timestep it would have seen, the noise each stochastic step drew, and
  the final sample.
- ve_trajectory.safetensors: the score-SDE (NCSN++-layout) random-weight UNet of
  tests/fixtures/unet_ncsnpp_like with google/ncsnpp-ffhq-1024's scheduler file, sampled for 5 steps
  by ScoreSdeVePipeline's loop: every model input (σ-space), the noise drawn and the final mean.
- trajectory.safetensors: the briefly trained UNet of tests/fixtures/ddim_trajectory (see its
  script) sampled for 20 steps by each sampler from the same x_T, plainly conditional and for two
  samplers with classifier-free guidance (w = 3): every model input and the final sample.
"""
import json
import os

import torch
import diffusers
from diffusers import (DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, HeunDiscreteScheduler, PNDMScheduler,
                       ScoreSdeVeScheduler, UNet2DModel, UniPCMultistepScheduler)
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(__file__)
OUT = os.path.join(HERE, "..", "tests", "fixtures", "samplers")
TRAJ = os.path.join(HERE, "..", "tests", "fixtures", "ddim_trajectory")

CLASSES = {
    "dpm++2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    "dpm++2m-sde": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++"}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler-a": (EulerAncestralDiscreteScheduler, {}),
    "heun": (HeunDiscreteScheduler, {}),
    "unipc": (UniPCMultistepScheduler, {}),
    "pndm": (PNDMScheduler, {}),
    "plms": (PNDMScheduler, {"skip_prk_steps": True}),
    "sde-ve": (ScoreSdeVeScheduler, {}),
}

# google/ncsnpp-ffhq-1024's scheduler file (tests/fixtures/hub), and variations.
NCSNPP_FILE = {"_class_name": "ScoreSdeVeScheduler", "_diffusers_version": "0.1.1", "correct_steps": 1,
               "num_train_timesteps": 2000, "sampling_eps": 1e-05, "sigma_max": 1348, "sigma_min": 0.01,
               "snr": 0.15}

# A DDPMScheduler file as a pipeline folder ships it (mnist-unet's own settings), and a bare one
# whose missing fields each class fills with its own defaults.
DDPM_FILE = {"_class_name": "DDPMScheduler", "beta_end": 0.02, "beta_schedule": "linear",
             "beta_start": 0.0001, "clip_sample": True, "num_train_timesteps": 1000,
             "prediction_type": "epsilon", "steps_offset": 0, "timestep_spacing": "leading",
             "trained_betas": None, "variance_type": "fixed_small"}
BARE = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000}


def case(name, sampler, steps, file, karras=False):
    return dict(name=name, sampler=sampler, steps=steps, karras=karras, config=file)


CASES = [
    case("euler_ddpm_file", "euler", 20, DDPM_FILE),
    case("euler_bare_v", "euler", 12, dict(BARE, prediction_type="v_prediction")),
    case("euler_trailing_sample", "euler", 9, dict(BARE, prediction_type="sample", timestep_spacing="trailing")),
    case("euler_karras", "euler", 15, BARE, karras=True),
    case("euler_a_bare", "euler-a", 20, BARE),
    case("euler_a_v_leading", "euler-a", 10, dict(DDPM_FILE, prediction_type="v_prediction")),
    case("heun_ddpm_file_clip", "heun", 10, DDPM_FILE),
    case("heun_bare", "heun", 8, BARE),
    case("heun_karras_v", "heun", 7, dict(BARE, prediction_type="v_prediction", beta_start=0.0001, beta_end=0.02), karras=True),
    case("dpm_ddpm_file", "dpm++2m", 20, DDPM_FILE),
    case("dpm_bare_short", "dpm++2m", 7, BARE),
    case("dpm_karras_v", "dpm++2m", 15, dict(BARE, prediction_type="v_prediction"), karras=True),
    case("dpm_heun_sample_cosine", "dpm++2m", 10, dict(BARE, prediction_type="sample", solver_type="heun", beta_schedule="squaredcos_cap_v2")),
    case("dpm_order1_trailing", "dpm++2m", 10, dict(BARE, solver_order=1, timestep_spacing="trailing")),
    case("dpm_sde_bare", "dpm++2m-sde", 20, BARE),
    case("dpm_sde_karras_v", "dpm++2m-sde", 12, dict(BARE, prediction_type="v_prediction"), karras=True),
    case("unipc_ddpm_file", "unipc", 20, DDPM_FILE),
    case("unipc_bare_short", "unipc", 6, BARE),
    case("unipc_karras_v", "unipc", 15, dict(BARE, prediction_type="v_prediction"), karras=True),
    case("unipc_bh1_sample_trailing", "unipc", 10, dict(BARE, prediction_type="sample", solver_type="bh1", timestep_spacing="trailing")),
    case("unipc_order1", "unipc", 8, dict(BARE, solver_order=1)),
    case("unipc_disable_corrector", "unipc", 10, dict(BARE, disable_corrector=[0, 3])),
    case("pndm_ddpm_file", "pndm", 20, DDPM_FILE),
    case("pndm_v_linspace", "pndm", 10, dict(BARE, prediction_type="v_prediction", timestep_spacing="linspace")),
    case("plms_ddpm_file", "plms", 20, DDPM_FILE),
    case("plms_v_alpha_one", "plms", 12, dict(BARE, prediction_type="v_prediction", set_alpha_to_one=True)),
    case("sde_ve_ncsnpp_file", "sde-ve", 8, NCSNPP_FILE),
    case("sde_ve_two_corrections", "sde-ve", 6, dict(NCSNPP_FILE, sigma_max=50.0, snr=0.16, correct_steps=2, sampling_eps=1e-3)),
    case("sde_ve_no_corrector", "sde-ve", 10, dict(NCSNPP_FILE, sigma_max=348.0, correct_steps=0)),
]


def build(c):
    cls, extra = CLASSES[c["sampler"]]
    file = dict(c["config"])
    s = cls.from_config(file, **extra, **({"use_karras_sigmas": True} if c["karras"] else {}))
    s.set_timesteps(c["steps"])
    if c["sampler"] == "sde-ve":
        s.set_sigmas(c["steps"])
    return s


class NoiseTape:
    """Records every randn_tensor a scheduler draws (the stochastic steps' noise)."""

    def __init__(self):
        self.draws = []
        self.mods = [diffusers.schedulers.scheduling_euler_ancestral_discrete,
                     diffusers.schedulers.scheduling_dpmsolver_multistep,
                     diffusers.schedulers.scheduling_sde_ve]
        self.orig = [m.randn_tensor for m in self.mods]

    def __enter__(self):
        def rec(orig):
            def f(*a, **k):
                t = orig(*a, **k)
                self.draws.append(t.clone())
                return t
            return f
        for m, o in zip(self.mods, self.orig):
            m.randn_tensor = rec(o)
        return self

    def __exit__(self, *exc):
        for m, o in zip(self.mods, self.orig):
            m.randn_tensor = o


def run_ve(sched, x_T, model, generator):
    """ScoreSdeVePipeline's loop: per step, `correct_steps` Langevin corrections and a prediction,
    each after the model at the step's sigma; the result is the last prediction's mean."""
    x = x_T * sched.init_noise_sigma
    inputs, ts = [], []
    k = 0
    with NoiseTape() as tape:
        for i, t in enumerate(sched.timesteps):
            sigma_t = sched.sigmas[i] * torch.ones(x.shape[0])
            for _ in range(sched.config.correct_steps):
                inputs.append(x)
                ts.append(float(sched.sigmas[i]))
                x = sched.step_correct(model(x, sigma_t, k), x, generator=generator).prev_sample
                k += 1
            inputs.append(x)
            ts.append(float(sched.sigmas[i]))
            out = sched.step_pred(model(x, sigma_t, k), t, x, generator=generator)
            k += 1
            x, mean = out.prev_sample, out.prev_sample_mean
    return torch.stack(inputs), torch.tensor(ts, dtype=torch.float64), torch.stack(tape.draws), mean


def run(sched, x_T, model, generator):
    if isinstance(sched, ScoreSdeVeScheduler):
        return run_ve(sched, x_T, model, generator)
    x = x_T * sched.init_noise_sigma
    inputs, ts = [], []
    with NoiseTape() as tape:
        for k, t in enumerate(sched.timesteps):
            inp = sched.scale_model_input(x, t)
            inputs.append(inp)
            ts.append(float(t))
            out = model(inp, t, k)
            kw = {"generator": generator} if "generator" in sched.step.__code__.co_varnames else {}
            x = sched.step(out, t, x, **kw).prev_sample
    noise = torch.stack(tape.draws) if tape.draws else None
    return torch.stack(inputs), torch.tensor(ts, dtype=torch.float64), noise, x


def replay():
    g = torch.Generator().manual_seed(0)
    shape = (2, 3, 4)
    tensors = {}
    for c in CASES:
        s = build(c)
        n = len(s.timesteps)
        if c["sampler"] == "sde-ve":
            n *= s.config.correct_steps + 1
        outs = torch.randn((n,) + shape, generator=g)
        x_T = torch.randn(shape, generator=g)
        inputs, ts, noise, final = run(s, x_T, lambda inp, t, k: outs[k], torch.Generator().manual_seed(7))
        p = c["name"]
        tensors[f"{p}.x_T"] = x_T
        tensors[f"{p}.outputs"] = outs
        tensors[f"{p}.inputs"] = inputs
        tensors[f"{p}.timesteps"] = ts.float()
        if noise is not None:
            tensors[f"{p}.noise"] = noise
        # diffusers' UniPC with solver_type bh1 ends in NaN (B(h) = h = -inf at the final sigma 0,
        # times a zero correction); the model inputs before it are still compared.
        if torch.isfinite(final).all():
            tensors[f"{p}.final"] = final
        else:
            c["diffusers_final_not_finite"] = True
        print(f"{p}: {n} evaluations, init_noise_sigma {float(s.init_noise_sigma):.4f}")
    save_file(tensors, f"{OUT}/replay.safetensors")


def trajectory():
    unet = UNet2DModel.from_pretrained(f"{TRAJ}/unet").eval()
    file = json.load(open(f"{TRAJ}/scheduler/scheduler_config.json"))
    f = load_file(f"{TRAJ}/trajectory.safetensors")
    x_T, labels = f["x_T"], f["labels"].long()
    null = 3
    tensors = {"x_T": x_T, "labels": labels.int()}
    runs = []
    for sampler in [c for c in CLASSES if c != "sde-ve"]:  # a VP model: not the score-SDE sampler
        for guided in [False, True] if sampler in ("dpm++2m", "euler-a") else [False]:
            s = build(dict(sampler=sampler, steps=20, karras=False, config=file))

            def model(inp, t, k):
                with torch.no_grad():
                    if not guided:
                        return unet(inp, t, class_labels=labels).sample
                    both = unet(torch.cat([inp, inp]), t,
                                class_labels=torch.cat([labels, torch.full_like(labels, null)])).sample
                    cond, uncond = both.chunk(2)
                    return uncond + 3.0 * (cond - uncond)

            inputs, ts, noise, final = run(s, x_T, model, torch.Generator().manual_seed(11))
            p = f"{sampler}.{'guided' if guided else 'plain'}"
            tensors[f"{p}.inputs"] = inputs
            tensors[f"{p}.timesteps"] = ts.float()
            if noise is not None:
                tensors[f"{p}.noise"] = noise
            tensors[f"{p}.final"] = final
            runs.append(p)
            print(f"{p}: {len(ts)} evaluations, final range {float(final.min()):.3f}..{float(final.max()):.3f}")
    save_file(tensors, f"{OUT}/trajectory.safetensors")
    return runs


def ve_trajectory():
    d = os.path.join(HERE, "..", "tests", "fixtures", "unet_ncsnpp_like")
    unet = UNet2DModel.from_pretrained(d).eval()
    s = ScoreSdeVeScheduler.from_config(json.load(open(f"{d}/scheduler_config.json")))
    s.set_timesteps(5)
    s.set_sigmas(5)
    x_T = torch.randn((2, 3, 8, 8), generator=torch.Generator().manual_seed(3))

    def model(inp, sigma, k):
        with torch.no_grad():
            return unet(inp, sigma).sample

    inputs, ts, noise, final = run_ve(s, x_T, model, torch.Generator().manual_seed(11))
    save_file({"x_T": x_T, "inputs": inputs, "timesteps": ts.float(), "noise": noise, "final": final},
              f"{OUT}/ve_trajectory.safetensors")
    print(f"ve: {len(ts)} evaluations, final range {float(final.min()):.3f}..{float(final.max()):.3f}")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    ve_trajectory()
    replay()
    runs = trajectory()
    json.dump(dict(diffusers=diffusers.__version__, cases=CASES, trajectory_runs=runs, guidance=3.0),
              open(f"{OUT}/cases.json", "w"), indent=1)

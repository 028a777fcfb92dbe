"""A whole 50-step DDIM (eta = 0) trajectory from diffusers 0.42.1 itself, for end-to-end parity of the
UNet, the plan and the step together. Rerun with

    python tools/fixtures_ddim_trajectory.py

Writes tests/fixtures/ddim_trajectory/, a diffusers pipeline folder that diffscope's --model-dir loads:
- unet/{config.json, diffusion_pytorch_model.safetensors}: a small class-conditional UNet2DModel in
  mnist-unet's layout (Down, AttnDown, AttnDown; the last class embedding is the null label), trained
  for a few hundred steps on 8x8 bars and diagonals (one per label, random position; 20 % null labels).
  Why trained: a random-weight UNet makes the DDIM ODE chaotic - diffusers' own float64 and float32
  runs of such a model end 9 % apart (and guided ones ~60 %), so no port could match it to 1e-3. A
  model that has learnt something contracts like a real one: float64 vs float32 here is ~1e-6 (printed
  below), so the Rust comparison measures diffscope, not chaos;
- scheduler/scheduler_config.json: mnist-unet's DDPMScheduler settings (linear, epsilon, clip_sample,
  fixed_small), which DDIMScheduler.from_config turns into a DDIM sampler as DDIMPipeline does;
- trajectory.safetensors: x_T, the labels, and every state x_50 .. x_0 of two runs of the diffusers
  loop (UNet forward + DDIMScheduler.step): plain conditional, and classifier-free guided with
  uncond + w (cond - uncond) (w = 3) formed in the loop from a doubled batch.
"""
import copy
import os

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "ddim_trajectory")
STEPS = 50
GUIDANCE = 3.0
LABELS = [0, 1, 2, 1]
NULL = 3


def run(unet, sched, x_t, labels, guidance):
    states = [x_t]
    x = x_t
    for t in sched.timesteps:
        with torch.no_grad():
            if guidance is None:
                eps = unet(x, t, class_labels=labels).sample
            else:
                both = unet(torch.cat([x, x]), t,
                            class_labels=torch.cat([labels, torch.full_like(labels, NULL)])).sample
                cond, uncond = both.chunk(2)
                eps = uncond + guidance * (cond - uncond)
        x = sched.step(eps, t, x, eta=0.0).prev_sample
        states.append(x)
    return torch.stack(states)


def patterns(n, g):
    """8x8 images in [-1, 1]: label 0 a horizontal bar, 1 a vertical bar, 2 a wrapped diagonal."""
    y = torch.randint(0, 3, (n,), generator=g)
    pos = torch.randint(1, 7, (n,), generator=g)
    x = torch.full((n, 1, 8, 8), -1.0)
    for i in range(n):
        p = int(pos[i])
        if y[i] == 0:
            x[i, 0, p, :] = 1
        elif y[i] == 1:
            x[i, 0, :, p] = 1
        else:
            x[i, 0] = torch.where(torch.eye(8).roll(p - 3, 1) > 0, 1.0, -1.0)
    return x, y


def train(unet, ddpm, steps=400):
    opt = torch.optim.Adam(unet.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x0, y = patterns(64, g)
        y = torch.where(torch.rand(64, generator=g) < 0.2, NULL, y)
        t = torch.randint(0, 1000, (64,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        loss = F.mse_loss(unet(ddpm.add_noise(x0, eps, t), t, class_labels=y).sample, eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                       block_out_channels=(8, 16, 16),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                       norm_num_groups=4, num_class_embeds=NULL + 1)
    ddpm = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon",
                         clip_sample=True, variance_type="fixed_small")
    loss = train(unet, ddpm)
    unet.eval()
    os.makedirs(OUT, exist_ok=True)
    unet.save_pretrained(os.path.join(OUT, "unet"), safe_serialization=True)
    ddpm.save_pretrained(os.path.join(OUT, "scheduler"))
    sched = DDIMScheduler.from_config(ddpm.config)
    sched.set_timesteps(STEPS)
    g = torch.Generator().manual_seed(1)
    x_t = torch.randn(len(LABELS), 1, 8, 8, generator=g)
    labels = torch.tensor(LABELS)
    plain = run(unet, sched, x_t, labels, None)
    guided = run(unet, sched, x_t, labels, GUIDANCE)
    save_file({
        "x_T": x_t.contiguous(),
        "labels": labels.int(),
        "timesteps": sched.timesteps.int(),
        "guidance": torch.tensor([GUIDANCE]),
        "plain.states": plain.contiguous(),
        "guided.states": guided.contiguous(),
    }, os.path.join(OUT, "trajectory.safetensors"))
    n = sum(p.numel() for p in unet.parameters())
    print(f"{n} parameters, final training loss {loss:.4f}")
    # Conditioning: the same loop in float64 ends this close to the float32 fixture.
    u64 = copy.deepcopy(unet).double()
    for name, w, ref in [("plain", None, plain), ("guided", GUIDANCE, guided)]:
        f64 = run(u64, sched, x_t.double(), labels, w).float()
        print(f"{name}: float64 vs float32 relative L2 after 10/25/40/50 steps: "
              + " ".join(f"{rel(f64[k], ref[k]):.1e}" for k in (10, 25, 40, 50))
              + f"; x_0 moved {rel(ref[-1], x_t):.2f} from x_T")


if __name__ == "__main__":
    main()

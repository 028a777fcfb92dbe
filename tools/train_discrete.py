"""Train the discrete-diffusion models shipped in assets/ with the sequence transformer (seq_transformer.py):

    python tools/train_discrete.py --model words-absorb          # D3PM, absorbing prior (bionemo-moco)
    python tools/train_discrete.py --model words-uniform         # D3PM, uniform prior (bionemo-moco)
    python tools/train_discrete.py --model promoter-multinomial  # multinomial diffusion (Hoogeboom)

The D3PM models use bionemo-moco 0.0.2.2's own D3PM interpolant (cosine schedule, interpolate, loss);
`--loss elbo` trains the absorbing model on its ELBO instead (d3pm_elbo_loss; moco's interpolant, step
and sampler unchanged), and --pos-init, --no-time, --vocab and --word-weight are the words models'
other training choices (see their help and tools/README.md). words-absorb's card has its exact flags.
The multinomial model uses tools/multinomial_ref.py and its vb_stochastic loss (bits/char).
Checkpoints to --ckpt every 200 steps and resumes from it; stops at --steps or after --minutes of
training in this run; at the end it exports to --out (required: a run never writes into assets/ by itself).
--export-only writes --out from the checkpoint without training.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
from safetensors.torch import save_file

import promoter_data
import words_data
from multinomial_ref import Multinomial
from seq_transformer import SeqTransformer

SPECS = {
    "words-absorb": dict(kind="d3pm", prior="absorbing", K=28, L=12, T=100),
    "words-uniform": dict(kind="d3pm", prior="uniform", K=27, L=12, T=100),
    "promoter-multinomial": dict(kind="multinomial", K=4, L=50, T=100),
}


def make_d3pm(spec):
    from bionemo.moco.distributions.prior import DiscreteMaskedPrior, DiscreteUniformPrior
    from bionemo.moco.distributions.time import UniformTimeDistribution
    from bionemo.moco.interpolants import D3PM
    from bionemo.moco.schedules.noise.discrete_noise_schedules import DiscreteCosineNoiseSchedule
    prior = (DiscreteMaskedPrior(num_classes=spec["K"], inclusive=True) if spec["prior"] == "absorbing"
             else DiscreteUniformPrior(num_classes=spec["K"]))
    return D3PM(time_distribution=UniformTimeDistribution(discrete_time=True, nsteps=spec["T"]),
                prior_distribution=prior, noise_schedule=DiscreteCosineNoiseSchedule(nsteps=spec["T"]),
                device="cpu")


def load_data(name, vocab="full"):
    if name.startswith("words"):
        train, held = words_data.split(words_data.load_vocab(vocab))
        return words_data.encode(train), words_data.encode(held), train, held
    seqs = promoter_data.generate(20000, seed=0)
    train, held = promoter_data.split(seqs)
    return promoter_data.encode(train), promoter_data.encode(held), train, held


def d3pm_loss(model, d3pm, x0, vb_scale=0.0):
    """moco's D3PM training loss on a batch: one t and one x_t ~ q(x_t | x0) per sequence."""
    t = d3pm.sample_time(x0.shape[0])
    xt = d3pm.interpolate(x0, t)
    return d3pm.loss(model(xt, t), x0, xt, t, vb_scale=vb_scale).mean()


def init_embeddings(model, pos_std):
    """Re-draw the learned position embedding at std `pos_std` (SeqTransformer draws it at 0.02 beside
    token embeddings of std 1). A masked position's input is the mask embedding + its position embedding
    + the time embedding, the same at every masked position but for the position term; at 0.02 the
    network can hardly tell masked positions apart at first, so it learns where a letter goes slowly.
    Only the initial values change: the network (and its Rust port) is the same."""
    if pos_std:
        with torch.no_grad():
            model.pos_emb.normal_(0.0, pos_std)


def drop_time(model):
    """Switch the time conditioning off without changing the network: the last Linear of the time MLP
    is zeroed and frozen, so the time embedding added to every position is 0 (exported as zeros, the
    Rust port computes the same). In an absorbing D3PM the best x0 prediction does not depend on t
    given x_t (which positions are masked is independent of the data), and the sinusoid of an integer t
    through a random MLP adds a different pseudo-random vector per t to every input, which the network
    must first learn to ignore."""
    with torch.no_grad():
        model.time_mlp[2].weight.zero_(); model.time_mlp[2].bias.zero_()
    for p in model.time_mlp.parameters():
        p.requires_grad_(False)


def elbo_weights(d3pm):
    """Per-t weight of a masked position's cross-entropy in the absorbing D3PM's ELBO, times T (t drawn
    uniformly): for t ≥ 1, KL(q(x_{t−1} | x_t = mask, x0) ‖ p_θ) = c_t · (−log p_θ(x0)) with
    c_t = ᾱ_{t−1}(1 − α_t)/(1 − ᾱ_t), the chance that a masked position is revealed at this step (exact
    when the model gives the mask class no mass, an upper bound otherwise); at t = 0 moco's step returns
    the model's x0 prediction, so the term is the whole cross-entropy (c_0 = 1)."""
    ab = d3pm._alpha_bar.double()
    a = d3pm.noise_schedule.generate_schedule(device="cpu").double()
    c = torch.ones_like(ab)
    c[1:] = ab[:-1] * (1 - a[1:]) / (1 - ab[1:])
    return (len(ab) * c).float()


def d3pm_elbo_loss(model, d3pm, x0, mask_token, copy_weight=1.0):
    """The absorbing D3PM's ELBO (MDLM-style) in nats per position: a masked position's cross-entropy
    weighted by T·c_t (elbo_weights), t stratified over the batch, plus `copy_weight` × the cross-entropy
    of the positions left unmasked. That last term is not in the ELBO (a revealed position stays put in
    the true posterior), but moco's step keeps a revealed token only while the model gives it more than
    about 1e-6 (its posterior logits floor every probability at 1e-6), and at t = 0 it takes the model's
    argmax at every position, so the network must keep copying what it sees."""
    b, T = x0.shape[0], d3pm.noise_schedule.nsteps
    t = ((torch.randperm(b) + torch.rand(b)) * T / b).long().clamp(max=T - 1)
    xt = d3pm.interpolate(x0, t)
    ce = torch.nn.functional.cross_entropy(model(xt, t).transpose(1, 2), x0, reduction="none")
    masked = (xt == mask_token).float()
    w = elbo_weights(d3pm)[t][:, None]
    return ((w * masked + copy_weight * (1 - masked)) * ce).mean()


def optimise(model, opt, loss):
    """One optimiser step on `loss`, gradients clipped to norm 1 (every discrete training here)."""
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


@torch.no_grad()
def d3pm_elbo_terms(model, d3pm, x0):
    """Per-sequence ELBO terms [T + 1, B] in nats, moco's index convention (index 0 already noised):
    L_0 = −log softmax(model(x_0, 0))[x0] (moco's last step returns the model's x0 prediction);
    L_t = KL(q(x_{t−1} | x_t, x0) ‖ p_θ(x_{t−1} | x_t)) for t ≥ 1, where q ∝ Q_t[·, x_t] ⊙ Q̄_{t−1}[x0, ·]
    exactly and p_θ = softmax(moco's posterior logits); last, KL(q(x_{T−1} | x0) ‖ π) with log π floored
    at log 1e-30 (the absorbing π is a point mass)."""
    T, K = d3pm.noise_schedule.nsteps, d3pm.num_classes
    b = x0.shape[0]
    oh = torch.nn.functional.one_hot(x0, K).float()
    out = []
    for t in range(T):
        tt = torch.full((b,), t, dtype=torch.long)
        xt = d3pm.interpolate(x0, tt)
        logits = model(xt, tt)
        if t == 0:
            out.append(-(torch.log_softmax(logits, -1) * oh).sum(-1).sum(-1))
            continue
        A = d3pm._Qt[t][:, xt].permute(1, 2, 0)          # Q_t[i, x_t] → [B, L, K]
        Bq = oh @ d3pm._Qt_prev_bar[t]                    # Q̄_{t−1}[x0, i]
        q = A * Bq
        logq = torch.log(q.clamp(min=1e-30)) - torch.log(q.sum(-1, keepdim=True))
        q = q / q.sum(-1, keepdim=True)
        logp = torch.log_softmax(d3pm._q_posterior_logits(logits, tt, xt), -1)
        out.append((q * (logq - logp)).sum(-1).sum(-1))
    qT = oh @ d3pm._Qt_bar[T - 1]
    pi = d3pm.prior_distribution.prior_dist.float()
    out.append((qT * (torch.log(qT.clamp(min=1e-30)) - torch.log(pi.clamp(min=1e-30)))).sum(-1).sum(-1))
    return torch.stack(out)


@torch.no_grad()
def d3pm_sample(model, d3pm, n, L, temperature=1.0):
    x = d3pm.sample_prior((n, L))
    for t in reversed(range(d3pm.noise_schedule.nsteps)):
        tt = torch.full((n,), t, dtype=torch.long)
        x = d3pm.step(model(x, tt), tt, x, temperature=temperature)
    return x


def word_figures(samples, train, held):
    """Share of real words (canonical: letters then pads only) of the whole dictionary (words_data's full
    list, whatever the training vocabulary), of the training words, of the held-out words of the training
    vocabulary; the unique share, and how many have a pad before a letter."""
    trs, hes, full = set(train), set(held), set(words_data.load_words())
    words, pad_inside = [], 0
    for row in samples:
        ids = [int(i) for i in row]
        n = next((i for i, v in enumerate(ids) if v == 0), len(ids))
        ok = all(1 <= v <= 26 for v in ids[:n]) and all(v == 0 for v in ids[n:])
        pad_inside += any(v != 0 for v in ids[n:])
        words.append(words_data.decode(ids) if ok and n else None)
    n = len(words)
    return dict(n=n, canonical=sum(w is not None for w in words) / n,
                dictionary_word=sum(w in full for w in words if w) / n,
                in_training=sum(w in trs for w in words if w) / n,
                new_in_heldout=sum(w in hes and w not in trs for w in words if w) / n,
                unique=len(set(w for w in words if w)) / n, pad_before_letter=pad_inside / n,
                examples=[w if w else "".join("_" if int(v) == 0 else "?" if int(v) > 26 else chr(96 + int(v)) for v in r)
                          for w, r in zip(words[:20], samples[:20])])


def promoter_figures(seqs, held):
    return dict(n=len(seqs), both_boxes_le1mm=float(np.mean([promoter_data.has_promoter(s, 1) for s in seqs])),
                both_boxes_le2mm=float(np.mean([promoter_data.has_promoter(s, 2) for s in seqs])),
                js_6mer_vs_heldout_bits=float(promoter_data.js_divergence(promoter_data.kmer_spectrum(seqs),
                                                                          promoter_data.kmer_spectrum(held))))


def export(model, args, spec, extra):
    out = args.out
    os.makedirs(out, exist_ok=True)
    sd = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, f"{out}/model.safetensors")
    cfg = dict(architecture="seq_transformer", **model.config)
    json.dump(cfg, open(f"{out}/config.json", "w"), indent=2)
    if spec["kind"] == "d3pm":
        proc = dict(process="d3pm", num_classes=spec["K"], seq_len=spec["L"], nsteps=spec["T"],
                    schedule=dict(kind="cosine", nu=1.0, s=0.008), prior=spec["prior"], last_time_idx=0,
                    vocab="_abcdefghijklmnopqrstuvwxyz" + ("?" if spec["prior"] == "absorbing" else ""))
        proc["pad_token"] = 0
        if spec["prior"] == "absorbing":
            proc["mask_token"] = spec["K"] - 1
    else:
        proc = dict(process="multinomial", num_classes=4, seq_len=50, nsteps=spec["T"],
                    schedule=dict(kind="hoogeboom_cosine_sqrt", s=0.008), vocab="ACGT")
    json.dump(proc, open(f"{out}/process.json", "w"), indent=2)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=list(SPECS))
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--vb-scale", type=float, default=0.0)
    ap.add_argument("--loss", default="moco", choices=["moco", "elbo"],
                    help="D3PM loss: moco's D3PM.loss (cross-entropy on every position, t uniform) or the "
                         "absorbing ELBO (d3pm_elbo_loss)")
    ap.add_argument("--copy-weight", type=float, default=1.0)
    ap.add_argument("--pos-init", type=float, default=0.0,
                    help="std of the initial position embedding (0: SeqTransformer's 0.02); see init_embeddings")
    ap.add_argument("--word-weight", type=float, default=0.0,
                    help="words models: draw each training word with probability ∝ its wordfreq frequency to this "
                         "power (0: every word alike); 0.5 is flat enough that 300 draws are ~96 %% unique")
    ap.add_argument("--no-time", action="store_true", help="zero and freeze the time MLP's output (drop_time)")
    ap.add_argument("--vocab", default="full", choices=list(words_data.VOCABS),
                    help="words models: the whole list, or its 10,000 most frequent words (words_data.py)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--out", required=True,
                    help="folder the run exports to when it stops; never assets/ by default (measure an export, then copy it there)")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--eval-n", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = SPECS[args.model]
    ckpt = args.ckpt or f"/tmp/{args.model}.ckpt"
    xtr, xhe, train, held = load_data(args.model, args.vocab)
    torch.manual_seed(args.seed)
    model = SeqTransformer(spec["K"], spec["L"], args.dim, args.depth, args.heads)
    init_embeddings(model, args.pos_init)
    if args.no_time:
        drop_time(model)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    proc = make_d3pm(spec) if spec["kind"] == "d3pm" else Multinomial(spec["K"], spec["T"])
    rng = np.random.default_rng(args.seed)
    step, losses, seconds = 0, [], 0.0
    # (first step, --steps) of every run that trained this checkpoint: the cosine lr follows each run's
    # own --steps, so a resumed model is only reproducible from the whole list, which the card records.
    runs = []
    if os.path.exists(ckpt):
        ck = torch.load(ckpt, weights_only=False)
        model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"])
        step, losses, seconds = ck["step"], ck["losses"], ck.get("seconds", 0.0)
        rng.bit_generator.state = ck["rng"]; torch.set_rng_state(ck["torch_rng"])
        # Checkpoints from before the history was kept: one run of unknown --steps up to here.
        runs = ck.get("runs", [[0, None]] if step else [])
        if spec["kind"] == "multinomial":
            proc.Lt_history, proc.Lt_count = ck["Lt_history"], ck["Lt_count"]
        print(f"resumed at step {step}", flush=True)
    t0 = time.time()
    if not args.export_only and step < args.steps and (not runs or runs[-1][1] != args.steps):
        runs.append([step, args.steps])

    def save():
        d = dict(model=model.state_dict(), opt=opt.state_dict(), step=step, losses=losses, runs=runs,
                 seconds=seconds + time.time() - t0, rng=rng.bit_generator.state, torch_rng=torch.get_rng_state())
        if spec["kind"] == "multinomial":
            d.update(Lt_history=proc.Lt_history, Lt_count=proc.Lt_count)
        torch.save(d, ckpt + ".tmp"); os.replace(ckpt + ".tmp", ckpt)

    xtr_t = torch.from_numpy(xtr)
    word_p = None
    if args.word_weight:
        word_p = words_data.frequencies(train) ** args.word_weight
        word_p = word_p / word_p.sum()
    while not args.export_only and step < args.steps and time.time() - t0 < args.minutes * 60:
        lr = args.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, len(xtr), args.batch) if word_p is None else rng.choice(len(xtr), args.batch, p=word_p)
        x0 = xtr_t[torch.from_numpy(idx)]
        if spec["kind"] == "d3pm" and args.loss == "elbo":
            loss = d3pm_elbo_loss(model, proc, x0, spec["K"] - 1, args.copy_weight)
        elif spec["kind"] == "d3pm":
            loss = d3pm_loss(model, proc, x0, args.vb_scale)
        else:
            loss = -proc.train_log_prob(model, x0).sum() / (math.log(2) * x0.numel())
        optimise(model, opt, loss)
        losses.append(loss.item()); step += 1
        if step % 200 == 0:
            print(f"step {step} loss {np.mean(losses[-200:]):.4f} lr {lr:.2e} ({time.time() - t0:.0f}s)", flush=True)
            save()
    if not args.export_only:
        save()
    model.eval()
    # Evaluate with the exported (fp16-rounded) weights, so the figures belong to the shipped model.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    torch.manual_seed(1234)
    n = args.eval_n
    quality = {}
    heldx = torch.from_numpy(xhe[:n])
    if spec["kind"] == "d3pm":
        terms = d3pm_elbo_terms(model, proc, heldx)
        quality["heldout_elbo_bits_per_token"] = float(terms.sum(0).mean() / (spec["L"] * math.log(2)))
        s = d3pm_sample(model, proc, n, spec["L"])
        quality["pytorch_samples"] = word_figures(s.numpy(), train, held)
    else:
        terms = proc.elbo_terms(model, heldx)
        quality["heldout_elbo_bits_per_token"] = float(terms.sum(0).mean() / (spec["L"] * math.log(2)))
        s = proc.sample(model, n, spec["L"], torch.Generator().manual_seed(1234))
        seqs = [promoter_data.decode(r) for r in s]
        r = np.random.default_rng(1)
        rnd = ["".join(r.choice(list("ACGT"), size=50)) for _ in range(n)]
        quality["pytorch_samples"] = promoter_figures(seqs, held)
        quality["training_data"] = promoter_figures(train[:n], held)
        quality["uniform_random"] = promoter_figures(rnd, held)
        quality["pytorch_samples"]["examples"] = seqs[:10]
    quality["heldout_elbo_sequences"] = len(heldx)
    print(json.dumps(quality, indent=1), flush=True)
    out = export(model, args, spec, quality)
    card = dict(
        name=args.model, architecture="seq_transformer", parameters=sum(p.numel() for p in model.parameters()),
        process=("D3PM (bionemo-moco 0.0.2.2 interpolant), " + spec.get("prior", "") + " prior, cosine schedule"
                 if spec["kind"] == "d3pm" else "multinomial diffusion (Hoogeboom et al.), √α cosine schedule"),
        training=dict(command=f"python tools/train_discrete.py --model {args.model} --steps {args.steps} --batch {args.batch} "
                              f"--dim {args.dim} --depth {args.depth} --heads {args.heads} --lr {args.lr} --vb-scale {args.vb_scale} --seed {args.seed}"
                              + (f" --loss {args.loss} --copy-weight {args.copy_weight}" if args.loss != "moco" else "")
                              + (f" --pos-init {args.pos_init}" if args.pos_init else "")
                              + (" --no-time" if args.no_time else "")
                              + (f" --word-weight {args.word_weight}" if args.word_weight else "")
                              + (f" --vocab {args.vocab}" if args.vocab != "full" else ""),
                      runs=[dict(from_step=a, steps_flag=b) for a, b in runs],
                      steps=step, batch=args.batch, optimizer="AdamW, warmup + cosine lr, grad clip 1",
                      loss=(("absorbing ELBO (d3pm_elbo_loss): masked positions' cross-entropy weighted by T·c_t, "
                             "t stratified over the batch, + %g × the unmasked positions' cross-entropy" % args.copy_weight)
                            if spec["kind"] == "d3pm" and args.loss == "elbo" else
                            "moco D3PM.loss (cross-entropy on x0, vb_scale %g)" % args.vb_scale if spec["kind"] == "d3pm"
                            else "vb_stochastic −log p(x) in bits/char with importance-sampled t"),
                      final_loss=float(np.mean(losses[-200:])) if losses else None,
                      training_seconds=round(seconds + time.time() - t0)),
        data=("Debian wamerican /usr/share/dict/american-english, lowercase a–z words of 2–12 letters"
              + (", the 10,000 most frequent by wordfreq 3.1.1 (English, large list)" if args.vocab == "frequent" else "")
              + f", {len(train)} train / {len(held)} held-out (tools/words_data.py, seed 0)"
              + (f"; training words drawn with probability ∝ frequency^{args.word_weight}" if args.word_weight else "")
              if args.model.startswith("words")
              else f"synthetic σ70 promoters from tools/promoter_data.py (seed 0): {len(train)} train / {len(held)} held-out"),
        weights="fp16",
        quality=quality,
        elbo_definition=("bits/token = Σ_t L_t / (L ln 2), one x_t ~ q(x_t|x0) per t, averaged over held-out sequences; "
                         "see d3pm_elbo_terms / Multinomial.elbo_terms"),
    )
    json.dump(card, open(f"{out}/card.json", "w"), indent=2)
    # u8 ids (K ≤ 256): the app embeds these, so they are kept small.
    ex = {"tokens": torch.from_numpy(xhe[: min(len(xhe), 1024)]).to(torch.uint8)}
    save_file(ex, f"{out}/examples.safetensors")


if __name__ == "__main__":
    main()

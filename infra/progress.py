"""What a training run shows and writes as it goes (train.py): a progress bar, one log line per interval with
every loss term, the gradient norm each term sends into the slot module, the rate and the learning rate; the same
numbers in OUT/log_phase{N}.csv, and their curves in OUT/loss_phase{N}.png at the end of the phase.

The log line is greppable: `grep "phase 1 step" run.log`. Per-term gradient norms cost one extra backward pass per
term, so they are taken at log steps only, and only when one process trains.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import torch


def plot_curves(csv_path: Path, png_path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(1, 4, figsize=(14, 3))
    for a, key in zip(ax, ("total", "recon", "semantic", "instance")):
        a.plot(steps, [float(r[key]) for r in rows])
        a.set_title(key)
        a.set_xlabel("step")
    fig.suptitle(f"{csv_path.name} (python train.py)", fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


def term_grad_norms(model, losses) -> dict:
    """The gradient norm that each weighted loss term (λ·L) sends into the slot-attention parameters, one
    autograd pass per term at log steps (the training step's own backward is unchanged): which term drives the
    slots, and whether λs and λi balance them."""
    params = [p for p in model.slot_module.parameters() if p.requires_grad]
    c = model.config
    weighted = {"recon": losses.recon, "semantic": c.lambda_semantic * losses.semantic,
                "instance": c.lambda_instance * losses.instance}
    out = {}
    for name, term in weighted.items():
        if term.requires_grad:
            grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            out[name] = float(sum(float((g.float() ** 2).sum()) for g in grads if g is not None)) ** 0.5
    return out


class PhaseLog:
    """Progress bar, one line per `every` steps with the mean of every loss term, the gradient norm each term sends
    into the slot module, the rate and the lr; the same as OUT/log_phase{phase}.csv, and its PNG at the end."""

    COLUMNS = ("step,total,recon,semantic,instance,semantic_share,grad_recon,grad_semantic,grad_instance,"
               "images_per_s,lr")

    def __init__(self, out: Path, phase: int, start: int, num_steps: int, every: int, batch_size: int, world: int,
                 is_main: bool, accumulate: int = 1):
        from tqdm import tqdm
        self.phase, self.num_steps, self.every, self.world, self.is_main = phase, num_steps, every, world, is_main
        if is_main and (world > 1 or accumulate > 1):
            print(f"[phase {phase}] global batch {batch_size * world * accumulate} = --batch-size {batch_size} × "
                  f"{world} processes × {accumulate} accumulated; learning rates as given", flush=True)
        self.csv_path = out / f"log_phase{phase}.csv"
        self.png_path = out / f"loss_phase{phase}.png"
        if is_main:
            out.mkdir(parents=True, exist_ok=True)
            if start == 0 or not self.csv_path.exists():
                self.csv_path.write_text(self.COLUMNS + "\n")
        self.bar = tqdm(total=num_steps, initial=start, desc=f"phase {phase}", disable=not is_main, mininterval=10)
        self.sums, self.t_last, self.n_last = None, time.time(), 0

    def wants_grads(self, step: int) -> bool:
        """Per-term gradient norms cost one extra backward each: only at log steps, only on one process."""
        return (step + 1) % self.every == 0 and self.is_main and not torch.distributed.is_initialized()

    def step(self, step: int, losses, batch_size: int, lr: float, grads: dict) -> None:
        self.bar.update(1)
        terms = torch.stack([losses.total, losses.recon, losses.semantic, losses.instance,
                             losses.semantic_present.float().mean()]).detach()
        self.sums = terms if self.sums is None else self.sums + terms
        self.n_last += batch_size * self.world
        if step % self.every != 0 and step != self.num_steps:
            return
        k = self.every if step % self.every == 0 else step % self.every
        avg = (self.sums / k).tolist()
        rate = self.n_last / (time.time() - self.t_last)
        if self.is_main:
            g = [grads.get(t, float("nan")) for t in ("recon", "semantic", "instance")]  # NaN in the CSV: not measured
            norms = (f" | |∇slots| recon {g[0]:.2e} semantic {g[1]:.2e} instance {g[2]:.2e}" if grads else
                     " | |∇slots| not measured under DDP" if torch.distributed.is_initialized() else "")
            print(f"phase {self.phase} step {step} | total {avg[0]:.4f} recon {avg[1]:.4f} semantic {avg[2]:.4f} "
                  f"instance {avg[3]:.4f} | sem-target share {avg[4]:.2f}{norms} | {rate:.1f} img/s | lr {lr:.2e}",
                  flush=True)
            with open(self.csv_path, "a") as f:
                f.write(f"{step},{avg[0]:.6f},{avg[1]:.6f},{avg[2]:.6f},{avg[3]:.6f},{avg[4]:.4f},"
                        f"{g[0]:.4e},{g[1]:.4e},{g[2]:.4e},{rate:.3f},{lr:.3e}\n")
        self.sums, self.t_last, self.n_last = None, time.time(), 0

    def close(self) -> None:
        self.bar.close()
        if self.is_main:
            plot_curves(self.csv_path, self.png_path)

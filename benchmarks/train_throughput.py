"""Training and inference throughput (videos/s) of the presets at the default and paper shapes.

    .venv/bin/python benchmarks/train_throughput.py [--repeats 3] [--batches 3]

Random inputs of the given shape (lengths drawn like the simulation: 60 % full,
the rest uniform), the preset's batch size, one warm-up batch, then the median over
``repeats`` timings of ``batches`` batches. Prints a table with the machine's core
count and torch version.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from vidstudy.config import preset
from vidstudy.losses import FocalLoss
from vidstudy.models import build_model, count_parameters

SHAPES = {"default": (64, 256), "paper": (73, 1280)}


def _batch(batch_size: int, t: int, d: int, gen: torch.Generator):
    lengths = torch.where(torch.rand(batch_size, generator=gen) < 0.6, torch.tensor(t),
                          torch.randint(8, t + 1, (batch_size,), generator=gen))
    x = torch.rand(batch_size, t, d, generator=gen) * (torch.arange(t)[None, :, None] < lengths[:, None, None])
    return x, lengths, torch.randint(0, 4, (batch_size,), generator=gen)


def measure(preset_name: str, shape: str, repeats: int, batches: int) -> dict:
    cfg = preset(preset_name)
    t, d = SHAPES[shape]
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = build_model(cfg.model, d, 4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = FocalLoss()
    bs = cfg.train.batch_size
    data = [_batch(bs, t, d, gen) for _ in range(batches + 1)]

    def train_pass(items):
        model.train()
        for x, lengths, y in items:
            loss = loss_fn(model(x, lengths), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

    @torch.no_grad()
    def eval_pass(items):
        model.eval()
        for x, lengths, _ in items:
            model(x, lengths)

    out = {"preset": preset_name, "shape": f"{shape} (T={t}, D={d})", "params": count_parameters(model), "batch": bs}
    for name, fn in (("train", train_pass), ("infer", eval_pass)):
        fn(data[:1])
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(data[1:])
            times.append(time.perf_counter() - t0)
        out[name] = bs * batches / statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--presets", default="cpu,paper")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {args.repeats} x {args.batches} batches")
    print(f"{'preset':<7} {'shape':<22} {'params':>11} {'batch':>5} {'train videos/s':>15} {'infer videos/s':>15}")
    for p in args.presets.split(","):
        for shape in SHAPES:
            r = measure(p, shape, args.repeats, args.batches)
            print(f"{r['preset']:<7} {r['shape']:<22} {r['params']:>11,} {r['batch']:>5} {r['train']:>15.1f} {r['infer']:>15.1f}")


if __name__ == "__main__":
    main()

"""PyTorch reference for the throughput comparison: the paper's way of training.

The paper trains one instance of a model at a time. This module rebuilds its "model 1" (energy
regression on 15x15x1 calorimeter clusters) in PyTorch and times a plain training loop (NAdam
lr 1e-4, L2 0.01 added to the gradient, batch 64, MSE, float32, Kaiming init) on random data held
on the device, so that jrobust's stacked training of many instances can be compared against "N
instances trained one after another". It needs the ``torch`` extra (``pip install -e ".[torch]"``);
``jrobust bench --torch`` runs it in a separate process (so the two frameworks' thread pools do
not compete), interleaved with jrobust's stacks.

Usage::

    python -m jrobust.torch_reference --steps 300 --device cpu --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

__all__ = ["MODEL1_PARAMS", "build_model1", "have_torch", "torch_steps_per_second"]

MODEL1_PARAMS = 23_923
POOL_SIZE = 32_000
IMAGE_SHAPE = (1, 15, 15)


def have_torch() -> bool:
    """Whether PyTorch can be imported here."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError(
            "the PyTorch comparison needs torch: pip install -e '.[torch]' (on this project's "
            "machines: pip install torch==2.13.0, a CPU build)"
        ) from None
    return torch


def build_model1() -> Any:
    """Paper model 1: conv-pool-conv-pool-dense(9)-dense(1), 23,923 parameters."""
    torch = _torch()
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, bias=False),  # 15 -> 13
        nn.ReLU(),
        nn.MaxPool2d(2, stride=2),  # 13 -> 6
        nn.Conv2d(32, 64, 3, bias=False),  # 6 -> 4
        nn.ReLU(),
        nn.MaxPool2d(2, stride=1),  # 4 -> 3
        nn.Flatten(),  # 3 * 3 * 64 = 576
        nn.Linear(576, 9),
        nn.ReLU(),
        nn.Linear(9, 1),
    )
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert n_params == MODEL1_PARAMS, f"model 1 has {n_params} parameters, want {MODEL1_PARAMS}"
    return model


def _train_one(x, y, n_steps: int, batch_size: int, warmup: int, dev) -> float:
    """Train one fresh instance; return the seconds spent on the ``n_steps`` timed steps."""
    torch = _torch()
    model = build_model1().to(dev)
    # NAdam's weight_decay is coupled L2: 0.01 * w is added to the gradient.
    opt = torch.optim.NAdam(model.parameters(), lr=1e-4, weight_decay=0.01)
    loss_fn = torch.nn.MSELoss()
    n = x.shape[0]
    steps_per_epoch = n // batch_size
    perm = torch.randperm(n, device=dev)
    t0 = 0.0
    for step in range(warmup + n_steps):
        if step == warmup:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
        i = step % steps_per_epoch
        if i == 0 and step > 0:
            perm = torch.randperm(n, device=dev)  # new epoch: reshuffle
        idx = perm[i * batch_size : (i + 1) * batch_size]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - t0


def torch_steps_per_second(
    n_steps: int = 300,
    batch_size: int = 64,
    device: str = "cpu",
    threads: int | None = None,
    warmup: int = 30,
    instances: int = 1,
) -> float:
    """Optimizer steps per second training ``instances`` fresh models one at a time.

    Warm-up steps of every instance are excluded from the timing; the result is
    ``instances * n_steps / total timed seconds``.
    """
    torch = _torch()
    if threads is not None:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((POOL_SIZE, *IMAGE_SHAPE), generator=gen, dtype=torch.float32).to(dev)
    y = torch.rand((POOL_SIZE, 1), generator=gen, dtype=torch.float32).to(dev)
    total = sum(_train_one(x, y, n_steps, batch_size, warmup, dev) for _ in range(instances))
    return instances * n_steps / total


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--instances", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    sps = torch_steps_per_second(a.steps, a.batch_size, a.device, a.threads, a.warmup, a.instances)
    torch = _torch()
    if a.json:
        print(json.dumps({"steps_per_s": sps, "threads": torch.get_num_threads(),
                          "torch": torch.__version__}))  # fmt: skip
        return
    print(f"torch {torch.__version__}  threads={torch.get_num_threads()}  device={a.device}")
    print(
        f"model 1, batch {a.batch_size}, {a.instances} instance(s) one at a time: {sps:.1f} steps/s"
    )


if __name__ == "__main__":
    main()

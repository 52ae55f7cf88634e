"""PyTorch reference for the throughput comparison: the paper's way of training.

The paper trains one instance of a model at a time. This module rebuilds its "model 1" (energy
regression on 15x15x1 calorimeter clusters) in PyTorch and times a plain training loop (NAdam
lr 1e-4, L2 0.01 added to the gradient, batch 64, MSE, float32, Kaiming init) on random data held
on the device, eager or with ``torch.compile``, so that jrobust's stacked training of many
instances can be compared against "N instances trained one after another". It needs the
``torch`` extra (``pip install -e ".[torch]"``).

``jrobust bench --torch`` runs it as workers (``--serve``): separate processes, so the two
frameworks' thread pools never compete, each warmed up (and compiled) once, then timed on
request, interleaved with jrobust's stacks; a group of one-thread workers (one per core) is
started together on a common clock and timed as one. A worker's instance trains on from one
request to the next: a step's cost does not depend on the weights, and a fresh instance costs
PyTorch only its initialisation (jrobust's timed calls include theirs).

Usage::

    python -m jrobust._src.torch_reference --steps 300 --device cpu --threads 2
    python -m jrobust._src.torch_reference --steps 300 --threads 1 --compile
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

__all__ = ["MODEL1_PARAMS", "build_model1", "have_torch", "serve", "torch_steps_per_second"]

MODEL1_PARAMS = 23_923
POOL_SIZE = 32_000
IMAGE_SHAPE = (1, 15, 15)
PROTOCOL_PREFIX = "@jrobust-torch "  # marks a worker's answers among anything else it prints


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


class _Trainer:
    """One instance of model 1 being trained: its model, optimizer, random data on the device and
    place in the current epoch's shuffle; eager or ``torch.compile``-d."""

    def __init__(self, batch_size: int, dev: Any, compiled: bool, seed: int) -> None:
        torch = _torch()
        self.torch, self.dev, self.batch_size = torch, dev, batch_size
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.rand((POOL_SIZE, *IMAGE_SHAPE), generator=gen, dtype=torch.float32).to(dev)
        self.y = torch.rand((POOL_SIZE, 1), generator=gen, dtype=torch.float32).to(dev)
        torch.manual_seed(seed)
        self.model = build_model1().to(dev)
        # NAdam's weight_decay is coupled L2: 0.01 * w is added to the gradient.
        self.opt = torch.optim.NAdam(self.model.parameters(), lr=1e-4, weight_decay=0.01)
        self.loss_fn = torch.nn.MSELoss()
        self.forward = self.model

        def opt_step() -> None:
            self.opt.step()

        self.opt_step = opt_step
        if compiled:
            # The model (forward and backward, through AOTAutograd) and the optimizer's update
            # are compiled; the loop around them stays in Python, as a PyTorch user writes it.
            self.forward = torch.compile(self.model)
            self.opt_step = torch.compile(opt_step, fullgraph=False)
        self.perm = torch.randperm(POOL_SIZE, device=dev)
        self.position = 0

    def steps(self, n: int) -> float:
        """Train ``n`` steps; the seconds they took (the device synchronised at the end)."""
        torch = self.torch
        per_epoch = POOL_SIZE // self.batch_size
        t0 = time.perf_counter()
        for _ in range(n):
            if self.position == per_epoch:  # new epoch: reshuffle
                self.perm = torch.randperm(POOL_SIZE, device=self.dev)
                self.position = 0
            idx = self.perm[self.position * self.batch_size : (self.position + 1) * self.batch_size]
            self.position += 1
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.forward(self.x[idx]), self.y[idx])
            loss.backward()
            self.opt_step()
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)
        return time.perf_counter() - t0


def _set_threads(threads: int | None) -> None:
    torch = _torch()
    if threads is not None:
        torch.set_num_threads(threads)


def torch_steps_per_second(
    n_steps: int = 300,
    batch_size: int = 64,
    device: str = "cpu",
    threads: int | None = None,
    warmup: int = 30,
    instances: int = 1,
    compiled: bool = False,
) -> float:
    """Optimizer steps per second training ``instances`` fresh models one at a time.

    Args:
      n_steps: timed steps per instance.
      batch_size: mini-batch size.
      device: PyTorch's device (``"cpu"``, ``"cuda"``).
      threads: PyTorch's intra-op threads (``None``: its default, one per core).
      warmup: untimed steps before each instance's timed steps (compilation happens there).
      instances: fresh instances trained one after another.
      compiled: ``torch.compile`` the model and the optimizer's update.

    Returns:
      ``instances * n_steps / total timed seconds``.
    """
    _set_threads(threads)
    dev = _torch().device(device)
    total = 0.0
    for i in range(instances):
        trainer = _Trainer(batch_size, dev, compiled, seed=i)
        trainer.steps(warmup)
        total += trainer.steps(n_steps)
    return instances * n_steps / total


def _say(record: dict[str, Any]) -> None:
    print(PROTOCOL_PREFIX + json.dumps(record), flush=True)


def serve(
    batch_size: int = 64,
    device: str = "cpu",
    threads: int | None = None,
    warmup: int = 30,
    compiled: bool = False,
    seed: int = 0,
) -> None:
    """A worker for ``jrobust._src.bench``: one instance, warmed up once, then timed on request.

    Prints one line ``@jrobust-torch {...}`` when ready (``compile_seconds``: the first step,
    where ``torch.compile`` compiles; ``warmup_seconds``: every warm-up step), or with ``error``
    when it cannot start. Then reads one JSON request per line from stdin,
    ``{"steps": n, "start_at": t}``: waits until the monotonic clock reads ``t`` (every worker of
    a group is given the same ``t``, so they start together), trains ``n`` steps and answers
    ``{"start": t0, "end": t1, "steps": n}`` on that clock (system-wide, so the caller can check
    that the workers overlapped). Ends at end of input or on ``{"quit": true}``.
    """
    torch = _torch()
    try:
        _set_threads(threads)
        dev = torch.device(device)
        trainer = _Trainer(batch_size, dev, compiled, seed)
        first = trainer.steps(1)
        rest = trainer.steps(max(warmup - 1, 0))
    except Exception as err:  # noqa: BLE001 - reported to the caller, which carries on without it
        _say({"ready": False, "error": f"{type(err).__name__}: {' '.join(str(err).split())}"[:800]})
        raise SystemExit(1) from None
    _say({"ready": True, "compile_seconds": first, "warmup_seconds": first + rest,
          "threads": torch.get_num_threads(), "torch": torch.__version__,
          "compiled": compiled, "device": device})  # fmt: skip
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("quit"):
            break
        wait = float(request.get("start_at", 0.0)) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        t0 = time.monotonic()
        trainer.steps(int(request["steps"]))
        _say({"start": t0, "end": time.monotonic(), "steps": int(request["steps"])})


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--instances", type=int, default=1)
    p.add_argument("--compile", action="store_true", help="torch.compile the model and update")
    p.add_argument("--serve", action="store_true", help="be a worker of jrobust._src.bench (stdin)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    if a.serve:
        serve(a.batch_size, a.device, a.threads, a.warmup, a.compile)
        return
    sps = torch_steps_per_second(
        a.steps, a.batch_size, a.device, a.threads, a.warmup, a.instances, a.compile
    )
    torch = _torch()
    if a.json:
        print(json.dumps({"steps_per_s": sps, "threads": torch.get_num_threads(),
                          "torch": torch.__version__, "compiled": a.compile}))  # fmt: skip
        return
    print(f"torch {torch.__version__}  threads={torch.get_num_threads()}  device={a.device}")
    print(
        f"model 1, batch {a.batch_size}, {a.instances} instance(s) one at a time"
        f"{', compiled' if a.compile else ''}: {sps:.1f} steps/s"
    )


if __name__ == "__main__":
    main()

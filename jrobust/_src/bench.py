"""Throughput of the vectorised trainer against PyTorch at its best on the same machine.

The paper's energy model 1 (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025: two 3×3
convolutions, NAdam, batch 64, 15×15 inputs) is trained on random data, ``stack`` instances at a
time in one compiled call (``jrobust.train_stack``). An *instance-step* is one optimizer step of
one instance, so ``stack * steps / seconds`` measures how well the device is used as the stack
grows. Every stack size is compiled and run once before it is timed (``compile_seconds``).

With ``torch=True`` the same run times PyTorch training the same model one instance at a time
(``jrobust._src.torch_reference``), at its best on the machine: one process with every thread, and
one one-thread process per core running at once (their instance-steps added up over the span
from the first start to the last end; they are started together on a common clock), each eager
and, with ``torch_compile=True``, ``torch.compile``-d (a setup that fails to compile is reported
with its error and left out). The PyTorch workers are started once and warmed up (compiled)
before the timing; the fastest setup (by its median) is the denominator of ``vs_pytorch``.

Every repeat times each jrobust stack and each PyTorch setup once, alternating which framework
goes first, after the machine's float32 matrix-multiply rate (the best of a few products, NumPy's
BLAS and XLA's dot on the CPU); rates are reported as the median over the repeats with their
minimum and maximum, ratios (``vs_pytorch``, ``vs_stack1``: a stack against stack 1) as the
median of the ratios within each repeat. ``gflops`` counts the matrix products of a step
(``jrobust._src.programs.own_flops``), compared with the measured matmul rate and, on an x86 CPU, with
its theoretical peak (``cpu_peak``: cores x SIMD width x FMA units x clock).

Example:
  >>> frame = throughput((1, 2), steps=5)  # doctest: +SKIP
  >>> frame[["setup", "instance_steps_per_s"]]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jrobust._src import presets, torch_reference
from jrobust._src.data.population import Population
from jrobust._src.models.layers import resolve_conv_impl
from jrobust._src.programs import own_flops
from jrobust._src.specs import FULL_REPEATS, FULL_STEPS
from jrobust._src.torch_reference import PROTOCOL_PREFIX, have_torch
from jrobust._src.train import resolve_stack_mode, train_stack

__all__ = [
    "DEFAULT_STACKS",
    "FULL_REPEATS",
    "FULL_STEPS",
    "TorchSetup",
    "cpu_peak",
    "format_table",
    "matmul_gflops",
    "throughput",
    "throughput_record",
    "torch_one_at_a_time",
    "torch_setups",
]

DEFAULT_STACKS = (1, 8, 64)
TORCH_WARMUP = 30  # untimed PyTorch steps per worker (compilation happens in the first)
_WORKER_TIMEOUT = 900.0  # seconds a worker may take to start (torch.compile) or to answer


def _population(n_train: int, n_test: int, seed: int):
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    x = rng.gamma(0.5, 1.0, (n, 15, 15, 1)).astype(np.float32)
    energy = x.sum(axis=(1, 2, 3)) * rng.uniform(0.95, 1.05, n) + 1.0
    return Population(
        x,
        energy.astype(np.float32),
        side=x.sum(axis=(1, 2, 3))[:, None],
        target_names=("energy",),
        side_names=("total_energy",),
        test_size=n_test,
        val_size=0,
        name="random",
    )


def _cores() -> int:
    """CPUs this process may run on (its affinity), the count of one-thread PyTorch workers."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- the machine
def matmul_gflops(n: int = 1024, repeats: int = 5, library: str = "numpy") -> float:
    """The machine's float32 matrix-multiply rate, GFLOP/s: the best of ``repeats`` products of
    two ``n x n`` matrices after one untimed product.

    Args:
      n: the matrices' size.
      repeats: timed products (the fastest counts).
      library: ``"numpy"`` (its BLAS, default threads, on the CPU) or ``"xla"`` (a jitted dot on
        JAX's default device).

    Returns:
      ``2 n^3 / seconds / 1e9`` of the fastest product.
    """
    rng = np.random.default_rng(0)
    a = rng.random((n, n), np.float32)
    b = rng.random((n, n), np.float32)
    if library == "numpy":
        product = lambda: a @ b  # noqa: E731
    elif library == "xla":
        dot = jax.jit(jnp.dot)
        a_dev, b_dev = jnp.asarray(a), jnp.asarray(b)
        product = lambda: dot(a_dev, b_dev).block_until_ready()  # noqa: E731
    else:
        raise ValueError(f"library must be 'numpy' or 'xla', got {library!r}")
    product()  # warm up the library (and compile)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def _cpuinfo(path: str) -> list[dict[str, str]]:
    blocks, block = [], {}
    with open(path) as f:
        for line in f:
            if not line.strip():
                if block:
                    blocks.append(block)
                block = {}
                continue
            key, _, value = line.partition(":")
            block[key.strip()] = value.strip()
    if block:
        blocks.append(block)
    return blocks


_MAX_FREQ = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"


def cpu_peak(
    cpuinfo: str = "/proc/cpuinfo",
    fma_units: int | None = None,
    cpus: set[int] | None = None,
    max_freq: str = _MAX_FREQ,
) -> dict[str, Any]:
    """The CPU's theoretical float32 peak: cores x SIMD lanes x FMA units x 2 x clock.

    Read from ``cpuinfo`` (Linux): the cores this process may use (distinct physical cores of
    its affinity), the SIMD width (AVX-512: 16 float32 lanes, AVX/AVX2: 8, SSE: 4), the clock
    (the maximum of ``/sys/.../cpuinfo_max_freq`` where the kernel exposes it, else the ``cpu
    MHz`` it reports, which a boost clock can exceed). The FMA units per core cannot be read:
    2 is assumed (both 256-bit pipes of Haswell and later, Zen 2 and later; some AVX-512 Xeons
    have one 512-bit unit), or give ``fma_units``. Every assumption is listed in ``assumed``.

    Args:
      cpuinfo: the file to read.
      fma_units: FMA units per core (``None``: assume 2 where the CPU has FMA).
      cpus: the logical CPUs to count (``None``: this process's affinity).
      max_freq: the kernel's file of the maximum clock, in kHz (used where it exists).

    Returns:
      dict with ``gflops`` (``None`` where it cannot be read, with ``reason``), ``cores``,
      ``simd_lanes``, ``fma_units``, ``clock_ghz``, ``clock_source``, ``isa``, ``model`` and
      ``assumed``.
    """
    try:
        blocks = _cpuinfo(cpuinfo)
    except OSError as err:
        return {"gflops": None, "reason": f"cannot read {cpuinfo}: {err.strerror}"}
    allowed = cpus
    if allowed is None and hasattr(os, "sched_getaffinity"):
        allowed = os.sched_getaffinity(0)
    mine = [b for b in blocks if allowed is None or int(b.get("processor", -1)) in allowed]
    mine = mine or blocks
    if not mine or "flags" not in mine[0]:
        return {"gflops": None, "reason": f"no processor flags in {cpuinfo} (not an x86 CPU?)"}
    flags = set(mine[0]["flags"].split())
    assumed = []
    if all("core id" in b for b in mine):
        cores = len({(b.get("physical id", "0"), b["core id"]) for b in mine})
    else:
        cores = len(mine)
        assumed.append("each logical CPU is a core (no core ids in cpuinfo)")
    simd = _simd(flags)
    if simd is None:
        return {"gflops": None, "reason": "no SIMD flags (sse2, avx, avx512f) in cpuinfo"}
    isa, lanes = simd
    if "fma" in flags or "avx512f" in flags:
        isa += "+fma"
        if fma_units is None:
            fma_units = 2
            assumed.append("2 FMA units per core (not readable; 1 on some AVX-512 Xeons)")
    elif fma_units is None:
        fma_units = 1  # one multiply and one add port: the same 2 flops per lane and cycle
        assumed.append("no FMA: one multiply and one add per lane and cycle")
    clock_ghz, source = _clock(mine, max_freq)
    if clock_ghz is None:
        return {"gflops": None, "reason": "no clock in cpuinfo or cpufreq"}
    return {
        "gflops": cores * lanes * fma_units * 2 * clock_ghz,
        "cores": cores,
        "simd_lanes": lanes,
        "fma_units": fma_units,
        "clock_ghz": clock_ghz,
        "clock_source": source,
        "isa": isa,
        "model": mine[0].get("model name", platform.processor()),
        "assumed": assumed,
    }


def _simd(flags: set[str]) -> tuple[str, int] | None:
    """The widest float32 SIMD of the flags and its lanes (``None``: none known)."""
    if "avx512f" in flags:
        return "avx512f", 16
    if "avx2" in flags or "avx" in flags:
        return ("avx2" if "avx2" in flags else "avx"), 8
    if "sse2" in flags:
        return "sse2", 4
    return None


def _clock(blocks: list[dict[str, str]], max_freq: str) -> tuple[float | None, str | None]:
    """The clock in GHz and where it was read: the kernel's maximum (the boost clock) where it
    exposes one, else the largest ``cpu MHz`` of cpuinfo."""
    try:
        with open(max_freq) as f:
            return int(f.read()) / 1e6, "cpufreq cpuinfo_max_freq (the boost clock)"
    except (OSError, ValueError):
        mhz = [float(b["cpu MHz"]) for b in blocks if "cpu MHz" in b]
        if mhz:
            return max(mhz) / 1e3, "cpuinfo 'cpu MHz' (a boost clock may exceed it)"
    return None, None


def _machine() -> dict[str, Any]:
    versions = {"python": platform.python_version(), "jax": jax.__version__}
    try:
        import jaxlib

        versions["jaxlib"] = jaxlib.__version__
    except (ImportError, AttributeError):
        pass
    if have_torch():
        import torch

        versions["torch"] = torch.__version__
    device = jax.devices()[0]
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": cpu_peak().get("model") or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "cpus_allowed": _cores(),
        "jax_device": f"{device.platform} ({device.device_kind})",
        "versions": versions,
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# --------------------------------------------------------------------------- PyTorch
@dataclasses.dataclass(frozen=True)
class TorchSetup:
    """One way to run PyTorch: ``processes`` workers at once, each with ``threads`` threads
    (``None``: PyTorch's default, one per physical core), eager or compiled."""

    processes: int = 1
    threads: int | None = None
    compiled: bool = False
    device: str = "cpu"

    def label(self, threads: int | None = None) -> str:
        """``"pytorch 2 processes x 1 thread, compiled"`` (``threads``: the count the workers
        reported, where ``self.threads`` is PyTorch's default)."""
        t = self.threads if self.threads is not None else threads
        each = "all threads" if t is None else f"{t} thread{'s' if t != 1 else ''}"
        procs = f"{self.processes} process{'es' if self.processes != 1 else ''}"
        where = f" on {self.device}" if self.device != "cpu" else ""
        return f"pytorch {procs} x {each}{', compiled' if self.compiled else ''}{where}"


def torch_setups(
    threads: int | None = None,
    processes: int | None = None,
    compiled: bool = False,
    device: str = "cpu",
) -> list[TorchSetup]:
    """PyTorch at its best on this machine: one process with ``threads`` threads (``None``: its
    default, every core), and ``processes`` one-thread processes at once (``None``: one per CPU
    this process may use on the CPU, none on a GPU; 0: none); each eager and, with
    ``compiled``, also ``torch.compile``-d."""
    if processes is None:
        processes = _cores() if device == "cpu" else 0
    shapes = [(1, threads)] + ([(processes, 1)] if processes > 0 else [])
    modes = (False, True) if compiled else (False,)
    return [TorchSetup(p, t, c, device) for c in modes for p, t in shapes]


class _Worker:
    """One PyTorch worker process (``jrobust/_src/torch_reference.py --serve``) and a thread
    that reads its answers, so that a caller can wait with a timeout."""

    def __init__(self, setup: TorchSetup, batch_size: int, warmup: int, seed: int) -> None:
        # The module runs as a script, so the worker imports PyTorch only, not jrobust (nor
        # JAX); -P keeps the script's folder off sys.path (its select.py is not the stdlib's).
        argv = [sys.executable, "-P", torch_reference.__file__, "--serve",
                "--batch-size", str(batch_size), "--device", setup.device,
                "--warmup", str(warmup)]  # fmt: skip
        env = dict(os.environ)
        if setup.threads is not None:
            argv += ["--threads", str(setup.threads)]
        if setup.threads == 1:  # no idle pools: OpenMP's, MKL's and the compiler's workers
            env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TORCHINDUCTOR_COMPILE_THREADS="1")
        if setup.compiled:
            argv.append("--compile")
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env)  # fmt: skip
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith(PROTOCOL_PREFIX):
                self.answers.put(json.loads(line[len(PROTOCOL_PREFIX) :]))
        self.answers.put(None)  # end of output: the worker is gone

    def answer(self, timeout: float) -> dict[str, Any]:
        try:
            record = self.answers.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"no answer within {timeout:.0f} s") from None
        if record is None:
            self.proc.wait(timeout=10)
            self.stderr.seek(0)
            tail = " ".join(self.stderr.read().split())[-400:]
            raise RuntimeError(f"the worker ended (exit {self.proc.returncode}): {tail}")
        return record

    def send(self, request: dict[str, Any]) -> None:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.stdin.close()  # end of input: the worker leaves its loop
                self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


class _TorchGroup:
    """The workers of one setup: started and warmed up together, then timed together."""

    def __init__(self, setup: TorchSetup, batch_size: int, warmup: int) -> None:
        self.setup, self.error = setup, None
        self.workers = [_Worker(setup, batch_size, warmup, seed=i) for i in range(setup.processes)]
        self.ready: list[dict[str, Any]] = []
        try:
            for w in self.workers:
                record = w.answer(_WORKER_TIMEOUT)
                if not record.get("ready"):
                    raise RuntimeError(record.get("error", "the worker could not start"))
                self.ready.append(record)
        except RuntimeError as err:
            self.error = str(err)
            self.close()

    @property
    def label(self) -> str:
        return self.setup.label(self.ready[0]["threads"] if self.ready else None)

    @property
    def compile_seconds(self) -> float:
        return max((r["compile_seconds"] for r in self.ready), default=math.nan)

    def run(self, steps: int) -> dict[str, float]:
        """Every worker trains ``steps`` steps, all starting at one moment of the monotonic
        clock; their instance-steps per second over the span from the first start to the last
        end, and the fraction of that span in which all of them ran (1: fully overlapped)."""
        start_at = time.monotonic() + 0.05 + 0.01 * len(self.workers)
        for w in self.workers:
            w.send({"steps": steps, "start_at": start_at})
        done = [w.answer(_WORKER_TIMEOUT) for w in self.workers]
        first, last = min(d["start"] for d in done), max(d["end"] for d in done)
        together = min(d["end"] for d in done) - max(d["start"] for d in done)
        span = last - first
        return {
            "rate": len(done) * steps / span,
            "seconds": span,
            "overlap": max(together, 0) / span,
        }

    def close(self) -> None:
        for w in self.workers:
            w.close()


def torch_one_at_a_time(
    steps: int = 300,
    batch_size: int = 64,
    threads: int | None = None,
    device: str = "cpu",
    compiled: bool = False,
) -> float:
    """Steps/s of PyTorch training the paper's model 1 one instance at a time, in one worker
    process (``jrobust._src.torch_reference``), after its warm-up; an ``ImportError`` when torch is
    not installed, a ``RuntimeError`` when the worker fails."""
    _require_torch()
    group = _TorchGroup(TorchSetup(1, threads, compiled, device), batch_size, TORCH_WARMUP)
    if group.error:
        raise RuntimeError(f"the PyTorch reference failed: {group.error}")
    try:
        return group.run(steps)["rate"]
    finally:
        group.close()


def _require_torch() -> None:
    if not have_torch():
        raise ImportError(
            "--torch needs PyTorch: pip install -e '.[torch]' (on this project's machines: "
            "pip install torch==2.13.0, a CPU build)"
        )


# --------------------------------------------------------------------------- the protocol
def _spread(values: Sequence[float]) -> tuple[float, float, float]:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan, math.nan
    return float(np.median(values)), float(min(values)), float(max(values))


def throughput(
    stack_sizes: Sequence[int] = DEFAULT_STACKS,
    *,
    steps: int = 50,
    batch_size: int = 64,
    repeats: int = 1,
    model: int = 1,
    test_size: int = 256,
    seed: int = 0,
    conv_impl: str | None = None,
    stack_mode: str | None = None,
    variants: Sequence[tuple[str | None, str | None]] | None = None,
    torch: bool = False,
    torch_threads: int | None = None,
    torch_processes: int | None = None,
    torch_compile: bool = False,
    torch_device: str = "cpu",
    matmul_n: int | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Time ``jrobust.train_stack`` of the paper's model ``model`` for each stack size, and with
    ``torch`` PyTorch at its best, in interleaved repeats (see the module docstring).

    Args:
      stack_sizes: instances per compiled call.
      steps: optimizer steps per instance and timed call, on both sides (the full protocol:
        ``FULL_STEPS``).
      batch_size: mini-batch size (the paper's model 1: 64).
      repeats: timed calls per setup, interleaved (the full protocol: ``FULL_REPEATS``).
      model: the paper model (1-4; PyTorch has model 1 only).
      test_size: test events each instance is evaluated on after training (part of its time).
      seed: seeds the random data.
      conv_impl: ``"im2col"``, ``"xla"`` or ``None`` (the trainer's choice for the backend).
      stack_mode: how a stack runs (``jrobust._src.train.resolve_stack_mode``; ``None``: the
        backend's choice).
      variants: several ``(conv_impl, stack_mode)`` pairs timed side by side instead of the
        one of ``conv_impl`` and ``stack_mode``.
      torch: also time PyTorch (needs the ``torch`` extra).
      torch_threads: threads of the one-process PyTorch setup (``None``: its default).
      torch_processes: one-thread PyTorch processes run at once (``None``: one per CPU on the
        CPU, none on a GPU; 0: none).
      torch_compile: also time ``torch.compile``-d setups.
      torch_device: PyTorch's device (``"cpu"``, ``"cuda"``).
      matmul_n: the matrices' size for the matmul rate (default 1024 on a CPU, 8192 on
        accelerators).
      progress: called with each row of the result.
      log: called with a line for each measurement as it is taken.

    Returns:
      DataFrame, one row per setup: ``framework``, ``setup``, ``stack``, ``conv_impl``,
      ``stack_mode``, ``processes``, ``threads``, ``compiled``, ``steps``, ``repeats``,
      ``instance_steps_per_s`` (median) with ``_min`` and ``_max``, ``seconds`` (median of a
      timed call), ``compile_seconds``, ``gflops``, ``matmul_fraction``, ``peak_fraction``,
      ``vs_stack1`` (with ``_min``, ``_max``), ``overlap`` (of a PyTorch group's processes),
      ``device``, ``error`` and, with ``torch``, ``vs_pytorch`` (with ``_min``, ``_max``).
      ``frame.attrs``: ``matmul_gflops`` (median), ``step_gflop``, ``peak``, ``matmul``,
      ``best_pytorch``, ``per_repeat``, ``machine``, ``protocol`` (``throughput_record``
      gathers them for JSON).
    """
    stacks = [int(s) for s in stack_sizes]
    pairs = list(variants) if variants else [(conv_impl, stack_mode)]
    _check_protocol(stacks, steps, batch_size, repeats, model, pairs, torch, torch_threads,
                    torch_processes)  # fmt: skip
    say = log or (lambda line: None)
    machine = _machine()
    on_cpu = jax.default_backend() == "cpu"
    n = matmul_n or (1024 if on_cpu else 8192)
    libraries = ("numpy", "xla") if on_cpu else ("xla",)
    peak = cpu_peak() if on_cpu else {"gflops": None, "reason": "not read on an accelerator"}

    train_size = steps * batch_size
    population = _population(train_size, test_size, seed)
    config = presets.paper_config(model, epochs=1, train_size=train_size, batch_size=batch_size,
                                  side_features=(), target=None, name=None)  # fmt: skip
    flops = own_flops(config, population.input_shape)
    device = str(jax.devices()[0].device_kind)

    def train(key: tuple, r: int) -> tuple[float, float]:
        stack, impl, mode = key
        t0 = time.perf_counter()
        out = train_stack([config] * stack, np.arange(stack) + stack * (r + 1), population,
                          seed=seed, bucket=stack, conv_impl=impl, stack_mode=mode)  # fmt: skip
        seconds = time.perf_counter() - t0
        return seconds, float(out["compile_seconds"])

    ours = [(s, impl, mode) for impl, mode in pairs for s in stacks]
    compiled = {key: _compile_first(train, key, pairs, say) for key in ours}

    groups: list[_TorchGroup] = []
    try:
        if torch:
            groups = _start_torch(torch_threads, torch_processes, torch_compile, torch_device,
                                  batch_size, say)  # fmt: skip
        run = _Repeats(train, ours, pairs, groups, steps, say)
        per_repeat = [run.one(r, repeats, n, libraries) for r in range(repeats)]
    finally:
        for group in groups:
            group.close()

    matmul_best = [max(rec["matmul_gflops"].values()) for rec in per_repeat]
    matmul = float(np.median(matmul_best))
    rows, best_torch = _rows(ours, pairs, groups, compiled, per_repeat, on_cpu, device)
    for row in rows:
        _derived(row, per_repeat, pairs, stacks, best_torch, torch, steps, flops, matmul, peak)
    columns = _COLUMNS + (["vs_pytorch", "vs_pytorch_min", "vs_pytorch_max"] if torch else [])
    frame = pd.DataFrame(rows, columns=columns)
    for row in frame.to_dict(orient="records"):
        if progress is not None:
            progress(row)
    machine["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    frame.attrs.update(
        matmul_gflops=matmul,
        step_gflop=flops / 1e9,
        peak=peak,
        matmul={"n": n, "libraries": list(libraries), "best_per_repeat": matmul_best},
        best_pytorch=best_torch,
        per_repeat=per_repeat,
        machine=machine,
        protocol=dict(
            model=model,
            batch_size=batch_size,
            steps=steps,
            repeats=repeats,
            stacks=stacks,
            variants=[[i or "auto", m or "auto"] for i, m in pairs],
            test_size=test_size,
            torch=torch,
            torch_warmup_steps=TORCH_WARMUP,
            torch_device=torch_device,
            order="each repeat: the matmul rate, then every jrobust stack and every PyTorch "
            "setup, jrobust first in even repeats and PyTorch first in odd ones",
            flops="matrix products of one step (jrobust._src.programs.own_flops)",
        ),  # fmt: skip
    )
    return frame


def _compile_first(train, key: tuple, pairs, say) -> float:
    """Run a stack once, untimed, so that its compilation is not timed; its compile seconds."""
    seconds, compile_seconds = train(key, -1)
    say(f"{_label(key, pairs)}: compiled in {compile_seconds or seconds:.1f} s")
    return compile_seconds or seconds


_COLUMNS = ["framework", "setup", "stack", "conv_impl", "stack_mode", "processes", "threads",
            "compiled", "steps", "repeats", "instance_steps_per_s", "instance_steps_per_s_min",
            "instance_steps_per_s_max", "seconds", "compile_seconds", "gflops",
            "matmul_fraction", "peak_fraction", "vs_stack1", "vs_stack1_min", "vs_stack1_max",
            "overlap", "device", "error"]  # fmt: skip


def _check_protocol(stacks, steps, batch_size, repeats, model, pairs, torch, torch_threads,
                    torch_processes) -> None:  # fmt: skip
    """Refuse a protocol that cannot run, before anything compiles or a worker starts."""
    if not stacks or any(s < 1 for s in stacks):
        raise ValueError(f"stack sizes must be positive integers, got {stacks}")
    if steps < 1 or batch_size < 1 or repeats < 1:
        raise ValueError(
            f"steps, batch_size and repeats must be >= 1, got {steps}, {batch_size}, {repeats}"
        )
    if torch_threads is not None and torch_threads < 1:
        raise ValueError(f"torch_threads must be >= 1 or None, got {torch_threads}")
    if torch_processes is not None and torch_processes < 0:
        raise ValueError(f"torch_processes must be >= 0 or None, got {torch_processes}")
    if torch and model != 1:
        raise ValueError(f"the PyTorch reference is the paper's model 1; got model={model}")
    if torch:
        _require_torch()
    for impl, mode in pairs:
        resolve_conv_impl(impl or "auto")
        resolve_stack_mode(mode)


def _start_torch(threads, processes, compiled, device, batch_size, say) -> list[_TorchGroup]:
    """Start (and warm up, and compile) every PyTorch setup's worker processes."""
    groups = []
    for setup in torch_setups(threads, processes, compiled, device):
        t0 = time.perf_counter()
        group = _TorchGroup(setup, batch_size, TORCH_WARMUP)
        groups.append(group)
        state = f"failed: {group.error}" if group.error else "ready"
        say(f"{group.label}: {state} ({time.perf_counter() - t0:.1f} s)")
    return groups


class _Repeats:
    """One repeat of the protocol: the matmul rate, then every jrobust stack and every PyTorch
    setup once, jrobust first in even repeats and PyTorch first in odd ones."""

    def __init__(self, train, ours, pairs, groups, steps, say) -> None:
        self.train, self.ours, self.pairs, self.steps, self.say = train, ours, pairs, steps, say
        self.groups = [g for g in groups if not g.error]

    def one(self, r: int, repeats: int, n: int, libraries) -> dict[str, Any]:
        record: dict[str, Any] = {"repeat": r, "matmul_gflops": {}, "rates": {},
                                  "seconds": {}, "overlap": {}}  # fmt: skip
        for lib in libraries:
            record["matmul_gflops"][lib] = matmul_gflops(n, library=lib)
        blocks = [(self._ours, self.ours), (self._torch, self.groups)]
        for measure, members in blocks if r % 2 == 0 else blocks[::-1]:
            for member in members:
                timed = measure(member, r, record)
                if timed is None:
                    continue
                label, rate, seconds = timed
                record["rates"][label], record["seconds"][label] = rate, seconds
                self.say(f"repeat {r + 1}/{repeats}: {label}: {rate:.1f} instance-steps/s")
        matmuls = ", ".join(f"{k} {v:.0f}" for k, v in record["matmul_gflops"].items())
        self.say(f"repeat {r + 1}/{repeats}: matmul {matmuls} GFLOP/s")
        return record

    def _ours(self, key: tuple, r: int, record: dict) -> tuple[str, float, float]:
        seconds, _ = self.train(key, r)
        return _label(key, self.pairs), key[0] * self.steps / seconds, seconds

    def _torch(self, group: _TorchGroup, r: int, record: dict):
        if group.error:
            return None
        try:
            timed = group.run(self.steps)
        except RuntimeError as err:
            group.error = f"repeat {r}: {err}"
            self.say(f"{group.label}: failed: {group.error}")
            return None
        record["overlap"][group.label] = timed["overlap"]
        return group.label, timed["rate"], timed["seconds"]


def _series(per_repeat: list[dict], label: str | None, field: str = "rates") -> list[float]:
    """One setup's values over the repeats (NaN where it did not run)."""
    return [rec[field].get(label, math.nan) for rec in per_repeat]


def _rows(ours, pairs, groups, compiled, per_repeat, on_cpu, device):
    """One row per setup (jrobust stacks, PyTorch setups) and the best PyTorch setup's label."""
    rows = []
    for key in ours:
        stack, impl, mode = key
        rows.append(dict(framework="jrobust", setup=_label(key, pairs), stack=stack,
                         conv_impl=impl or "auto", stack_mode=mode or "auto", processes=1,
                         threads=_cores() if on_cpu else None, compiled=True,
                         compile_seconds=compiled[key], device=device, error=None))  # fmt: skip
    for group in groups:
        s = group.setup
        rows.append(dict(framework="pytorch", setup=group.label, stack=1, conv_impl=None,
                         stack_mode=None, processes=s.processes,
                         threads=group.ready[0]["threads"] if group.ready else s.threads,
                         compiled=s.compiled, compile_seconds=group.compile_seconds,
                         device=s.device, error=group.error))  # fmt: skip
    medians = {row["setup"]: _spread(_series(per_repeat, row["setup"]))[0] for row in rows}
    working = [g.label for g in groups if not g.error and not math.isnan(medians[g.label])]
    best = max(working, key=lambda label: medians[label]) if working else None
    return rows, best


def _derived(row, per_repeat, pairs, stacks, best_torch, torch, steps, flops, matmul, peak):
    """A row's medians and ranges over the repeats, its GFLOP/s and shares, and its ratios to
    stack 1 and to the best PyTorch setup (medians of the ratios within each repeat)."""
    label = row["setup"]
    rates = _series(per_repeat, label)
    row["steps"], row["repeats"] = steps, sum(not math.isnan(v) for v in rates)
    mid, low, high = _spread(rates)
    row.update(instance_steps_per_s=mid, instance_steps_per_s_min=low,
               instance_steps_per_s_max=high,
               seconds=_spread(_series(per_repeat, label, "seconds"))[0])  # fmt: skip
    row["gflops"] = mid * flops / 1e9
    row["matmul_fraction"] = row["gflops"] / matmul
    row["peak_fraction"] = row["gflops"] / peak["gflops"] if peak.get("gflops") else math.nan
    base = None
    if row["framework"] == "jrobust" and 1 in stacks:
        base = _label((1, row["conv_impl"], row["stack_mode"]), pairs)
    ratios = [a / b for a, b in zip(rates, _series(per_repeat, base), strict=True)] if base else []
    row["vs_stack1"], row["vs_stack1_min"], row["vs_stack1_max"] = _spread(ratios)
    overlap = _spread(_series(per_repeat, label, "overlap"))[0]
    row["overlap"] = overlap if row["processes"] > 1 else math.nan
    if torch:
        best = _series(per_repeat, best_torch) if best_torch else [math.nan] * len(rates)
        ratios = [a / b for a, b in zip(rates, best, strict=True)]
        row["vs_pytorch"], row["vs_pytorch_min"], row["vs_pytorch_max"] = _spread(ratios)


def _label(key: tuple, pairs: Sequence[tuple]) -> str:
    """``"jrobust stack 8"``, with the convolution and stack mode where several are timed."""
    stack, impl, mode = key
    if len(pairs) == 1:
        return f"jrobust stack {stack}"
    return f"jrobust stack {stack} ({impl or 'auto'}, {mode or 'auto'})"


def _json_safe(value: Any) -> Any:
    if value is pd.NA:
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def throughput_record(frame: pd.DataFrame) -> dict[str, Any]:
    """Everything ``throughput`` measured, as one JSON-ready dict (``NaN`` becomes ``None``):
    ``rows``, ``per_repeat`` (every raw rate), ``matmul``, ``matmul_gflops``, ``peak``,
    ``step_gflop``, ``best_pytorch``, ``machine`` and ``protocol``."""
    record = {"rows": frame.to_dict(orient="records")}
    record.update(frame.attrs)
    return _json_safe(record)


def format_table(frame: pd.DataFrame, markdown: bool = False) -> str:
    """The rows as a text (or Markdown) table: median rate with its range, GFLOP/s, fractions
    of the matmul rate and of the peak, and the ratios."""
    has_peak = frame["peak_fraction"].notna().any()
    has_torch = "vs_pytorch" in frame
    head = ["setup", "instance-steps/s (min-max)", "GFLOP/s",
            f"of matmul ({frame.attrs['matmul_gflops']:.0f})"]  # fmt: skip
    if has_peak:
        head.append(f"of peak ({frame.attrs['peak']['gflops']:.0f})")
    head += ["vs stack 1 (min-max)"] + (["vs best PyTorch (min-max)"] if has_torch else [])
    has_groups = frame["overlap"].notna().any()
    head += ["compile s"] + (["overlap"] if has_groups else [])
    lines = []
    for row in frame.to_dict(orient="records"):
        if isinstance(row["error"], str) and row["error"]:  # a missing error reads NaN
            cells = [row["setup"], f"failed: {row['error'][:60]}"] + [""] * (len(head) - 2)
            lines.append(cells)
            continue
        rate = (f"{row['instance_steps_per_s']:.1f} ({row['instance_steps_per_s_min']:.1f}-"
                f"{row['instance_steps_per_s_max']:.1f})")  # fmt: skip
        cells = [
            row["setup"],
            rate,
            f"{row['gflops']:.1f}",
            f"{100 * row['matmul_fraction']:.0f} %",
        ]
        if has_peak:
            cells.append(f"{100 * row['peak_fraction']:.0f} %")
        cells.append(_ratio(row, "vs_stack1"))
        if has_torch:
            cells.append(_ratio(row, "vs_pytorch"))
        cells.append(f"{row['compile_seconds']:.1f}")
        if has_groups:  # the share of a process group's span in which all of them ran
            cells.append("" if math.isnan(row["overlap"]) else f"{100 * row['overlap']:.0f} %")
        lines.append(cells)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
        return "\n".join(out + ["| " + " | ".join(c) + " |" for c in lines])
    widths = [max(len(str(c[i])) for c in [head, *lines]) for i in range(len(head))]
    fmt = lambda cells: "  ".join(  # noqa: E731
        str(c).ljust(w) if i == 0 else str(c).rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )
    return "\n".join([fmt(head)] + [fmt(c) for c in lines])


def _ratio(row: dict[str, Any], name: str) -> str:
    if math.isnan(row[name]):
        return ""
    return f"{row[name]:.2f}x ({row[name + '_min']:.2f}-{row[name + '_max']:.2f})"

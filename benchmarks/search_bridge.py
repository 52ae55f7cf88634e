"""The Optuna front end's batches: the same trials asked ``batch`` at a time against one at a time.

    nice -n 10 python benchmarks/search_bridge.py                       # digits MLPs, batch 8 vs 1
    python benchmarks/search_bridge.py --trials 32 --batch 16 --instances 10 --repeats 7 \\
        --json benchmarks/results/search_bridge.json

Target (docs/search.md, "Optuna as a front end"): ``jrobust.integrations.optuna.optimize`` trains
a batch of trials faster per instance than one trial at a time.

**The same trials.** ``--trials`` parameter sets (learning rate and weight decay drawn
log-uniformly with ``--seed``, and a width from ``--widths``) are enqueued in a fresh in-memory
study for every run (``study.enqueue_trial``), so every run trains exactly the same models on
the same instances (common random numbers): the runs differ only in ``batch``. Their values
must agree (the script reports the largest relative difference between the two modes).

**Timing.** One run of each mode first compiles its programs (reported, excluded from the
speed); then ``--repeats`` repeats run both modes back to back, in alternating order
(``batch, 1`` then ``1, batch``), so a load change on a shared machine hits both. Reported per
mode: seconds per instance (a run's wall time / (trials x instances)), the median and range
over the repeats, and the median of the per-repeat ratios (one at a time / batched). No pruning
(``NopPruner``): every trial trains all its instances.

Prints one JSON object (``--json FILE`` writes it too).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import numpy as np

import jrobust


def population(name: str) -> jrobust.Population:
    if name == "digits":
        return jrobust.data.digits()
    return jrobust.data.calorimeter(4_000, "B", test_size=500, val_size=0)


def model(data: str, width: int, learning_rate: float, weight_decay: float, epochs: int):
    """The digits MLP (classification) or a small calorimeter CNN (energy regression)."""
    common = dict(learning_rate=learning_rate, weight_decay=weight_decay, optimizer="adamw")
    if data == "digits":
        return jrobust.zoo.mlp_config(
            hidden=(width,), outputs=10, loss="cross_entropy", metric="cross_entropy",
            train_size=1_000, batch_size=50, epochs=epochs, **common,
        )  # fmt: skip
    return jrobust.zoo.cnn_config(
        conv=(width,), pool=(2,), dense=(16,), train_size=1_000, batch_size=50, epochs=epochs,
        target="energy", **common,
    )  # fmt: skip


def trial_params(n: int, widths: list[int], seed: int) -> list[dict[str, Any]]:
    """The trials both modes train: learning rate, weight decay and width of each."""
    rng = np.random.default_rng(seed)
    return [
        dict(
            learning_rate=float(10 ** rng.uniform(-3, -1.5)),
            weight_decay=float(10 ** rng.uniform(-5, -2)),
            width=int(rng.choice(widths)),
        )
        for _ in range(n)
    ]


def run_once(pop, data: str, params, batch: int, instances: int, epochs: int, seed: int):
    """One ``optimize`` over the enqueued trials: ``(wall seconds, values)``."""
    import optuna

    from jrobust.integrations.optuna import optimize

    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        sampler=optuna.samplers.RandomSampler(seed=seed),
        pruner=optuna.pruners.NopPruner(),
    )
    for p in params:
        study.enqueue_trial(p)
    widths = sorted({p["width"] for p in params})

    def make_config(trial):
        return model(
            data,
            trial.suggest_categorical("width", widths),
            trial.suggest_float("learning_rate", 1e-3, 10**-1.5, log=True),
            trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
            epochs,
        )

    t0 = time.perf_counter()
    trials = optimize(
        study, make_config, pop, n_trials=len(params), batch=batch, instances=instances,
        seed=seed, compilation_cache=False,
    )  # fmt: skip
    return time.perf_counter() - t0, np.array([t.value for t in trials])


def bridge_speed(
    data: str = "digits",
    trials: int = 16,
    batch: int = 8,
    instances: int = 5,
    epochs: int = 5,
    widths: tuple[int, ...] = (32,),
    repeats: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Seconds per instance of ``optimize`` with ``batch`` trials at once against one at a time,
    on the same trials (see the module docstring)."""
    if trials % batch:
        raise ValueError(f"--trials ({trials}) must be a multiple of --batch ({batch})")
    pop = population(data)
    params = trial_params(trials, list(widths), seed)
    modes = (batch, 1)
    first, values = {}, {}
    for b in modes:  # compiles the programs of each mode: not part of the speed
        first[b], values[b] = run_once(pop, data, params, b, instances, epochs, seed)
    seconds: dict[int, list[float]] = {b: [] for b in modes}
    for r in range(repeats):
        for b in modes if r % 2 == 0 else modes[::-1]:
            wall, v = run_once(pop, data, params, b, instances, epochs, seed)
            seconds[b].append(wall / (trials * instances))
            np.testing.assert_allclose(v, values[b], rtol=1e-6)  # a run repeats exactly
    finite = np.isfinite(values[batch]) & np.isfinite(values[1])
    rel = np.abs(values[batch] - values[1])[finite] / np.abs(values[1])[finite]
    ratios = np.array(seconds[1]) / np.array(seconds[batch])

    def summary(xs):
        return dict(
            median=float(np.median(xs)), low=float(np.min(xs)), high=float(np.max(xs)),
            values=[float(x) for x in xs],
        )  # fmt: skip

    return dict(
        data=data,
        trials=trials,
        batch=batch,
        instances=instances,
        epochs=epochs,
        widths=list(widths),
        repeats=repeats,
        seed=seed,
        first_run_seconds={f"batch={b}": round(first[b], 2) for b in modes},
        seconds_per_instance={f"batch={b}": summary(seconds[b]) for b in modes},
        speedup=summary(ratios),
        max_relative_value_difference=float(rel.max()) if rel.size else 0.0,
        machine=dict(
            python=platform.python_version(),
            jax=__import__("jax").__version__,
            backend=__import__("jax").default_backend(),
            jrobust=jrobust.__version__,
        ),
    )


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", default="digits", choices=("digits", "calo-b"))
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--instances", type=int, default=5)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--widths", default="32", help="comma-separated widths to draw from")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the result to this file")
    args = p.parse_args(argv)
    out = bridge_speed(
        args.data, args.trials, args.batch, args.instances, args.epochs,
        tuple(int(w) for w in args.widths.split(",")), args.repeats, args.seed,
    )  # fmt: skip
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return out


if __name__ == "__main__":
    main()

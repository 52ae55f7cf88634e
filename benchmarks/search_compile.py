"""Compile seconds of a search's programs: a 2-layer CNN whose widths are ``intrange(8, 64)``.

    python benchmarks/search_compile.py [--events 4000] [--train-size 256]

A search plans its programs once, from every static variant of its space
(``jrobust._src.search.iterate.every_variant``): every width of an integer width range is one
variant of ONE merged program (``jrobust._src.models.merged``), so any width a later iteration
samples is a lane of a program compiled in the first. This script measures what that costs to
compile against the alternatives, on the synthetic calorimeter's 15x15 clusters:

- ``widest only``: the one variant at the widest widths (64, 64): the least a search can compile;
- ``8 widths``: a list of 8 widths (8, 16, ..., 64): a coarse grid of variants;
- ``intrange(8, 64)``: the 57 widths a search on ``conv=intrange(8, 64)`` plans.

For each it compiles the program's stack once (a fresh program cache, no persistent compilation
cache) at one stack size (4 lanes), then times a stack of 4 sampled lanes (compiled, data in
place) to show the training cost per stack. Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import jrobust
from jrobust import SearchSpace
from jrobust._src.engine import Engine
from jrobust._src.race.work import Work
from jrobust._src.search.iterate import every_variant
from jrobust._src.settings import Execution
from jrobust._src.train import ProgramCache
from jrobust.space import intrange, loguniform


def measure(label: str, space: SearchSpace, pop, lanes: int = 4) -> dict:
    variants = every_variant(space)
    engine = Engine(
        [],
        pop,
        Execution(merge="max", compilation_cache=False, min_bucket=lanes),
        0,
        variants=variants,
        cache=ProgramCache(),
    )
    program, size = engine.program(0), engine.size(0)
    t0 = time.perf_counter()
    engine.cache.executable(
        program, size, engine.placement, program.abstract_stack(size), engine.shared
    )
    compile_s = time.perf_counter() - t0
    models = engine.add(space.sample(lanes, seed=0))
    work = Work(models, np.zeros(lanes, np.int64))
    engine(work)  # the first call also draws the subsets and places the data
    t0 = time.perf_counter()
    engine(work)
    train_s = time.perf_counter() - t0
    return dict(
        label=label,
        variants=len(variants),
        programs=len(engine.plans),
        stack=size,
        compile_seconds=round(compile_s, 2),
        train_seconds_per_stack=round(train_s, 3),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--train-size", type=int, default=256)
    args = parser.parse_args()
    pop = jrobust.data.calorimeter(args.events, "B", test_size=500, val_size=0)
    base = jrobust.zoo.cnn_config(
        conv=(16, 16),
        pool=(2, 2),
        dense=(32,),
        train_size=args.train_size,
        batch_size=32,
        epochs=1,
        target="energy",
    )
    lr = loguniform(1e-4, 1e-2)
    spaces = [
        ("widest only", SearchSpace(base, conv=[(64, 64)], learning_rate=lr)),
        ("8 widths", SearchSpace(base, conv=[(w, w) for w in range(8, 65, 8)], learning_rate=lr)),
        ("intrange(8, 64)", SearchSpace(base, conv=intrange(8, 64), learning_rate=lr)),
    ]
    for label, space in spaces:
        print(json.dumps(measure(label, space, pop)), flush=True)


if __name__ == "__main__":
    main()

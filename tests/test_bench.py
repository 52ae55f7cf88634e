"""The throughput benchmark's machinery (not its speed): the theoretical peak read from a
cpuinfo file, the interleaved protocol's medians and paired ratios recomputed from its raw
measurements, the PyTorch workers started together, and the JSON record."""

import json
import math

import numpy as np
import pytest

from jrobust._src.bench import (
    TorchSetup,
    cpu_peak,
    format_table,
    throughput,
    throughput_record,
    torch_setups,
)
from jrobust._src.torch_reference import have_torch

CPUINFO = """\
processor	: {n}
model name	: Test CPU
physical id	: 0
core id		: {core}
cpu MHz		: {mhz}
flags		: fpu sse sse2 avx fma avx2 {extra}
"""


def write_cpuinfo(path, mhz=(3000.0, 3000.0, 3200.0, 3200.0), extra=""):
    """Four logical CPUs on two cores (two threads each)."""
    text = "\n".join(
        CPUINFO.format(n=n, core=n // 2, mhz=m, extra=extra) for n, m in enumerate(mhz)
    )
    path.write_text(text + "\n")
    return str(path)


def test_cpu_peak_from_cpuinfo(tmp_path):
    info = write_cpuinfo(tmp_path / "cpuinfo")
    none = str(tmp_path / "no-cpufreq")
    peak = cpu_peak(info, cpus={0, 1, 2, 3}, max_freq=none)
    # 2 physical cores x 8 float32 lanes (AVX2) x 2 FMA units (assumed) x 2 flops x 3.2 GHz
    assert peak["cores"] == 2 and peak["simd_lanes"] == 8 and peak["isa"] == "avx2+fma"
    assert peak["gflops"] == pytest.approx(2 * 8 * 2 * 2 * 3.2)
    assert any("FMA" in a for a in peak["assumed"])
    one_core = cpu_peak(info, cpus={0, 1}, max_freq=none, fma_units=1)
    assert one_core["gflops"] == pytest.approx(1 * 8 * 1 * 2 * 3.0) and not one_core["assumed"]
    wide = cpu_peak(write_cpuinfo(tmp_path / "avx512", extra="avx512f"), cpus={0}, max_freq=none)
    assert wide["simd_lanes"] == 16
    (tmp_path / "max_freq").write_text("3700000\n")  # kHz
    boosted = cpu_peak(info, cpus={0, 1, 2, 3}, max_freq=str(tmp_path / "max_freq"))
    assert boosted["clock_ghz"] == pytest.approx(3.7) and "boost" in boosted["clock_source"]
    assert cpu_peak(str(tmp_path / "missing"))["gflops"] is None


def test_torch_setups_cover_one_process_and_one_per_core():
    setups = torch_setups(threads=None, processes=2, compiled=True)
    assert [(s.processes, s.threads, s.compiled) for s in setups] == [
        (1, None, False), (2, 1, False), (1, None, True), (2, 1, True),
    ]  # fmt: skip
    assert torch_setups(processes=0) == [TorchSetup(1, None, False)]
    assert torch_setups(device="cuda") == [TorchSetup(1, None, False, "cuda")]  # no CPU workers
    assert TorchSetup(2, 1, True).label() == "pytorch 2 processes x 1 thread, compiled"


def paired_median(per_repeat, label, base):
    return float(np.median([r["rates"][label] / r["rates"][base] for r in per_repeat]))


def test_protocol_medians_and_paired_ratios_come_from_the_raw_repeats():
    frame = throughput((1, 2), steps=3, batch_size=8, repeats=3, test_size=16)
    per_repeat = frame.attrs["per_repeat"]
    assert len(per_repeat) == 3 and list(frame.setup) == ["jrobust stack 1", "jrobust stack 2"]
    for row in frame.to_dict(orient="records"):
        rates = [r["rates"][row["setup"]] for r in per_repeat]
        assert row["instance_steps_per_s"] == pytest.approx(np.median(rates))
        assert row["instance_steps_per_s_min"] == min(rates) and row["repeats"] == 3
        assert row["vs_stack1"] == pytest.approx(
            paired_median(per_repeat, row["setup"], "jrobust stack 1")
        )
        # GFLOP/s from the exact count (127.7 MFLOP at batch 64, so 1/8 of it at batch 8)
        assert row["gflops"] == pytest.approx(row["instance_steps_per_s"] * 127_700_352 / 8 / 1e9)
    matmul = [max(r["matmul_gflops"].values()) for r in per_repeat]
    assert frame.attrs["matmul_gflops"] == pytest.approx(np.median(matmul))
    assert set(per_repeat[0]["matmul_gflops"]) == {"numpy", "xla"}  # interleaved, every repeat
    record = json.loads(json.dumps(throughput_record(frame), allow_nan=False))
    assert record["rows"][1]["overlap"] is None and record["protocol"]["repeats"] == 3
    assert "jrobust stack 2" in format_table(frame)


@pytest.mark.skipif(not have_torch(), reason="needs the torch extra")
def test_pytorch_setups_are_timed_together_and_the_best_is_the_denominator():
    frame = throughput(
        (1,), steps=10, batch_size=8, repeats=2, test_size=16, torch=True, torch_processes=2
    )
    assert list(frame.framework) == ["jrobust", "pytorch", "pytorch"]
    assert frame.error.isna().all() and (frame.repeats == 2).all()
    group = frame[frame.processes == 2].iloc[0]
    assert group.threads == 1 and 0.3 < group.overlap <= 1.0  # the two workers ran at once
    best = frame.attrs["best_pytorch"]
    torch_rows = frame[frame.framework == "pytorch"]
    assert best == torch_rows.loc[torch_rows.instance_steps_per_s.idxmax(), "setup"]
    per_repeat = frame.attrs["per_repeat"]
    for row in frame.to_dict(orient="records"):
        assert row["vs_pytorch"] == pytest.approx(paired_median(per_repeat, row["setup"], best))
    assert math.isclose(frame.set_index("setup").loc[best, "vs_pytorch"], 1.0)
    # the frameworks alternate: jrobust first in even repeats, PyTorch first in odd ones
    assert [next(iter(r["rates"])).split()[0] for r in per_repeat] == ["jrobust", "pytorch"]


def test_bad_settings_are_refused_before_compiling():
    with pytest.raises(ValueError, match="model 1"):
        throughput((1,), model=2, torch=True)
    with pytest.raises(ValueError, match="stack_mode"):
        throughput((1,), stack_mode="sideways")
    with pytest.raises(ValueError, match="positive"):
        throughput((0,))


@pytest.mark.skipif(not have_torch(), reason="needs the torch extra")
def test_a_pytorch_setup_that_fails_to_compile_is_reported_and_left_out(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", "/bin/false")  # inductor finds no working C++ compiler
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))  # and no kernels cached
    frame = throughput(
        (1,), steps=5, batch_size=8, test_size=16, torch=True, torch_processes=0,
        torch_compile=True,
    )  # fmt: skip
    eager, compiled = frame[frame.framework == "pytorch"].to_dict(orient="records")
    assert compiled["compiled"] and "Compiler" in compiled["error"]
    assert math.isnan(compiled["instance_steps_per_s"]) and compiled["repeats"] == 0
    assert frame.attrs["best_pytorch"] == eager["setup"] and eager["vs_pytorch"] == 1.0
    record = json.loads(json.dumps(throughput_record(frame), allow_nan=False))
    assert record["rows"][2]["error"] == compiled["error"] and record["rows"][1]["error"] is None
    assert "failed: " in format_table(frame)

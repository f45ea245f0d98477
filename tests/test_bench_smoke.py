"""Smoke run of the benchmark suite at tiny sizes: every workload runs for chainrule (eager and
compiled) and every installed peer, and all of them report the same losses step after step
(same weights, same data). No timing is asserted."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
import run  # noqa: E402
from workloads import NO_LOSS, WORKLOADS, as_float  # noqa: E402

STEPS = 3


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workload_runs_and_frameworks_agree(name):
    wl = WORKLOADS[name]
    runners, skipped = run.build(wl, wl.tiny)
    assert "chainrule" in runners and "chainrule.compile" in runners
    losses = {}
    for fw, r in runners.items():
        out = [r.step() for _ in range(STEPS)]
        r.sync()
        if fw not in NO_LOSS:
            losses[fw] = [as_float(v) for v in out]
    ref = losses["chainrule"]
    assert all(np.isfinite(ref))
    for fw, ls in losses.items():
        # float32 everywhere except micrograd (Python floats): agree to float32 precision
        np.testing.assert_allclose(ls, ref, rtol=2e-5, atol=1e-6, err_msg=fw)


def test_report_is_written(tmp_path):
    wl = WORKLOADS["small_mlp"]
    runners, _ = run.build(wl, wl.tiny, only="chainrule")
    timed = run.time_workload(runners, rounds=2, block_s=1e-4)
    report = {"date": "today", "machine": run.machine(1),
              "workloads": {"small_mlp": {"title": wl.title, "frameworks": timed,
                                          "skipped": {"torch": "not installed (torch)"}}}}
    report["targets"] = run.evaluate_targets(report["workloads"])
    report["references"] = run.evaluate_targets(report["workloads"], run.REFERENCES)
    md = run.markdown(report)
    assert "| chainrule |" in md and "small MLP, eager ÷ PyTorch" in md
    # workloads not run are "n/a", for the set targets and the reference rows alike
    assert "| medium MLP, eager ÷ PyTorch | n/a | 1.00 | n/a |" in md
    assert md.rstrip().endswith("| n/a | 1.10 | n/a |")
    path = tmp_path / "latest.md"
    run.write_text_atomic(str(path), md)
    assert path.read_text() == md


def test_memory_probes_report_peaks():
    """Both memory measures run in fresh processes: peak RSS always, peak heap with memray."""
    out = run.measure_memory("small_mlp", "chainrule", threads=1, runs=1)
    assert "error" not in out, out
    assert out["peak_rss_mb"] >= 0 and len(out["peak_rss_mb_runs"]) == 1
    try:
        import memray  # noqa: F401
    except ImportError:
        assert "peak_heap_mb" not in out
    else:
        # the small MLP's gradients alone are (64*64 + 64*64 + 64*10 + 138) float32 values
        grads_mb = (64 * 64 * 2 + 64 * 10 + 138) * 4 / 2**20
        assert out["peak_heap_mb"] >= grads_mb

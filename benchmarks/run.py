"""The benchmark suite: chainrule against PyTorch, JAX, HIPS autograd, scikit-learn and micrograd.

Every workload (benchmarks/workloads.py) runs for chainrule (eager and compiled) and each
installed peer in this one process, interleaved (A B C, then B C A, ...), from the same weights
and batch; the table shows the median time per training step (forward + backward + SGD update),
chainrule's ratio to each, peak memory and the first-step loss (equal losses = same problem).
Float32 throughout (micrograd computes in Python floats); Python's garbage collector is paused
inside each timed round, as timeit does. Threads are pinned before anything
is imported: BLAS (OpenBLAS/MKL env vars and threadpoolctl), torch (set_num_threads), XLA
(flags) and the process itself (CPU affinity), so no framework gets a second core through helper
threads (JAX's asynchronous dispatch would otherwise overlap Python with compute).

Peak memory (of training), measured two ways in fresh subprocesses, each of which builds and
runs a throwaway copy first (so one-time allocations - BLAS buffers - are already made), then
builds the model and trains (for jax.jit and chainrule.compile the first step compiles):
- peak heap (the target's measure): memray traces every allocation, native (malloc, NumPy,
  torch, XLA) and Python objects alike, during 3 steps; reported is the most memory allocated
  in those steps and not yet freed at one moment: gradients, optimiser state, activations,
  temporaries, graph records. Exact to the byte and the same in every run.
- peak RSS: the kernel's peak-RSS counter is reset, 21 steps run (fewer if a step takes
  seconds); reported is that peak minus the resident size before the first step and minus the
  file pages (library code) the steps mapped in, the median of three processes. glibc is told
  to map every block of 64 KiB or more on its own and to return freed memory at once, so RSS
  tracks live memory, but page granularity and the allocator's reuse of freed resident pages
  move one process's reading by about 0.1 MB.

Usage: python benchmarks/run.py [--threads N] [--workloads small_mlp,...] [--rounds R]
       [--no-memory]. Writes benchmarks/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import os
import sys


def _pin_threads(n: int) -> None:
    """Pin every thread pool to ``n`` threads and the process to ``n`` CPUs (before imports)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(n)
    eigen = "true" if n > 1 else "false"
    os.environ["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={eigen} "
                               f"intra_op_parallelism_threads={n}")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:n]
        os.sched_setaffinity(0, cpus)


def _threads_arg(argv: list[str]) -> int:
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return 1


if __name__ == "__main__":
    _pin_threads(_threads_arg(sys.argv))

import datetime  # noqa: E402  (threads must be pinned before NumPy loads its BLAS)
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import NO_LOSS, WORKLOADS, Runner, Workload, as_float  # noqa: E402

from chainrule.io import write_text_atomic  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MEMORY_STEPS = 20
MEMORY_RUNS = 3  # fresh processes per framework for peak RSS; the median is reported
HEAP_STEPS = 3  # steps traced by memray for the peak heap (the same in every step after the first)

# (title, workload, numerator, denominator, measure, limit, strict): ratio < limit if strict
TARGETS = [
    ("medium MLP, eager ÷ GEMM floor", "medium_mlp", "chainrule", "gemm floor", "median_s",
     1.10, False),
    ("medium MLP, eager ÷ PyTorch", "medium_mlp", "chainrule", "torch", "median_s", 1.00, True),
    ("small MLP, eager ÷ PyTorch", "small_mlp", "chainrule", "torch", "median_s", 0.50, False),
    ("small MLP, compiled ÷ jax.jit", "small_mlp", "chainrule.compile", "jax.jit", "median_s",
     1.00, False),
    ("conv net, eager ÷ PyTorch", "lenet", "chainrule", "torch", "median_s", 1.50, False),
    ("medium MLP peak memory, eager ÷ PyTorch", "medium_mlp", "chainrule", "torch",
     "peak_heap_mb", 1.00, False),
]
# Not one of the set targets, shown beside them: the floor above multiplies batch-major, as
# hand-written NumPy does; chainrule stores small batches feature-major, whose products OpenBLAS
# runs faster. Against the same products in those layouts, the step's overhead shows unflattered.
REFERENCES = [
    ("medium MLP, eager ÷ GEMM floor in chainrule's layouts", "medium_mlp", "chainrule",
     "gemm floor, feature-major", "median_s", 1.10, False),
]


def pin_libraries(n: int) -> None:
    """Thread limits that need the libraries loaded: threadpoolctl (BLAS) and torch."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # already set (torch allows it once)
            pass
    except ImportError:
        pass


def machine(threads: int) -> dict[str, Any]:
    """What ran the benchmark: CPU, memory, OS, Python and library versions, threads."""
    info: dict[str, Any] = {"threads": threads, "python": platform.python_version(),
                            "os": f"{platform.system()} {platform.release()}",
                            "cpus": os.cpu_count(), "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(ln.split(":", 1)[1].strip() for ln in f
                               if ln.startswith("model name"))
        with open("/proc/meminfo") as f:
            kb = int(next(ln.split()[1] for ln in f if ln.startswith("MemTotal")))
            info["memory_gib"] = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or "unknown"
    try:
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            b = blas[0]
            info["blas"] = f"{b['internal_api']} {b.get('version')} {b.get('architecture', '')}"
            info["blas"] = info["blas"].strip()
    except ImportError:
        pass
    import importlib.metadata as md

    for pkg in ("torch", "jax", "jaxlib", "autograd", "scikit-learn", "micrograd"):
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return info


def build(wl: Workload, sizes: dict, only: str | None = None
          ) -> tuple[dict[str, Runner], dict[str, str]]:
    """Runners of every installed framework (or just ``only``), and why others were skipped."""
    problem = wl.make(**sizes)
    runners, skipped = {}, {}
    for name, builder in wl.builders.items():
        if only is not None and name != only:
            continue
        try:
            runners[name] = builder(problem)
        except ImportError as e:
            skipped[name] = f"not installed ({e.name or e})"
    return runners, skipped


def time_workload(runners: dict[str, Runner], rounds: int, block_s: float = 0.02
                  ) -> dict[str, dict[str, Any]]:
    """Median seconds per step of each runner, measured in interleaved, rotating rounds."""
    out: dict[str, dict[str, Any]] = {}
    inner: dict[str, int] = {}
    for name, r in runners.items():
        loss = r.step()
        r.sync()
        out[name] = {"first_loss": None if name in NO_LOSS else as_float(loss)}
        for _ in range(2):
            r.step()
        r.sync()
        t = time.perf_counter()
        r.step()
        r.sync()
        inner[name] = max(1, min(500, int(block_s / max(time.perf_counter() - t, 1e-7))))
    names = list(runners)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for k in range(rounds):
        gc.collect()
        gc.disable()  # as timeit does: no collector pause lands in one framework's block
        try:
            for name in names[k % len(names):] + names[:k % len(names)]:
                r, n = runners[name], inner[name]
                t = time.perf_counter()
                for _ in range(n):
                    r.step()
                r.sync()
                samples[name].append((time.perf_counter() - t) / n)
        finally:
            gc.enable()
    for name, ts in samples.items():
        out[name].update(median_s=statistics.median(ts), min_s=min(ts), steps=inner[name] * rounds)
    return out


# -- peak memory in a fresh subprocess ---------------------------------------------------------
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def probe_memory(workload: str, framework: str, method: str = "rss") -> dict[str, Any]:
    """Run inside the subprocess: the peak memory of training one framework's model, measured
    by ``method``: "heap" (memray: bytes allocated and not yet freed) or "rss" (resident pages)."""
    wl = WORKLOADS[workload]
    if method == "heap":
        try:
            import memray
        except ImportError:
            return {"error": "memray not installed (pip install -e \".[bench]\")"}
    warm, _ = build(wl, wl.full, only=framework)
    if framework not in warm:
        return {"error": "not installed"}
    for _ in range(2):
        warm[framework].step()
    warm[framework].sync()
    del warm
    runners, _ = build(wl, wl.full, only=framework)
    r = runners[framework]
    gc.collect()
    if method == "heap":
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "steps.bin")
            with memray.Tracker(path, trace_python_allocators=True):
                for _ in range(HEAP_STEPS):
                    r.step()
                r.sync()
            peak = memray.FileReader(path).metadata.peak_memory
        return {"peak_heap_mb": round(peak / 2**20, 3)}
    base, base_file = _status_kb("VmRSS"), _status_kb("RssFile")
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS counter (VmHWM)
        f.write("5")
    t = time.perf_counter()
    r.step()
    r.sync()
    steps = max(3, min(MEMORY_STEPS, int(5.0 / max(time.perf_counter() - t, 1e-9))))
    for _ in range(steps):  # (fewer for very slow frameworks: micrograd takes seconds a step)
        r.step()
    r.sync()
    # less the code and data files the steps mapped in (they stay mapped; how many pages the
    # kernel maps around each fault depends on the page cache, +-0.1 MB between runs for torch)
    code = _status_kb("RssFile") - base_file
    return {"peak_rss_mb": round((_status_kb("VmHWM") - base - code) / 1024, 2)}


def _probe(workload: str, framework: str, threads: int, method: str) -> dict[str, Any]:
    """One fresh subprocess running ``probe_memory``; its JSON answer."""
    cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(threads),
           "--probe-memory", workload, framework, method]
    # glibc: blocks of 64 KiB and more are mapped and unmapped one by one (no dynamic threshold,
    # no cached free memory), so RSS follows live memory whichever allocator sits on malloc
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True,
                             env=env)
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as e:
        return {"error": f"memory probe failed: {e}"}


def measure_memory(workload: str, framework: str, threads: int, runs: int = MEMORY_RUNS
                   ) -> dict[str, Any]:
    """Peak memory of one framework on one workload: the heap peak (one process: it is the same
    in every run) and the median peak RSS of ``runs`` processes (it varies by ~0.1 MB)."""
    out: dict[str, Any] = {}
    heap = _probe(workload, framework, threads, "heap")
    if "peak_heap_mb" in heap:
        out["peak_heap_mb"] = heap["peak_heap_mb"]
    elif heap.get("error") == "not installed":
        return heap
    peaks = []
    for _ in range(runs):
        rss = _probe(workload, framework, threads, "rss")
        if "peak_rss_mb" not in rss:
            return {**out, **rss}
        peaks.append(rss["peak_rss_mb"])
    return {**out, "peak_rss_mb": statistics.median(peaks), "peak_rss_mb_runs": peaks}


# -- report --------------------------------------------------------------------------------------
def _fmt_time(s: float) -> str:
    if s >= 1e-1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} µs"


def _fmt_mb(mb: float | None) -> str:
    if mb is None:
        return "-"
    return "< 0.01 MB" if mb < 0.005 else f"{mb:.2f} MB"


def _fmt_ratio(r: float) -> str:
    return f"{r:.2f}" if r >= 0.01 else f"{r:.1e}"


def evaluate_targets(results: dict[str, Any], targets: list[tuple] = TARGETS
                     ) -> list[dict[str, Any]]:
    """Each target's ratio in this run and whether it is met (None: a side was not measured)."""
    rows = []
    for title, wname, num, den, key, limit, strict in targets:
        fw = results.get(wname, {}).get("frameworks", {})
        a, b = fw.get(num, {}).get(key), fw.get(den, {}).get(key)
        ratio = a / b if a is not None and b else None
        met = None if ratio is None else (ratio < limit if strict else ratio <= limit)
        rows.append({"target": title, "ratio": None if ratio is None else round(ratio, 3),
                     "limit": limit, "met": met})
    return rows


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: a machine line, one table per workload, the targets table."""
    m = report["machine"]
    lines = [f"Benchmarks run on {report['date']}: {m.get('cpu', '?')} ({m.get('cpus')} CPUs, "
             f"{m.get('memory_gib', '?')} GiB), {m.get('os')}, Python {m.get('python')}, "
             f"NumPy {m.get('numpy')} ({m.get('blas', '?')})"
             + "".join(f", {k} {m[k]}" for k in ("torch", "jax", "autograd", "scikit-learn",
                                                 "micrograd") if k in m)
             + f"; **{m['threads']} thread(s)**, process pinned to {m['threads']} CPU(s). "
             "Median time per training step (forward + backward + SGD update), float32. "
             "Ratio columns: chainrule's time ÷ this row's (below 1: chainrule is faster). "
             "Peak heap: the most memory allocated and not yet freed at once while training "
             "(gradients, optimiser state, activations, temporaries, Python objects; NumPy, "
             "torch and XLA buffers alike), traced by memray, the same in every run. Peak RSS: "
             "the resident-size high-water mark above the built model's, less library code paged "
             "in; the median of three fresh processes (it varies by about 0.1 MB).", ""]
    for res in report["workloads"].values():
        fw = res["frameworks"]
        lines += [f"**{res['title']}**", "",
                  "| framework | time / step | chainrule ÷ | chainrule.compile ÷ | peak heap "
                  "| peak RSS | first loss |", "|---|---:|---:|---:|---:|---:|---:|"]
        base = fw.get("chainrule", {}).get("median_s")
        comp = fw.get("chainrule.compile", {}).get("median_s")
        for name, r in fw.items():
            t = r.get("median_s")
            if t is None:
                lines.append(f"| {name} | {r.get('error', 'skipped')} | | | | | |")
                continue
            ra = _fmt_ratio(base / t) if base else ""
            rc = _fmt_ratio(comp / t) if comp else ""
            heap, rss = _fmt_mb(r.get("peak_heap_mb")), _fmt_mb(r.get("peak_rss_mb"))
            loss = "-" if r.get("first_loss") is None else f"{r['first_loss']:.6f}"
            lines.append(f"| {name} | {_fmt_time(t)} | {ra} | {rc} | {heap} | {rss} | {loss} |")
        for name, why in res.get("skipped", {}).items():
            lines.append(f"| {name} | {why} | | | | | |")
        lines.append("")
    lines += ["**Targets** (ratios from this run)", "", "| target | measured | limit | met |",
              "|---|---:|---:|:-:|"]
    for t in report["targets"]:
        ratio = "n/a" if t["ratio"] is None else f"{t['ratio']:.2f}"
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['target']} | {ratio} | {t['limit']:.2f} | {met} |")
    for t in report.get("references", []):
        ratio = "n/a" if t["ratio"] is None else f"{t['ratio']:.2f}"
        met = {True: "within", False: "above", None: "n/a"}[t["met"]]
        lines.append(f"| *reference, not a set target:* {t['target']} | {ratio} | "
                     f"{t['limit']:.2f} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="threads (and CPUs) for every framework")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated names")
    ap.add_argument("--rounds", type=int, default=21, help="interleaved timing rounds")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="results directory")
    ap.add_argument("--probe-memory", nargs=3, metavar=("WORKLOAD", "FRAMEWORK", "METHOD"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    pin_libraries(args.threads)
    if args.probe_memory:
        print(json.dumps(probe_memory(*args.probe_memory)))
        return

    names = [w for w in args.workloads.split(",") if w]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    info = machine(args.threads)
    print(f"threads pinned: {args.threads} (BLAS: {info.get('blas', '?')}, torch, XLA, "
          f"CPU affinity {sorted(os.sched_getaffinity(0))})")
    report: dict[str, Any] = {"date": datetime.date.today().isoformat(), "machine": info,
                              "workloads": {}}
    for wname in names:
        wl = WORKLOADS[wname]
        print(f"\n{wl.title}", flush=True)
        runners, skipped = build(wl, wl.full)
        rounds = args.rounds if wname != "micrograd" else max(5, args.rounds // 3)
        timed = time_workload(runners, rounds)
        for name, r in timed.items():
            if not args.no_memory and name not in NO_LOSS:  # (the GEMM floor trains nothing)
                r.update(measure_memory(wname, name, args.threads))
            mem = " ".join(f"{k} {r[f'peak_{k}_mb']:.2f} MB" for k in ("heap", "rss")
                           if r.get(f"peak_{k}_mb") is not None)
            print(f"  {name:18s} {_fmt_time(r['median_s']):>10s} {mem}", flush=True)
        report["workloads"][wname] = {"title": wl.title, "frameworks": timed,
                                      "skipped": skipped}
        del runners
        gc.collect()
    report["targets"] = evaluate_targets(report["workloads"])
    report["references"] = evaluate_targets(report["workloads"], REFERENCES)
    md = markdown(report)
    print("\n" + md)
    os.makedirs(args.out, exist_ok=True)
    write_text_atomic(os.path.join(args.out, "latest.json"), json.dumps(report, indent=2) + "\n")
    write_text_atomic(os.path.join(args.out, "latest.md"), md)
    print(f"wrote {os.path.join(args.out, 'latest.json')} and latest.md")


if __name__ == "__main__":
    main()

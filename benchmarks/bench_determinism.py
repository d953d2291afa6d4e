"""Where the three models' numbers depend on the CPU, bit for bit, and what the deterministic setting costs.

Usage:
  python benchmarks/bench_determinism.py compare [--archs ...] [--steps 5] [--groups ...] [--as zen3 skylake zen5]
  python benchmarks/bench_determinism.py speed [--n 640] [--epochs 2] [--repeats 3] [--batch-size B]

`compare` runs each model, built with the same seed on the same tiny fixed batch, in one
subprocess per CPU setting (oneDNN's ISA cap, oneDNN on/off, thread counts) and, with `--as`,
also as on other CPUs (other cache sizes, AVX-512 or AMX hidden: benchmarks/othercpu.py); it
compares every layer output of a forward pass, every gradient and the weights after one and after
`--steps` Adam steps bit for bit with the first setting, and names the first differing layer
and its op type, and the largest differences.

`speed` times model.fit on random images under TensorFlow's default, TensorFlow with its oneDNN
ops forced on (its default on CPUs with AVX-512 VNNI/BF16 or AMX), and `base.deterministic` with
each `base.cpu_isa`, one subprocess per measurement, alternating the settings and repeating,
since other jobs on a shared CPU make single timings noisy. Each model trains with the batch size
of its stage in params.yaml unless `--batch-size` sets one for all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/machine.py
from machine import cpu_description  # noqa: E402
import othercpu  # noqa: E402
from cosmic.cli import positive_int  # noqa: E402
from cosmic.learning.determinism import CPU_ENV_KEYS, deterministic_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARCHS = ("baseline", "transfer", "optimized")

# oneDNN picks its kernels from the CPU at run time. TensorFlow uses it for its oneDNN ops (on by default
# only on CPUs with AVX512_VNNI/AVX512_BF16/AMX..., such as AMD Zen 4/5: TF_ENABLE_ONEDNN_OPTS=1 forces them
# elsewhere) and for the sgemm inside its Eigen matrix products and convolutions.
ONEDNN_OFF = {"TF_ENABLE_ONEDNN_OPTS": "0", "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "0"}
ONEDNN_OPS = {"TF_ENABLE_ONEDNN_OPTS": "1"}
# The setting of cosmic/learning/determinism.py before it used oneDNN's ops: Eigen's kernels, whose block sizes
# follow the CPU's caches.
EIGEN_DETERMINISTIC = {**ONEDNN_OFF, "ONEDNN_MAX_CPU_ISA": "AVX", "TF_NUM_INTRAOP_THREADS": "2"}


def _threads(n: int) -> dict:
    return {"TF_NUM_INTRAOP_THREADS": str(n), "TF_NUM_INTEROP_THREADS": str(n)}


# (group, name, environment[, CPUs to pin to]). Each setting is compared bit for bit with the first of its
# group, and each group's first with the first of all. The last group is base.deterministic as the stages
# set it, under what another CPU would change: the number of cores (and, with --as, caches and ISA).
SETTINGS = (
    ("default", "TF default", {}),
    ("default", "default ISA<=AVX", {"ONEDNN_MAX_CPU_ISA": "AVX"}),
    ("default", "default ISA<=SSE41", {"ONEDNN_MAX_CPU_ISA": "SSE41"}),
    ("default", "default 1 thread", _threads(1)),
    ("default", "default 4 threads", _threads(4)),
    ("ops", "oneDNN ops", ONEDNN_OPS),
    ("ops", "oneDNN ops ISA<=SSE41", {**ONEDNN_OPS, "ONEDNN_MAX_CPU_ISA": "SSE41"}),
    ("eigen", "no oneDNN", ONEDNN_OFF),
    ("eigen", "no oneDNN ISA<=AVX", {**ONEDNN_OFF, "ONEDNN_MAX_CPU_ISA": "AVX"}),
    ("eigen", "no oneDNN 1 thread", {**ONEDNN_OFF, **_threads(1)}),
    ("eigen", "no oneDNN 4 threads", {**ONEDNN_OFF, **_threads(4)}),
    ("eigen", "earlier deterministic", EIGEN_DETERMINISTIC),
    ("deterministic", "base.deterministic", deterministic_env()),
    ("deterministic", "deterministic on 1 CPU", deterministic_env(), "0"),
    ("portable", "cpu_isa avx2", deterministic_env(0, "avx2")),
)
# With --as: these settings are run again as on each other CPU, and compared with themselves here.
AS_OTHER = ("earlier deterministic", "base.deterministic", "cpu_isa avx2")


def _tuned_args() -> dict:
    """The tuner's committed best CNN (metrics/tune.json), so no DVC output is needed."""
    hp = json.loads((REPO / "metrics" / "tune.json").read_text())["best_hyperparameters"]
    blocks = sorted(k for k in hp if k.startswith("filters_block"))
    return {"filters": tuple(int(hp[k]) for k in blocks), "dense_units": int(hp["dense_units"]),
            "dropout": float(hp["dropout"])}


def build(arch: str, image_size: int):
    """The model a training stage trains, as in params.yaml (transfer: from scratch, as when offline)."""
    from cosmic import params
    from cosmic.learning.models import build_baseline, build_transfer, resolve_scaling

    raw = params.load(REPO / "params.yaml")
    if arch == "baseline":
        c = params.train_baseline(raw).cnn
        return build_baseline(image_size, c.filters, c.kernel_size, c.dense_units, c.dropout)
    if arch == "transfer":
        t = params.train_transfer(raw)
        return build_transfer(image_size, t.input_size, t.alpha, t.dropout, freeze_base=False,
                              scaling=resolve_scaling(t.input_scaling, pretrained=False))[0]
    return build_baseline(image_size, name="optimized_cnn", **_tuned_args())


def stage_batch_size(arch: str) -> int:
    """The batch size the model's training stage uses (params.yaml)."""
    from cosmic import params

    raw = params.load(REPO / "params.yaml")
    stage = {"baseline": params.train_baseline, "transfer": params.train_transfer,
             "optimized": params.train_optimized}[arch]
    return stage(raw).fit.batch_size


def _layer_outputs(model, x) -> list[tuple[str, str, np.ndarray]]:
    """(name, class, output) of every layer in order, descending into nested models (MobileNetV2)."""
    import keras

    out = []
    for layer in model.layers[1:]:
        if isinstance(layer, keras.Model):
            inner = keras.Model(layer.inputs, [sub.output for sub in layer.layers[1:]])
            for sub, y in zip(layer.layers[1:], inner(x, training=True)):
                out.append((f"{layer.name}/{sub.name}", type(sub).__name__, np.asarray(y)))
            x = layer(x, training=True)
        else:
            x = layer(x, training=True)
            out.append((layer.name, type(layer).__name__, np.asarray(x)))
    return out


def probe(arch: str, out: Path, steps: int) -> None:
    """Child process: forward outputs, gradients and weights after 1 and `steps` Adam steps, to an .npz."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(42)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 64, 64, 3)).astype(np.float32)
    y = rng.integers(0, 2, (16, 1)).astype(np.float32)
    model = build(arch, 64)
    arrays = {}
    # Dropout is the identity in these probes: its masks are seeded alike in every setting anyway.
    for i, (name, cls, value) in enumerate(_layer_outputs(model, tf.constant(x))):
        if cls != "Dropout":
            arrays[f"fwd|{i:03d}|{name}|{cls}"] = value
    loss_fn = keras.losses.BinaryCrossentropy()
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    for i, (v, g) in enumerate(zip(model.trainable_weights, grads)):
        arrays[f"grad|{i:03d}|{v.path}"] = np.asarray(g)
    opt = keras.optimizers.Adam(1e-3)
    model.compile(optimizer=opt, loss=loss_fn)
    for step in range(steps):
        model.train_on_batch(x, y)
        if step in (0, steps - 1):
            for i, v in enumerate(model.weights):
                arrays[f"step{step + 1}|{i:03d}|{v.path}"] = np.asarray(v)
    np.savez(out, **arrays)


def _run_child(args: list[str], env: dict, cpus: str | None = None) -> None:
    full_env = {k: v for k, v in os.environ.items() if k not in CPU_ENV_KEYS}
    full_env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO), **env)
    pin = ["taskset", "-c", cpus] if cpus else []
    done = subprocess.run([*pin, sys.executable, __file__, *args], env=full_env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{args} with {env} failed:\n{done.stderr[-3000:]}")


def _diff(a: np.ndarray, b: np.ndarray) -> tuple[int, float, float]:
    """(differing elements, largest absolute difference, largest difference relative to max |a|)."""
    n = int(np.count_nonzero(a.view(np.uint32) != b.view(np.uint32)))
    if not n:
        return 0, 0.0, 0.0
    d = float(np.max(np.abs(a.astype(np.float64) - b)))
    return n, d, d / max(float(np.max(np.abs(a))), 1e-30)


def compare_runs(ref: dict, other: dict) -> dict:
    """First differing forward layer, gradient and weight, and the largest relative differences."""
    res = {}
    for kind in ("fwd", "grad", "step1", "stepN"):
        keys = sorted(k for k in ref if k.startswith(kind + "|"))
        diffs = [(k, *_diff(ref[k], other[k])) for k in keys]
        bad = [d for d in diffs if d[1]]
        first = ""
        if bad:
            parts = bad[0][0].split("|")
            first = f"{parts[2]} ({parts[3]})" if kind == "fwd" else parts[2]
        res[kind] = {"n_differ": len(bad), "n": len(keys), "first": first,
                     "max_rel": max((d[3] for d in bad), default=0.0)}
    return res


def _describe(r: dict, steps: int) -> str:
    if all(v["n_differ"] == 0 for v in r.values()):
        return "bit-identical"
    return (f"forward: {r['fwd']['n_differ']}/{r['fwd']['n']} layers differ, first {r['fwd']['first'] or '-'}, "
            f"max rel {r['fwd']['max_rel']:.1e}; gradients: {r['grad']['n_differ']}/{r['grad']['n']} differ, "
            f"first {r['grad']['first'] or '-'}, max rel {r['grad']['max_rel']:.1e}; weights after 1 step: "
            f"{r['step1']['n_differ']} differ (max rel {r['step1']['max_rel']:.1e}), after {steps}: "
            f"{r['stepN']['n_differ']} (max rel {r['stepN']['max_rel']:.1e})")


def _load(path: Path, steps: int) -> dict:
    with np.load(path) as z:
        return {k.replace(f"step{steps}|", "stepN|") if steps > 1 else k: z[k] for k in z.files}


def compare(archs: list[str], steps: int, groups: list[str], others: list[str]) -> None:
    print(f"CPU: {cpu_description()}; seed 42, 16 random 64x64 images, {steps} Adam steps; "
          "each setting compared bit for bit with the first of its group ('max rel': largest difference "
          "divided by the largest |value| of that array)")
    for other in others:
        print(f"  as {other}: {othercpu.CPUS[other].description}")
    with tempfile.TemporaryDirectory() as tmp:
        for arch in archs:
            runs, firsts = {}, {}
            settings = [s for s in SETTINGS if s[0] in groups]
            for group, name, env, *cpus in settings:
                out = Path(tmp) / f"{arch}-{len(runs)}.npz"
                _run_child(["_probe", arch, str(out), str(steps)], env, *cpus)
                runs[name] = _load(out, steps)
                firsts.setdefault(group, name)
            ref = settings[0][1]
            print(f"\n{arch}:")
            for group, name, *_ in settings:
                against = firsts[group] if name != firsts[group] else ref
                if name != against:
                    print(f"  {name:26s} vs {against:12s}: {_describe(compare_runs(runs[against], runs[name]), steps)}")
            for group, name, env, *_ in settings:
                for other in others if name in AS_OTHER else ():
                    out = Path(tmp) / f"{arch}-{name}-{other}.npz"
                    _run_child(["_probe", arch, str(out), str(steps)], {**env, **othercpu.env(other)})
                    print(f"  {name + ' as ' + other:37s} vs here: "
                          f"{_describe(compare_runs(runs[name], _load(out, steps)), steps)}")


# (name, environment, op determinism on) of each `speed` measurement; the first two are the baselines.
SPEED_SETTINGS = (
    ("TF default", {}, False),
    ("TF, oneDNN ops on", ONEDNN_OPS, False),
    ("deterministic avx512", deterministic_env(0, "avx512"), True),
    ("deterministic avx2", deterministic_env(0, "avx2"), True),
)


def timed_fit(arch: str, op_determinism: bool, n: int, epochs: int, batch: int, out: Path) -> None:
    """Child process: images/s of model.fit, median of `epochs` epochs after a warm-up epoch."""
    import keras
    import tensorflow as tf

    from cosmic.learning.training import compile_model

    keras.utils.set_random_seed(0)
    if op_determinism:
        tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 64, 64, 3)).astype(np.float32)
    y = rng.integers(0, 2, n).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).prefetch(2)
    model = build(arch, 64)
    compile_model(model, 1e-3)
    model.fit(ds, epochs=1, verbose=0)
    wall, cpu = [], []
    for _ in range(epochs):
        start, start_cpu = time.perf_counter(), time.process_time()
        model.fit(ds, epochs=1, verbose=0)
        wall.append(n / (time.perf_counter() - start))
        cpu.append(n / (time.process_time() - start_cpu))
    out.write_text(json.dumps({"wall": float(np.median(wall)), "cpu": float(np.median(cpu))}))


def speed(archs: list[str], n: int, epochs: int, repeats: int, batch_size: int | None = None) -> None:
    batches = {arch: batch_size or stage_batch_size(arch) for arch in archs}
    rates: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rate.json"
        for _ in range(repeats):
            for arch in archs:
                for name, env, det in SPEED_SETTINGS:
                    _run_child(["_fit", arch, str(int(det)), str(n), str(epochs), str(batches[arch]), str(out)], env)
                    rates.setdefault((arch, name), []).append(json.loads(out.read_text()))
    sizes = ", ".join(f"{arch} {b}" for arch, b in batches.items())
    print(f"CPU: {cpu_description()}; training throughput (64x64 input, batch {sizes}; {n} random images, median of "
          f"{epochs} epochs per run, median of {repeats} alternating runs per setting). images/s: wall clock; "
          "cpu: images per second of CPU time of the process, steadier on a shared CPU. Cost: against TensorFlow's "
          "default here / against TensorFlow with its oneDNN ops on (its default on AVX-512 VNNI/BF16 and AMX CPUs)")
    print(f"{'model':10s} {'setting':22s} {'images/s':>9s} {'cost':>15s} {'cpu':>7s} {'cost':>15s}  wall runs")
    for arch in archs:
        med = {name: {k: float(np.median([r[k] for r in rates[(arch, name)]])) for k in ("wall", "cpu")}
               for name, *_ in SPEED_SETTINGS}
        for name, *_ in SPEED_SETTINGS:
            cols = []
            for key in ("wall", "cpu"):
                costs = [100 * (1 - med[name][key] / med[base][key]) for base, *_ in SPEED_SETTINGS[:2]]
                cols.append(f"{med[name][key]:9.1f} {costs[0]:+6.1f}%/{costs[1]:+6.1f}%")
            runs = " ".join(f"{r['wall']:.0f}" for r in rates[(arch, name)])
            print(f"{arch:10s} {name:22s} {cols[0]} {cols[1]}  {runs}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_probe":
        arch, out, steps = sys.argv[2:5]
        return probe(arch, Path(out), int(steps))
    if len(sys.argv) > 1 and sys.argv[1] == "_fit":
        arch, det, n, epochs, batch, out = sys.argv[2:8]
        return timed_fit(arch, det == "1", int(n), int(epochs), int(batch), Path(out))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="find where results differ between CPU settings and CPUs")
    c.add_argument("--archs", nargs="+", choices=ARCHS, default=list(ARCHS))
    c.add_argument("--steps", type=int, default=5)
    c.add_argument("--groups", nargs="+", choices=sorted({s[0] for s in SETTINGS}),
                   default=list(dict.fromkeys(s[0] for s in SETTINGS)), help="groups of settings to run")
    c.add_argument("--as", dest="others", nargs="*", choices=sorted(othercpu.CPUS), default=[],
                   help="also run the deterministic settings as on these CPUs (benchmarks/othercpu.py)")
    s = sub.add_parser("speed", help="training throughput of TensorFlow's defaults and the deterministic settings")
    s.add_argument("--archs", nargs="+", choices=ARCHS, default=list(ARCHS))
    s.add_argument("--n", type=int, default=640)
    s.add_argument("--epochs", type=int, default=2)
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--batch-size", type=positive_int, default=None,
                   help="one batch size for every model (default: each training stage's, from params.yaml)")
    args = ap.parse_args()
    if args.command == "compare":
        for other in args.others:
            why = othercpu.unavailable(other)
            if why:
                ap.error(f"--as {other}: {why}")
        compare(args.archs, args.steps, args.groups, args.others)
    else:
        speed(args.archs, args.n, args.epochs, args.repeats, args.batch_size)


if __name__ == "__main__":
    main()

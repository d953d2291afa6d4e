"""tf.distribute for the training stages: `base.strategy` as a `Distribution`, and the precision policy.

`setup` turns `base.strategy` into a `Distribution`, whose scope the stages build their models in
and `training.run_stage` compiles and fits in; only its chief writes outputs.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from cosmic.learning.errors import DistributedError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distribution:
    """The strategy the training stages build, compile and fit in, and whether this process writes outputs."""

    strategy: tf.distribute.Strategy
    is_chief: bool
    kind: str

    def scope(self):
        return self.strategy.scope()

    def output_root(self) -> Path:
        """Where this process writes the stage's outputs: "." on the chief, elsewhere a temp dir removed at exit.

        Every worker of a multi-worker run must take part in fit, evaluate and save (they
        synchronise), but only the chief's files are the stage's outputs (Keras's multi-worker
        saving pattern).
        """
        if self.is_chief:
            return Path(".")
        tmp = tempfile.mkdtemp(prefix="cosmic-worker-")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        return Path(tmp)


def read_tf_config() -> dict:
    """TF_CONFIG as a mapping, checked: a cluster with a worker list and this process's task in it.

    Raises:
        DistributedError: naming TF_CONFIG and what is wrong with it.
    """
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}')
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise DistributedError("base.strategy is multi_worker but the environment variable TF_CONFIG is not set; "
                               f"expected one per process, e.g. TF_CONFIG='{example}'")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise DistributedError(f"TF_CONFIG is not valid JSON ({e}); expected e.g. {example}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise DistributedError(f"TF_CONFIG {text!r} needs 'cluster' and 'task' mappings; expected e.g. {example}")
    kind, index = task.get("type"), task.get("index")
    members = cluster.get(kind)
    if (kind not in ("worker", "chief") or not isinstance(members, list) or not members
            or not all(isinstance(m, str) and ":" in m for m in members)
            or isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(members)):
        raise DistributedError(f"TF_CONFIG {text!r}: task {task!r} is not in cluster {cluster!r}; expected task type "
                               "'worker' (or 'chief') and an index into that list of 'host:port' addresses")
    return config


def _is_chief(config: dict) -> bool:
    task = config["task"]
    return task["type"] == "chief" or (task["type"] == "worker" and task["index"] == 0
                                       and "chief" not in config["cluster"])


def setup(strategy: str, mixed_precision: bool = False) -> Distribution:
    """Create the strategy of `base.strategy` and the precision policy of `base.mixed_precision`.

    Call it before any other TensorFlow operation (before `training.set_determinism`):
    MultiWorkerMirroredStrategy configures TensorFlow's collective ops, which is possible
    only while its runtime has not started.

    Raises:
        DistributedError: for an unknown strategy, or TF_CONFIG missing or invalid for multi_worker.
    """
    if mixed_precision:
        set_precision(True)
    if strategy == "default":
        # The strategy in effect when there is none: its scope changes nothing, so results are
        # byte-identical to code that never heard of tf.distribute.
        return Distribution(tf.distribute.get_strategy(), True, strategy)
    if strategy == "mirrored":
        s = tf.distribute.MirroredStrategy()  # every local GPU, or the CPU when there is none
        log.info("base.strategy mirrored: %d replicas", s.num_replicas_in_sync)
        return Distribution(s, True, strategy)
    if strategy == "multi_worker":
        config = read_tf_config()
        _patch_keras_for_multi_worker()
        try:
            s = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as e:
            raise DistributedError(f"base.strategy multi_worker: {e}; the strategy must be created before any "
                                   "other TensorFlow operation") from None
        log.info("base.strategy multi_worker: task %s of %d workers, %d replicas in sync", config["task"],
                 sum(len(v) for v in config["cluster"].values()), s.num_replicas_in_sync)
        return Distribution(s, _is_chief(config), strategy)
    raise DistributedError(f"base.strategy is {strategy!r}; expected default, mirrored or multi_worker")


def set_precision(mixed_precision: bool) -> str:
    """Use mixed_float16 when asked and a GPU is visible; return the global dtype policy's name.

    On a CPU mixed float16 is slower than float32 and changes the numbers for nothing, so the
    stage warns and keeps float32 (a params.yaml shared by GPU and CPU machines still runs).
    """
    if mixed_precision:
        if tf.config.list_physical_devices("GPU"):
            keras.mixed_precision.set_global_policy("mixed_float16")
        else:
            log.warning("base.mixed_precision: no GPU visible, so training stays in float32")
    return keras.mixed_precision.global_policy().name


def _patch_keras_for_multi_worker() -> None:
    """Work around two Keras 3.15 bugs that stop `fit` under MultiWorkerMirroredStrategy.

    (keras-team/keras#20585; checked with TF 2.21 / Keras 3.15.) `_maybe_symbolic_build` reduces
    the first batch with `strategy.reduce` over a nested structure, which the collective strategy
    rejects ("Attempt to convert a value (PerReplica...)"); it only needs the batch's shapes,
    which one local replica's values have. `reduce_per_replica` then reduces the scalar step
    logs along axis 0 ("Invalid reduction dimension 0 for input with 0 dimensions"); the mean
    over replicas is what the other strategies return. Applied only in multi_worker processes.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if getattr(tf_trainer, "_cosmic_patched", False):
        return

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(
                    lambda v: self.distribute_strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v, next(it))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and reduction in ("auto", "mean"):
            return tf.nest.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None) if isinstance(v, tf.distribute.DistributedValues)
                else v, values)
        return original(values, strategy, reduction)

    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    tf_trainer._cosmic_patched = True

"""tf.data input pipelines over the memory-mapped arrays written by preprocess."""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from cosmic.data.packing import Arrays

BatchAugment = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def make_dataset(arrays: Arrays, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 augment: BatchAugment | None = None) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 255], float32 labels) read from the memory-mapped arrays.

    Only the indices live in TensorFlow; each batch is gathered from the memory map, so a
    split larger than memory still streams. Shuffling and augmentation are seeded, and the
    per-batch augmentation seeds change every epoch while staying reproducible.

    Args:
        arrays: a split from `packing.load_split`.
        batch_size: images per batch.
        shuffle: reshuffle every epoch (seeded).
        seed: seed of the shuffle and of the augmentation stream.
        augment: function (uint8 batch, int64 seed pair) -> uint8 batch, or None.
    """
    images, labels = arrays.images, arrays.labels
    n = len(labels)
    shape = images.shape[1:]

    def gather(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Reading rows in increasing order is far faster on a memory map.
        order = np.argsort(idx)
        rows = np.empty((len(idx), *shape), np.uint8)
        rows[order] = images[idx[order]]
        return rows, labels[idx].astype(np.float32)

    def load(idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = tf.numpy_function(gather, [idx], (tf.uint8, tf.float32), stateful=False)
        x.set_shape((None, *shape))
        y.set_shape((None,))
        return x, y

    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augment is not None:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda xy, s: (augment(xy[0], s), xy[1]), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    options = tf.data.Options()
    # Input ops on one intra-op thread each: on a 2-core machine, letting augmentation fan out
    # over the intra-op pool the training step uses halved training throughput.
    options.threading.max_intra_op_parallelism = 1
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)

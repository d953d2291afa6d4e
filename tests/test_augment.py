"""Augmentation keeps shape and dtype, respects probabilities 0 and 1, and is seeded."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from cosmic import params
from cosmic.augment import AlbumentationsBatch, basic_augment
from cosmic.tta import dihedral_views
from tests.test_params import RAW

AUG = params.train_optimized(RAW).augment
OFF = dataclasses.replace(AUG, flip_p=0, rotate_p=0, brightness_contrast_p=0, noise_p=0)


def _batch(n=6, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_basic_augment_returns_a_dihedral_view_of_each_image():
    x = _batch()
    out = basic_augment(tf.constant(x), tf.constant([1, 2], tf.int64)).numpy()
    assert out.shape == x.shape and out.dtype == np.uint8
    views = dihedral_views(x)
    for i in range(len(x)):
        assert any(np.array_equal(out[i], v[i]) for v in views)
    again = basic_augment(tf.constant(x), tf.constant([1, 2], tf.int64)).numpy()
    assert np.array_equal(out, again)


def test_basic_augment_reaches_all_eight_symmetries():
    x = np.repeat(_batch(1), 400, axis=0)
    out = basic_augment(tf.constant(x), tf.constant([5, 6], tf.int64)).numpy()
    views = dihedral_views(x[:1])
    hits = {k for o in out for k, v in enumerate(views) if np.array_equal(o, v[0])}
    assert hits == set(range(8))


def test_albumentations_probability_zero_is_identity():
    x = _batch()
    out = AlbumentationsBatch(OFF)(x, np.array([3, 4]))
    assert out.dtype == np.uint8 and out.shape == x.shape
    assert np.array_equal(out, x)


def test_albumentations_probability_one_changes_every_image():
    x = _batch()
    always = dataclasses.replace(AUG, flip_p=0, rotate_p=0, brightness_contrast_p=0, noise_p=1.0,
                                 noise_std=(0.05, 0.05))
    out = AlbumentationsBatch(always)(x, np.array([3, 4]))
    assert out.shape == x.shape and out.dtype == np.uint8
    assert all(not np.array_equal(o, i) for o, i in zip(out, x))
    flip = dataclasses.replace(OFF, flip_p=1.0)
    flipped = AlbumentationsBatch(flip)(x, np.array([0, 0]))
    assert np.array_equal(flipped, x[:, ::-1, ::-1])


def test_albumentations_is_reproducible_per_batch_seed_and_in_tf_data():
    x = _batch()
    aug = AlbumentationsBatch(AUG)
    a, b = aug(x, np.array([11, 0])), aug(x, np.array([11, 0]))
    c = aug(x, np.array([12, 0]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    out = aug.tf_apply(tf.constant(x), tf.constant([11, 0], tf.int64))
    assert out.shape == x.shape and out.dtype == tf.uint8
    assert np.array_equal(out.numpy(), a)

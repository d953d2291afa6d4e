"""Augmentation keeps shape and dtype, respects probabilities 0 and 1, and is seeded."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from cosmic import params
from cosmic.learning.augment import (AlbumentationsBatch, basic_augment, domain_randomize, stage_augment,
                            with_domain_randomization)
from cosmic.evaluation.tta import dihedral_views
from tests.test_params import RAW

AUG = params.albumentations(RAW)
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


DOMAIN = params.base(RAW).domain
NEUTRAL = params.DomainRandomization(zoom=(1.0, 1.0), gamma=0.0, colour_gain=0.0, brightness=0.0, blur=0.0, noise=0.0,
                                     saturation=0.0)


def test_domain_randomization_is_on_by_default_and_validated():
    assert DOMAIN is not None and DOMAIN.zoom[0] < 1 < DOMAIN.zoom[1]
    off = {**RAW, "base": {**RAW["base"], "domain_randomization": {"enabled": False}}}
    assert params.base(off).domain is None
    bad = {**RAW, "base": {**RAW["base"], "domain_randomization": {**RAW["base"]["domain_randomization"],
                                                                    "zoom": [1.2, 0.9]}}}
    with pytest.raises(params.ParamError, match=r"'base.domain_randomization.zoom' is \[1.2, 0.9\]"):
        params.base(bad)


def test_domain_randomize_with_neutral_strengths_is_the_identity():
    x = _batch(size=32)
    out = domain_randomize(tf.constant(x), tf.constant([3, 4], tf.int64), NEUTRAL).numpy()
    assert np.array_equal(out, x)


def test_domain_randomize_is_seeded_and_varies_each_image():
    x = np.repeat(_batch(1, size=32), 8, axis=0)
    out = domain_randomize(tf.constant(x), tf.constant([3, 4], tf.int64), DOMAIN).numpy()
    assert out.shape == x.shape and out.dtype == np.uint8
    assert np.array_equal(out, domain_randomize(tf.constant(x), tf.constant([3, 4], tf.int64), DOMAIN).numpy())
    assert not np.array_equal(out, domain_randomize(tf.constant(x), tf.constant([3, 5], tf.int64), DOMAIN).numpy())
    # Copies of one image come out different from each other.
    assert len({o.tobytes() for o in out}) == len(out)


def test_domain_zoom_and_colour_gain_do_what_they_say():
    yy, xx = np.mgrid[:32, :32] - 15.5
    disk = np.where(np.hypot(xx, yy) < 6, 200, 0).astype(np.uint8)
    x = np.repeat(np.stack([disk] * 3, axis=-1)[None], 16, axis=0)
    seed = tf.constant([1, 1], tf.int64)
    zoom_in = dataclasses.replace(NEUTRAL, zoom=(1.3, 1.3))
    zoom_out = dataclasses.replace(NEUTRAL, zoom=(0.7, 0.7))
    area = lambda p: (domain_randomize(tf.constant(x), seed, p).numpy()[..., 0] > 100).sum()  # noqa: E731
    assert area(zoom_out) < area(NEUTRAL) < area(zoom_in)
    tinted = domain_randomize(tf.constant(x), seed, dataclasses.replace(NEUTRAL, colour_gain=0.2)).numpy()
    centre = tinted[:, 14:18, 14:18].reshape(16, -1, 3).mean(axis=1)
    # Channels get different gains: the grey disk becomes coloured, differently in each image.
    assert np.ptp(centre, axis=1).mean() > 5 and np.ptp(centre[:, 0]) > 5


def test_domain_saturation_scales_colour_about_grey_and_keeps_grey():
    yy, xx = np.mgrid[:32, :32] - 15.5
    inside = np.hypot(xx, yy) < 6
    colour = np.zeros((32, 32, 3), np.uint8)
    colour[inside] = (150, 100, 50)
    x = np.repeat(colour[None], 16, axis=0)
    seed = tf.constant([2, 9], tf.int64)
    out = domain_randomize(tf.constant(x), seed, dataclasses.replace(NEUTRAL, saturation=0.6)).numpy().astype(float)
    centre = out[:, 16, 16]
    spread = centre[:, 0] - centre[:, 2]  # 100 before
    assert spread.min() >= 40 - 1 and spread.max() <= 160 + 1 and np.ptp(spread) > 20
    assert np.allclose(centre.mean(axis=1), 100, atol=1)  # the grey level (brightness) is kept
    grey = np.repeat(np.full((1, 32, 32, 3), 120, np.uint8), 4, axis=0)
    same = domain_randomize(tf.constant(grey), seed, dataclasses.replace(NEUTRAL, saturation=1.0)).numpy()
    assert np.array_equal(same, grey)


def test_domain_gamma_restretches_each_image_keeping_black_white_and_order():
    ramp = np.tile(np.linspace(0, 255, 32).round().astype(np.uint8)[None, :, None], (32, 1, 3))
    x = np.repeat(ramp[None], 16, axis=0)
    out = domain_randomize(tf.constant(x), tf.constant([5, 6], tf.int64),
                           dataclasses.replace(NEUTRAL, gamma=0.5)).numpy().astype(int)
    row = out[:, 0, :, 0]
    assert (row[:, 0] == 0).all() and (row[:, -1] == 255).all()
    assert (np.diff(row, axis=1) >= 0).all()  # a stretch keeps the order of brightnesses
    mid = row[:, 16]  # 132 before; G in [e^-0.5, e^0.5] maps it into [75, 171]
    assert mid.min() >= 75 and mid.max() <= 171 and mid.min() < 120 < mid.max()


def test_with_domain_randomization_composes_after_the_stage_augmentation():
    x = _batch(size=32)
    seed = tf.constant([7, 8], tf.int64)
    assert with_domain_randomization(basic_augment, None) is basic_augment
    assert with_domain_randomization(None, None) is None
    only = with_domain_randomization(None, NEUTRAL)
    assert np.array_equal(only(tf.constant(x), seed).numpy(), x)
    both = with_domain_randomization(basic_augment, NEUTRAL)
    assert np.array_equal(both(tf.constant(x), seed).numpy(), basic_augment(tf.constant(x), seed).numpy())


@pytest.mark.parametrize("kind", ["none", "basic", "albumentations"])
def test_stage_augment_applies_the_chosen_augmentation_then_domain_randomisation(kind):
    x, seed = _batch(), tf.constant([7, 8], tf.int64)
    choice = params.Augmentation(kind, AUG if kind == "albumentations" else None)
    own = {"none": lambda images, s: images, "basic": basic_augment,
           "albumentations": AlbumentationsBatch(AUG).tf_apply}[kind]
    alone = stage_augment(choice, None)
    assert (alone is None) == (kind == "none")
    expected = own(tf.constant(x), seed).numpy()
    if alone is not None:
        assert np.array_equal(alone(tf.constant(x), seed).numpy(), expected)
    with_domain = stage_augment(choice, DOMAIN)
    assert np.array_equal(with_domain(tf.constant(x), seed).numpy(),
                          with_domain_randomization(own, DOMAIN)(tf.constant(x), seed).numpy())

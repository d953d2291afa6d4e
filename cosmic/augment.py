"""Augmentations: the basic dihedral flips/rotations in TensorFlow, and one albumentations pipeline."""

from __future__ import annotations

import threading

import albumentations as A
import cv2
import numpy as np
import tensorflow as tf

from cosmic.params import Augment


def basic_augment(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Random element of the square's symmetry group (flips and 90-degree rotations) per image.

    Galaxies have no preferred orientation. Three independent coin flips (transpose,
    left-right, up-down) reach all eight rotations/reflections with equal probability.

    Args:
        images: (batch, h, w, c) square images.
        seed: int64 tensor of shape (2,), the stateless seed of this batch.
    """
    coins = tf.random.stateless_uniform([3, tf.shape(images)[0], 1, 1, 1], seed=seed) < 0.5
    images = tf.where(coins[0], tf.transpose(images, [0, 2, 1, 3]), images)
    images = tf.where(coins[1], tf.reverse(images, axis=[2]), images)
    return tf.where(coins[2], tf.reverse(images, axis=[1]), images)


def build_albumentations(p: Augment) -> A.Compose:
    """The advanced augmentation pipeline of tune and train_optimized, from params."""
    return A.Compose([
        A.HorizontalFlip(p=p.flip_p),
        A.VerticalFlip(p=p.flip_p),
        # Sky background: reflecting the border avoids black corners a rotation would add.
        A.Rotate(limit=p.rotate_limit, border_mode=cv2.BORDER_REFLECT_101, p=p.rotate_p),
        A.RandomBrightnessContrast(brightness_limit=p.brightness_limit, contrast_limit=p.contrast_limit,
                                   p=p.brightness_contrast_p),
        A.GaussNoise(std_range=p.noise_std, p=p.noise_p),
    ])


class AlbumentationsBatch:
    """Apply an albumentations pipeline to a uint8 batch, reproducibly for a given batch seed.

    Each tf.data worker thread keeps its own Compose (they are not thread-safe) and reseeds
    it per batch, so results do not depend on which thread ran which batch.
    """

    def __init__(self, p: Augment):
        self.params = p
        self._local = threading.local()

    def _compose(self) -> A.Compose:
        if not hasattr(self._local, "compose"):
            self._local.compose = build_albumentations(self.params)
        return self._local.compose

    def __call__(self, images: np.ndarray, seed: np.ndarray) -> np.ndarray:
        compose = self._compose()
        compose.set_random_seed(int(seed[0]) % (2**32))
        return np.stack([compose(image=img)["image"] for img in images])

    def tf_apply(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Graph-side wrapper: run the batch through albumentations via tf.numpy_function."""
        out = tf.numpy_function(self, [images, seed], tf.uint8, stateful=False)
        out.set_shape(images.shape)
        return out

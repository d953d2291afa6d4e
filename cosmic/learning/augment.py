"""Augmentations: dihedral flips/rotations and domain randomisation in TensorFlow, one albumentations pipeline."""

from __future__ import annotations

import threading

import albumentations as A
import cv2
import numpy as np
import tensorflow as tf

from cosmic.learning.datasets import BatchAugment
from cosmic.params import Albumentations, Augmentation, DomainRandomization

# Binomial 3x3 kernel: the smallest blur that looks like a slightly worse seeing.
_BLUR_KERNEL = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0


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


def build_albumentations(p: Albumentations) -> A.Compose:
    """The albumentations pipeline described by the `augment` params section."""
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

    def __init__(self, p: Albumentations):
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


def domain_randomize(images: tf.Tensor, seed: tf.Tensor, p: DomainRandomization) -> tf.Tensor:
    """Vary each image the way real frames vary: scale, stretch, white balance, saturation, brightness, seeing, noise.

    The galaxy is zoomed about the centre (`p.zoom`; zooming out fills with black sky), the display
    stretch changed by a power law v -> 255 (v / 255)^G with log G uniform in ±`p.gamma`, each channel
    gets a log-normal gain and the whole image a log-uniform brightness factor, the colour saturation
    is scaled by a factor in 1 ± `p.saturation` about each pixel's grey level, a binomial blur is
    mixed in with a random weight up to `p.blur`, and Gaussian noise of a random std up to `p.noise`
    is added. All draws are stateless, so a batch seed gives the same output every time.

    Args:
        images: (batch, h, w, 3) uint8 square images.
        seed: int64 tensor of shape (2,), the stateless seed of this batch.
        p: the strengths.

    Returns:
        uint8 images of the same shape.
    """
    x = tf.cast(images, tf.float32)
    n, size = tf.shape(x)[0], tf.shape(x)[1]
    seeds = [tf.random.experimental.stateless_fold_in(seed, i) for i in range(8)]
    half = 0.5 / tf.random.stateless_uniform([n], seeds[0], p.zoom[0], p.zoom[1])
    boxes = tf.stack([0.5 - half, 0.5 - half, 0.5 + half, 0.5 + half], axis=1)
    x = tf.image.crop_and_resize(x, boxes, tf.range(n), tf.stack([size, size]), extrapolation_value=0.0)
    stretch = tf.exp(tf.random.stateless_uniform([n, 1, 1, 1], seeds[7], -p.gamma, p.gamma))
    x = 255.0 * tf.pow(tf.clip_by_value(x, 0.0, 255.0) / 255.0, stretch)
    gains = tf.exp(tf.random.stateless_normal([n, 1, 1, 3], seeds[1], 0.0, p.colour_gain)
                   + tf.random.stateless_uniform([n, 1, 1, 1], seeds[2], -p.brightness, p.brightness))
    x = x * gains
    grey = tf.reduce_mean(x, axis=3, keepdims=True)
    saturation = tf.random.stateless_uniform([n, 1, 1, 1], seeds[6], 1.0 - p.saturation, 1.0 + p.saturation)
    x = grey + saturation * (x - grey)
    kernel = tf.constant(np.tile(_BLUR_KERNEL[:, :, None, None], (1, 1, 3, 1)), tf.float32)
    blurred = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "SAME")
    x += tf.random.stateless_uniform([n, 1, 1, 1], seeds[3], 0.0, p.blur) * (blurred - x)
    sigma = tf.random.stateless_uniform([n, 1, 1, 1], seeds[4], 0.0, p.noise)
    x += sigma * tf.random.stateless_normal(tf.shape(x), seeds[5])
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def with_domain_randomization(first: BatchAugment | None, domain: DomainRandomization | None) -> BatchAugment | None:
    """A stage's own augmentation followed by domain randomisation (either may be None = off).

    Args:
        first: the stage's augmentation, (uint8 batch, seed) -> uint8 batch, or None.
        domain: `base.domain_randomization`, or None when it is disabled.

    Returns:
        The combined augmentation, or None when both are off.
    """
    if domain is None:
        return first

    def augment(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        if first is not None:
            images = first(images, seed)
        # A seed of its own, so the two stages' random draws are independent.
        return domain_randomize(images, tf.random.experimental.stateless_fold_in(seed, 1_000_003), domain)

    return augment


def stage_augment(augmentation: Augmentation, domain: DomainRandomization | None) -> BatchAugment | None:
    """The batch augmentation a stage trains with: its own choice, then domain randomisation.

    Args:
        augmentation: the stage's `augment` choice (none, basic, or albumentations with its settings).
        domain: `base.domain_randomization`, or None when it is disabled.

    Returns:
        (uint8 batch, seed) -> uint8 batch, or None when nothing is applied.
    """
    own = {"none": None, "basic": basic_augment}.get(augmentation.kind)
    if augmentation.kind == "albumentations":
        own = AlbumentationsBatch(augmentation.albumentations).tf_apply
    return with_domain_randomization(own, domain)

"""One functional-API builder per architecture; every model takes raw RGB pixels in [0, 255]."""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from cosmic.learning.errors import TrainingError

# Every builder's output layer: one sigmoid unit, p(spiral).
OUTPUT_LAYER = "p_spiral"

# The input scalings of `build_baseline`.
CNN_SCALINGS = ("unit", "galaxy")


def build_baseline(image_size: int, filters: tuple[int, ...] = (32, 64, 128), kernel_size: int = 3,
                   dense_units: int = 128, dropout: float = 0.5, scaling: str = "unit",
                   name: str = "baseline_cnn") -> keras.Model:
    """The reference's custom CNN: Conv2D+MaxPooling blocks, then a dense head with dropout.

    Args:
        image_size: side of the square RGB input, pixels in [0, 255].
        filters: filters of each Conv2D block (one block per entry).
        kernel_size: Conv2D kernel side.
        dense_units: units of the hidden dense layer.
        dropout: dropout rate before the output.
        scaling: one of CNN_SCALINGS: "unit" divides the pixels by 255 (the reference's); "galaxy"
            then subtracts the sky and divides by the galaxy's central brightness (`galaxy_scaled`).
        name: model name.

    Returns:
        An uncompiled model with one sigmoid output, p(spiral).

    Raises:
        ValueError: if `scaling` is not one of CNN_SCALINGS.
    """
    if scaling not in CNN_SCALINGS:
        raise ValueError(f"scaling is {scaling!r}; expected one of {', '.join(CNN_SCALINGS)}")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    if scaling == "unit":
        x = layers.Rescaling(1.0 / 255, name="scale_0_1")(inputs)
    else:
        x = galaxy_scaled(layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_pm1")(inputs))
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, kernel_size, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", dtype=output_dtype(), name=OUTPUT_LAYER)(x)
    return keras.Model(inputs, outputs, name=name)


def tuned_baseline(image_size: int, best: dict, source: Path, name: str = "optimized_cnn") -> tuple[keras.Model, float]:
    """The baseline CNN with the tuner's best arguments, and its learning rate.

    Args:
        image_size: side of the square RGB input.
        best: the record `tuning.run_search` writes to best_hparams.json.
        source: the file `best` was read from, for the error message.

    Raises:
        TrainingError: naming `source` when it holds no builder arguments, input scaling included
            (written by an older tune).
    """
    if not isinstance(best.get("model"), dict) or "scaling" not in best["model"] or "learning_rate" not in best:
        raise TrainingError(f"{source} has no 'model' builder arguments (with its 'scaling') and 'learning_rate'; "
                            "it was written by an older tune stage: re-run it (dvc repro tune)")
    return build_baseline(image_size, name=name, **best["model"]), float(best["learning_rate"])


def output_dtype() -> str | None:
    """dtype of the output layer: float32 under a mixed global policy (base.mixed_precision).

    A float16 sigmoid saturates and its cross-entropy loses precision. Under the float32 default
    this is None, i.e. the global policy object shared by every layer: an explicit "float32" would
    be a separate object in the saved config.json and change the .keras bytes.
    """
    return "float32" if keras.mixed_precision.global_policy().name != "float32" else None


SCRATCH_BN_MOMENTUM = 0.9

# The input scalings of `build_transfer`.
INPUT_SCALINGS = ("imagenet", "per_image", "galaxy")


def resolve_scaling(spec: str, pretrained: bool) -> str:
    """The input scaling of `build_transfer` for `train_transfer.input_scaling` (auto: by the weights).

    Args:
        spec: "auto", or one of INPUT_SCALINGS.
        pretrained: whether the backbone starts from trained (ImageNet) weights.

    Returns:
        `spec` itself, or for "auto" the [-1, 1] scaling pretrained weights were trained with and
        the galaxy scaling (`galaxy_scaled`) from random weights.
    """
    if spec != "auto":
        return spec
    return "imagenet" if pretrained else "galaxy"


# Per-image standardisation divides by sqrt(variance + this): at least one grey level (2/255 in [-1, 1]).
_ONE_GREY_LEVEL_VARIANCE = (2.0 / 255.0) ** 2
# Galaxy scaling divides by the central brightness above the sky, at least two grey levels.
_TWO_GREY_LEVELS = 4.0 / 255.0


def galaxy_scaled(x):
    """Each square minus its sky level, over the galaxy's central brightness above that sky.

    The sky level is the mean of the square's outer band and the central brightness the mean of
    its central square, each 1/16 of the side wide. Neither depends on how much of the square the
    galaxy covers, so a galaxy keeps its values whatever the cutout's scale, unlike a standardisation
    by the mean and standard deviation over all pixels, which a larger share of sky changes.

    Args:
        x: symbolic (batch, side, side, channels) images, channels scaled alike.

    Returns:
        The scaled images: about 0 on the sky and 1 at the galaxy's centre.
    """
    side = int(x.shape[1])
    band = max(1, side // 16)
    centre = keras.ops.mean(layers.Cropping2D((side - band) // 2, name="galaxy_centre")(x), axis=(1, 2, 3),
                            keepdims=True)
    inner = keras.ops.mean(layers.Cropping2D(band, name="galaxy_inner")(x), axis=(1, 2, 3), keepdims=True)
    whole = keras.ops.mean(x, axis=(1, 2, 3), keepdims=True)
    inner_side = side - 2 * band
    sky = (whole * side * side - inner * inner_side * inner_side) / (side * side - inner_side * inner_side)
    return (x - sky) / keras.ops.maximum(centre - sky, _TWO_GREY_LEVELS)


def build_transfer(image_size: int, input_size: int = 96, alpha: float = 1.0, dropout: float = 0.2,
                   weights: str | Path | None = None, freeze_base: bool = True, scaling: str = "imagenet",
                   name: str = "transfer_mobilenetv2") -> tuple[keras.Model, keras.Model]:
    """MobileNetV2 (no top) + GlobalAveragePooling + Dropout + Dense.

    Resizing to `input_size` and MobileNetV2's own scaling to [-1, 1] happen inside the
    model, so it takes the same [0, 255] input as every other model.

    Args:
        image_size: side of the square RGB input.
        input_size: side MobileNetV2 sees (ImageNet weights exist for 96/128/160/192/224).
        alpha: MobileNetV2 width multiplier.
        dropout: dropout rate before the output.
        weights: None for random initialisation, or the path of a no-top .h5 weights file
            (see `cosmic.learning.weights.resolve_mobilenet_weights`).
        freeze_base: freeze the base and run its BatchNorm in inference mode (pretrained
            features); False trains every layer, BatchNorm included (training from scratch).
        scaling: "imagenet", the [-1, 1] scaling ImageNet weights were trained with; "galaxy",
            which then subtracts each image's sky level and divides by the galaxy's central
            brightness above it (`galaxy_scaled`), so that neither a survey's sky level and
            exposure nor the galaxy's share of the frame reach the network; or "per_image", which
            standardises each image to mean 0 and standard deviation 1 over its pixels and
            channels (a larger share of sky changes both).
        name: model name.

    Raises:
        ValueError: if `scaling` is not one of INPUT_SCALINGS.

    Returns:
        (model, base): the uncompiled model and its MobileNetV2 base, for fine-tuning.
    """
    if scaling not in INPUT_SCALINGS:
        raise ValueError(f"scaling is {scaling!r}; expected one of {', '.join(INPUT_SCALINGS)}")
    base = keras.applications.MobileNetV2(input_shape=(input_size, input_size, 3), alpha=alpha,
                                          include_top=False, weights=None if weights is None else str(weights))
    base.trainable = not freeze_base
    if not freeze_base:
        # MobileNetV2's BatchNorm momentum (0.999) assumes long ImageNet runs; over a few hundred steps
        # its moving statistics stay near their initial values and validation outputs collapse.
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = SCRATCH_BN_MOMENTUM
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    if input_size != image_size:
        x = layers.Resizing(input_size, input_size, interpolation="bilinear", name="resize")(x)
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="mobilenet_preprocess")(x)
    if scaling == "galaxy":
        x = galaxy_scaled(x)
    if scaling == "per_image":
        # A LayerNormalization without weights is exactly that, and needs no custom object to load.
        x = layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False, epsilon=_ONE_GREY_LEVEL_VARIANCE,
                                      name="standardize")(x)
    # training=False keeps pretrained BatchNorm statistics even when the top is unfrozen.
    x = base(x, training=False if freeze_base else None)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", dtype=output_dtype(), name=OUTPUT_LAYER)(x)
    return keras.Model(inputs, outputs, name=name), base


def unfreeze_top(base: keras.Model, n_layers: int) -> int:
    """Make the top `n_layers` of the base trainable, keeping every BatchNormalization frozen.

    Returns:
        The number of layers made trainable.
    """
    base.trainable = True
    cut = max(len(base.layers) - n_layers, 0)
    n = 0
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= cut and not isinstance(layer, layers.BatchNormalization)
        n += layer.trainable
    return n

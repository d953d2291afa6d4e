"""The adaptive crop: a Petrosian radius that follows the galaxy's size, not the sky, neighbours or pixel scale."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cosmic import params
from cosmic.data.imageops import Crop, crop_of, crop_resize, petrosian_radius
from cosmic.learning.modelio import preprocessing_record
from cosmic.data.packing import pack_split
from cosmic.commands.predict import ModelFileError, check_record

REAL = Path(__file__).parent / "data" / "kaggle-real-sample" / "images_training_rev1"
FRAME = 424


def galaxy(scale_px: float, sky_noise: float = 3.0, seed: int = 0, star: tuple[int, int] | None = None,
           frame: int = FRAME) -> Image.Image:
    """An exponential disc of scale length `scale_px` at the frame centre, on a noisy sky."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices((frame, frame))
    r = np.hypot(yy - (frame - 1) / 2, xx - (frame - 1) / 2)
    light = 20 + 180 * np.exp(-r / scale_px)
    if star is not None:
        light += 200 * np.exp(-np.hypot(yy - star[0], xx - star[1]) ** 2 / 8)
    light += rng.normal(0, sky_noise, light.shape)
    pixels = np.clip(np.rint(light), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(pixels[:, :, None], 3, axis=2))


def test_radius_follows_the_galaxy_size():
    big, small = petrosian_radius(galaxy(20)), petrosian_radius(galaxy(12))
    # Where an exponential disc's ring brightness is 0.2 of the mean inside: 3.6 scale lengths.
    assert big == pytest.approx(3.6 * 20, rel=0.1)
    assert small / big == pytest.approx(12 / 20, rel=0.05)


def test_radius_does_not_move_with_sky_depth_or_an_off_centre_star():
    clean = petrosian_radius(galaxy(20, sky_noise=2.0))
    # The ratio falls slowly through 0.2 for a disc, so noise moves the crossing a little.
    assert petrosian_radius(galaxy(20, sky_noise=6.0, seed=1)) == pytest.approx(clean, rel=0.08)
    assert petrosian_radius(galaxy(20, star=(150, 260))) == pytest.approx(clean, rel=0.05)


def test_adaptive_crop_shows_a_galaxy_the_same_at_any_pixel_scale():
    crop = Crop(0.5, 4.5)
    near, far = galaxy(20, sky_noise=0.0), galaxy(10, sky_noise=0.0)
    a, b = (crop_resize(img, crop, 64).astype(float) for img in (near, far))
    assert np.abs(a - b).mean() < 3.0
    fixed_a, fixed_b = (crop_resize(img, Crop(0.5), 64).astype(float) for img in (near, far))
    assert np.abs(fixed_a - fixed_b).mean() > 5 * np.abs(a - b).mean()


def test_real_galaxies_zoomed_out_get_proportional_radii():
    ratios = []
    for path in sorted(REAL.glob("*.jpg")):
        img = Image.open(path).convert("RGB")
        shrunk = img.resize((254, 254), Image.Resampling.LANCZOS)
        # The real frame at 0.6 of its pixel scale, centred in its own mirrored sky.
        pad = (FRAME - 254) // 2
        zoomed_out = Image.fromarray(np.pad(np.asarray(shrunk), ((pad, pad), (pad, pad), (0, 0)), mode="symmetric"))
        ratios.append(petrosian_radius(zoomed_out) / petrosian_radius(img))
    assert len(ratios) == 18 and np.median(ratios) == pytest.approx(0.6, abs=0.03)
    # Mergers and bright neighbours move a few; most follow the scale closely.
    assert np.mean(np.abs(np.array(ratios) - 0.6) < 0.06) >= 0.8


def test_blank_sky_falls_back_to_the_fixed_crop():
    blank = Image.fromarray(np.random.default_rng(0).normal(20, 3, (FRAME, FRAME, 3)).clip(0, 255).astype(np.uint8))
    assert petrosian_radius(blank) is None
    assert Crop(0.5, 4.5).side(blank) == (212, False)
    assert Crop(0.5, 4.5).side(galaxy(20))[1] is True
    assert Crop(0.5).side(galaxy(20)) == (212, False)


def test_adaptive_side_is_clamped_to_the_frame_and_deterministic():
    huge = galaxy(150, sky_noise=0.0)
    assert Crop(0.5, 20).side(huge) == (FRAME, True)
    img = galaxy(15, seed=3)
    assert Crop(0.5, 4.5).side(img) == Crop(0.5, 4.5).side(img)


def test_pack_split_counts_the_images_without_a_central_source(tmp_path):
    paths = []
    for i, img in enumerate([galaxy(15), Image.new("RGB", (FRAME, FRAME), (20, 20, 20)), galaxy(25)]):
        paths.append(tmp_path / f"{i}.jpg")
        img.save(paths[-1])
    manifest = pd.DataFrame({"image_path": [str(p) for p in paths], "label": [0, 1, 0], "GalaxyID": [0, 1, 2]})
    assert pack_split(manifest, tmp_path / "out", Crop(0.5, 4.5), 16, workers=1) == (3, 1)
    assert pack_split(manifest, tmp_path / "fixed", Crop(0.5), 16, workers=1) == (3, 0)


def test_model_record_carries_the_crop():
    for crop in (Crop(0.5), Crop(0.5, 4.5)):
        assert check_record(preprocessing_record(crop, 64, ("elliptical", "spiral")), "m.keras")[0] == crop
    old = {"crop_size": 212, "crop_fraction": 0.5, "image_size": 64, "class_names": ["elliptical", "spiral"]}
    assert check_record(old, "m.keras")[0] == Crop(0.5)
    with pytest.raises(ModelFileError, match=r"m.keras: preprocessing record is invalid: crop='zoom'"):
        check_record({**old, "crop": "zoom"}, "m.keras")
    with pytest.raises(ModelFileError, match=r"m.keras: preprocessing record is incomplete"):
        check_record({**old, "crop": "adaptive"}, "m.keras")


@pytest.mark.parametrize("key, value, message", [
    ("crop", "zoom", r"'base.crop' is 'zoom'; expected one of fixed, adaptive"),
    ("crop_factor", 1, r"'base.crop_factor' is 1"),
])
def test_bad_crop_params_are_named(key, value, message):
    raw = params.load()
    raw["base"][key] = value
    with pytest.raises(params.ParamError, match=message):
        params.base(raw)


def test_crop_params_build_the_crop():
    def base(crop, crop_size, crop_factor):
        raw = params.load()
        raw["base"].update(crop=crop, crop_size=crop_size, crop_factor=crop_factor)
        return params.base(raw)

    assert crop_of(base("fixed", 212, 4.5)) == Crop(0.5)
    assert crop_of(base("adaptive", 212, 4.5)) == Crop(0.5, 4.5)
    with pytest.raises(ValueError, match=r"base.crop_size is 500; expected 1..424"):
        crop_of(base("adaptive", 500, 4.5))


def test_predict_notes_an_adaptive_fallback_and_feeds_the_recorded_crop(tmp_path):
    import keras

    from cosmic.learning.modelio import save_model
    from cosmic.learning.models import build_baseline
    from cosmic.commands.predict import load_classifier, predict_files

    keras.utils.set_random_seed(0)
    path = tmp_path / "m.keras"
    save_model(build_baseline(16, filters=(4,), dense_units=4), path,
               preprocessing_record(Crop(0.5, 4.5), 16, ("elliptical", "spiral")))
    model, crop, size, names = load_classifier(path)
    assert crop == Crop(0.5, 4.5) and size == 16
    galaxy(15).save(tmp_path / "1.png")
    Image.new("RGB", (FRAME, FRAME), (20, 20, 20)).save(tmp_path / "2.png")
    rows = list(predict_files(model, [tmp_path / "1.png", tmp_path / "2.png"], crop, size, names))
    assert rows[0]["note"] == "" and rows[0]["p_spiral"] is not None
    assert rows[1]["note"] == f"{tmp_path / '2.png'}: no central source found, so the fixed centre crop was used"
    expected = model.predict(crop_resize(galaxy(15), crop, 16)[None].astype("float32"), verbose=0)[0, 0]
    assert rows[0]["p_spiral"] == pytest.approx(float(expected), abs=1e-5)

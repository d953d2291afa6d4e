"""The matplotlib figures: model colours and the example grid's layout."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from cosmic import registry

from cosmic.evaluation import plots
from cosmic.evaluation.metrics import calibration_curve


@pytest.fixture
def kept_open(monkeypatch) -> list:
    """Figures the plotting functions save, left open (not closed) to inspect."""
    figures, close = [], plt.close
    monkeypatch.setattr(plots.plt, "close", figures.append)
    yield figures
    for fig in figures:
        close(fig)


def test_every_model_has_one_colour_in_training_order():
    assert list(plots.MODEL_COLOURS) == list(registry.model_names())
    assert len(set(plots.MODEL_COLOURS.values())) == len(plots.MODEL_COLOURS)


def test_roc_and_calibration_draw_each_model_in_its_colour(tmp_path, kept_open):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    models = list(reversed(plots.MODEL_COLOURS))  # colour follows the name, not the position
    pts = [{"fpr": 0.0, "tpr": 0.0}, {"fpr": 0.2, "tpr": 0.7}, {"fpr": 1.0, "tpr": 1.0}]
    plots.plot_roc({m: pts for m in models}, {m: 0.9 for m in models}, tmp_path / "roc.png")
    plots.plot_calibration({m: calibration_curve(y, rng.random(200), 5) for m in models}, tmp_path / "cal.png")
    assert len(kept_open) == 2
    for fig in kept_open:
        handles, labels = fig.axes[0].get_legend_handles_labels()
        # an errorbar's legend handle is a container whose first artist is its line
        drawn = {label.split()[0]: (h[0] if isinstance(h, tuple) else h).get_color()
                 for h, label in zip(handles, labels)}
        drawn.pop("perfect", None)
        assert drawn == plots.MODEL_COLOURS, drawn


def test_example_captions_clear_the_images_above(tmp_path, kept_open):
    rng = np.random.default_rng(0)
    n = 8
    images = rng.integers(0, 255, (4 * n, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(4 * n) % 2
    p = rng.random(4 * n)
    ids = np.array([f"{100000 + i}" for i in range(4 * n)])
    plots.plot_examples(images, labels, p, ids, ("elliptical", "spiral"), n, "t", tmp_path / "examples.png")
    (fig,) = kept_open
    renderer = fig.canvas.get_renderer()
    axes = np.array(fig.axes).reshape(2, n)
    for c in range(n):
        image_above = axes[0, c].get_window_extent(renderer)  # display coordinates: y grows upwards
        caption = axes[1, c].title.get_window_extent(renderer)
        assert caption.y1 <= image_above.y0, (c, caption, image_above)

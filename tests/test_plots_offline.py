"""Offline `dvc plots show`: vendored Vega libraries, the self-contained HTML page, the custom templates.

Fast checks (no browser, a few seconds): the vendored builds match their pins, the page DVC is
configured with inlines them, every template is valid JSON with DVC's anchors, and the charts of
`dvc plots show --json` (run on a temporary copy of the committed plot files) evaluate with the
vendored vega/vega-lite in Node to one colour per model with its AUC (the colours and order of
the PNGs), train/val curves from epoch 1, and confusion matrices labelled with their counts. The real-browser check is
scripts/check_plots_offline.py (the `slow` test at the end runs it when Chromium is installed).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cosmic.evaluation.plots import MODEL_COLOURS
from tests.conftest import REPO

VENDOR = REPO / "vendor" / "vega"
TEMPLATES = REPO / ".dvc" / "plots"
VENDORED = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
MODELS = tuple(MODEL_COLOURS)  # training order, as in the PNGs
SPEC = yaml.safe_load((REPO / "dvc.yaml").read_text())
DVC = Path(sys.executable).parent / "dvc"
NODE = shutil.which("node")
# Anchors dvc_render fills (vega.py: title, x, y, x_label, y_label, data + OPTIONAL_ANCHORS).
KNOWN_ANCHORS = {"DATA", "TITLE", "X", "Y", "X_LABEL", "Y_LABEL", "COLOR", "COLUMN", "GROUP_BY", "GROUP_BY_X",
                 "GROUP_BY_Y", "PIVOT_FIELD", "PLOT_HEIGHT", "PLOT_WIDTH", "ROW", "SHAPE", "STROKE_DASH",
                 "TOOLTIP", "ZOOM_AND_PAN"}
# Headless Vega has no `window` to bind zoom/pan events to; in a page it has.
HEADLESS_ONLY_WARNING = "Can not resolve event source: window"


def _html_template() -> Path:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / ".dvc" / "config")
    return REPO / ".dvc" / cfg["plots"]["html_template"]  # DVC resolves it relative to .dvc/


def _custom_plots() -> dict[str, dict]:
    """Top-level plot definitions of dvc.yaml that use a template from .dvc/plots/."""
    out = {}
    for entry in SPEC["plots"]:
        if isinstance(entry, dict):
            (pid, opts), = entry.items()
            if (opts or {}).get("template") and (TEMPLATES / f"{opts['template']}.json").is_file():
                out[pid] = opts
    return out


def test_vendored_libraries_are_pinned_with_licences():
    sums = dict(line.split()[::-1] for line in (VENDOR / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert set(sums) == set(VENDORED)
    for name in VENDORED:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == sums[name], name
    for lic in ("LICENSE.vega", "LICENSE.vega-lite", "LICENSE.vega-embed"):
        text = (VENDOR / lic).read_text()
        assert "University of Washington Interactive Data Lab" in text and "Redistribution" in text, lic
    # Same majors as DVC's own page (dvc_render loads vega@5, vega-lite@5, vega-embed@6 from a CDN).
    assert 't.version="5.' in (VENDOR / "vega.min.js").read_text()[-400:]
    assert 'var n="5.' in (VENDOR / "vega-lite.min.js").read_text()[:400]


def test_page_template_inlines_the_vendored_libraries():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_plots_page
    finally:
        sys.path.remove(str(REPO / "scripts"))
    page = _html_template()
    assert page == build_plots_page.PAGE, "plots.html_template is not the page the build script writes"
    html = page.read_text(encoding="utf8")
    assert html == build_plots_page.render(), "page.html is stale: run python scripts/build_plots_page.py"
    assert "{plot_divs}" in html and "{scripts}" not in html  # no {scripts}: DVC's CDN tags go nowhere
    assert not re.search(r"<script[^>]*\bsrc=", html), "the page loads a script file"
    for name in VENDORED:
        code = (VENDOR / name).read_text(encoding="utf8").split("\n//# sourceMappingURL=")[0].strip()
        assert code in html, f"{name} is not inlined"


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.json")), ids=lambda p: p.name)
def test_custom_templates_are_valid(path):
    spec = json.loads(path.read_text(encoding="utf8"))
    assert spec["$schema"].endswith("/vega-lite/v5.json")
    assert spec["data"] == {"values": "<DVC_METRIC_DATA>"}  # DVC refuses a template without it
    anchors = set(re.findall(r"<DVC_METRIC_([A-Z_]+)>", path.read_text()))
    assert {"DATA", "X", "Y", "TITLE"} <= anchors and anchors <= KNOWN_ANCHORS, anchors


def test_dvc_yaml_uses_the_custom_templates():
    plots = _custom_plots()
    used = {opts["template"] for opts in plots.values()}
    assert used == {p.stem for p in TEMPLATES.glob("*.json")}, used
    for pid, opts in plots.items():
        if "y" in opts:
            assert isinstance(opts["y"], dict) and len(opts["y"]) >= 3, pid  # one file per model (and split)


def _walk(node):
    """Every dict in a JSON document."""
    if isinstance(node, dict):
        yield node
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            yield from _walk(item)


@pytest.mark.parametrize("template", ["roc_models", "pr_models", "training_models", "confusion_counts"])
def test_templates_order_and_colour_models_as_the_pngs(template):
    spec = json.loads((TEMPLATES / f"{template}.json").read_text())
    ranks = [d["calculate"] for d in _walk(spec) if d.get("as") == "model_rank"]
    assert ranks == [f"indexof([{', '.join(repr(m) for m in MODEL_COLOURS)}], datum.model)"], ranks
    colour_ranges = [d["color"]["scale"]["range"] for d in _walk(spec)
                     if isinstance(d.get("color"), dict) and d["color"].get("field") in ("series", "legend")]
    if template == "confusion_counts":  # no colour per model: one column per model, in order
        assert spec["facet"]["column"]["sort"] == {"field": "series_order", "op": "min"}
        assert colour_ranges == []
    else:
        assert colour_ranges == [list(MODEL_COLOURS.values())], colour_ranges


@pytest.fixture(scope="module")
def shown(tmp_path_factory) -> tuple[Path, dict]:
    """`dvc plots show --json` and `dvc plots show` in a bare DVC repo with the committed plot files."""
    if not DVC.exists():
        pytest.skip(f"no dvc next to {sys.executable}")
    plots = _custom_plots()
    files = [f for opts in plots.values() for f in (opts.get("y") or {})]
    files += [str(p.relative_to(REPO)) for pid, opts in plots.items() if "y" not in opts
              for p in (REPO / pid).rglob("*.tsv")]
    if not files or not all((REPO / f).is_file() for f in files):
        pytest.skip("the plot files of a pipeline run are not in this checkout")
    root = tmp_path_factory.mktemp("plots_repo")
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, root / f)
    (root / "dvc.yaml").write_text(yaml.safe_dump({"plots": [{k: v} for k, v in plots.items()]}, sort_keys=False))
    (root / ".dvc").mkdir()  # what `dvc init --no-scm` makes, less a process start
    config = (REPO / ".dvc" / "config").read_text()
    (root / ".dvc" / "config").write_text(config.replace("[core]\n", "[core]\n    no_scm = true\n", 1))
    shutil.copytree(TEMPLATES, root / ".dvc" / "plots")
    res = subprocess.run([str(DVC), "plots", "show", "--json"], cwd=root, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert not data.get("errors"), data["errors"]
    res = subprocess.run([str(DVC), "plots", "show", "-o", "out"], cwd=root, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    return root, data["data"]


def test_generated_page_loads_nothing_from_the_network(shown):
    root, _ = shown
    html = (root / "out" / "index.html").read_text(encoding="utf8")
    markup = re.sub(r"(<script\b[^>]*>).*?</script>", r"\1</script>", html, flags=re.S | re.I)
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*[\"']?\s*(https?:)?//", markup, re.I)
    assert html.count("vegaEmbed('#") == len(_custom_plots())


@pytest.fixture(scope="module")
def evaluated(shown) -> dict:
    """Each plot's spec evaluated headless by the vendored vega/vega-lite in Node."""
    if not NODE:
        pytest.skip("no node to evaluate the Vega-Lite specs")
    _, data = shown
    specs = {pid: plots[0]["content"] for pid, plots in data.items()}
    res = subprocess.run([NODE, str(REPO / "scripts" / "eval_vega_specs.js"), str(VENDOR)],
                         input=json.dumps(specs), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for pid, result in out.items():
        assert "error" not in result, (pid, result.get("error"))
        assert [w for w in result["warnings"] if HEADLESS_ONLY_WARNING not in w] == [], (pid, result["warnings"])
    return out


def _by_template(evaluated: dict, template: str) -> dict[str, dict]:
    plots = _custom_plots()
    out = {}
    for pid, result in evaluated.items():
        defn = plots.get(pid) or next(o for p, o in plots.items() if pid.startswith(p.rstrip("/") + "/"))
        if defn["template"] == template:
            out[pid] = result
    assert out, template
    return out


def test_roc_and_pr_colour_by_model_with_auc(evaluated):
    metrics_file = REPO / "metrics" / "evaluate.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    for template, score, key in (("roc_models", "AUC ", "roc_auc"), ("pr_models", "AP\u2248", "average_precision")):
        for pid, result in _by_template(evaluated, template).items():
            legend = result["scales"]["color"]
            assert len(legend) == len(MODELS), (pid, legend)  # one colour per model
            assert result["ranges"]["color"][:len(legend)] == list(MODEL_COLOURS.values()), pid
            for model, label in zip(MODELS, legend):
                m = re.fullmatch(rf"{model} \({re.escape(score)}(0\.\d{{3}}|1\.000)\)", label)
                assert m, (pid, label)
                if metrics.get(model):  # the template's area agrees with the evaluate stage's
                    assert abs(float(m.group(1)) - metrics[model]["test"][key]) <= 0.0015, (pid, label)


def test_training_curves_overlay_models_train_and_val_from_epoch_1(evaluated):
    results = _by_template(evaluated, "training_models")
    assert len(results) == 3  # loss, accuracy, auc
    for pid, result in results.items():
        scales = result["scales"]
        assert scales["color"] == list(MODELS), pid
        assert result["ranges"]["color"] == list(MODEL_COLOURS.values()), pid
        assert scales["strokeDash"] == ["train", "val"], pid
        assert scales["x"][0] == 1, (pid, scales["x"])


def test_tuning_trials_are_points(evaluated):
    for pid, result in _by_template(evaluated, "trials").items():
        assert result["items"].get("symbol", 0) >= 1 and "line" not in result["items"], (pid, result["items"])


def test_confusion_matrices_show_their_counts(evaluated, shown):
    root, _ = shown
    (pid, result), = _by_template(evaluated, "confusion_counts").items()
    assert result["titles"][:len(MODELS)] == list(MODELS), result["titles"]  # columns in training order
    counts = sorted(int(t) for t in result["texts"])
    expected = []
    for f in _custom_plots()[pid]["y"]:
        rows = json.loads((root / f).read_text())
        cells: dict[tuple, int] = {}
        for r in rows:
            cells[(r["actual"], r["predicted"])] = cells.get((r["actual"], r["predicted"]), 0) + 1
        expected += [cells.get((a, p), 0) for a in ("elliptical", "spiral") for p in ("elliptical", "spiral")]
    assert counts == sorted(expected), (counts, expected)


@pytest.mark.slow
def test_every_chart_renders_in_headless_chromium_offline(tmp_path):
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("no Chromium (apt-get install chromium)")
    if not all((REPO / f).is_file() for opts in _custom_plots().values() for f in (opts.get("y") or {})):
        pytest.skip("the plot files of a pipeline run are not in this checkout")
    shot = tmp_path / "plots.png"
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "check_plots_offline.py"), "--screenshot", str(shot)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert shot.stat().st_size > 50_000

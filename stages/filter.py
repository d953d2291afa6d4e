"""filter: validate data/raw and write the labelled manifest, drop report, counts and EDA plots."""

from cosmic import params, paths
from cosmic.data import eda
from cosmic.data.catalog import build_catalog
from cosmic.utils import atomic_path, read_json, write_json
from stages import run


def main(p: params.StageParams) -> None:
    """Label the rows of data/raw, count and report what was dropped, and draw the data plots."""
    base, f = p.base, p.own
    result = build_catalog(paths.RAW_DIR, f.threshold, base.class_names, f.on_invalid, f.check_images)
    for frame, path in ((result.catalog, paths.CATALOG), (result.dropped, paths.DROPPED)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    counts = dict(result.counts)
    summary = {"source": read_json(paths.SOURCE_RECORD).get("source", "unknown"),
               "threshold": counts.pop("threshold"),
               **{k: counts.pop(k) for k in ("extra_columns", "missing_columns") if k in counts}}
    write_json(paths.FILTER_SUMMARY, summary)
    write_json(paths.stage_metrics("data"), counts)
    plot_dir = paths.PLOTS_DIR / "data"
    plot_dir.mkdir(parents=True, exist_ok=True)
    eda.plot_vote_fractions(result.valid, f.threshold, plot_dir / "vote_fractions.png")
    eda.plot_class_balance(result.counts, plot_dir / "class_balance.png")
    if f.n_sample_images:
        eda.plot_samples(result.catalog, base.class_names, f.n_sample_images, base.seed, plot_dir / "samples.png")


if __name__ == "__main__":
    run("filter", main)

"""filter: validate data/raw and write the labelled manifest, drop report, counts and EDA plots."""

import sys

from cosmic import params, paths, workspace

from cosmic.data import eda
from cosmic.data.catalog import CatalogError, build_catalog
from cosmic.params import ParamError
from cosmic.utils import OutputError, atomic_path, read_json, setup_logging, write_json


def main() -> None:
    setup_logging()
    claim = workspace.claim()  # before anything is read or written
    raw = params.load()
    base, p = params.base(raw), params.filter_(raw)
    result = build_catalog(paths.RAW_DIR, p.threshold, base.class_names, p.on_invalid, p.check_images)
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
    eda.plot_vote_fractions(result.valid, p.threshold, plot_dir / "vote_fractions.png")
    eda.plot_class_balance(result.counts, plot_dir / "class_balance.png")
    if p.n_sample_images:
        eda.plot_samples(result.catalog, base.class_names, p.n_sample_images, base.seed,
                         plot_dir / "samples.png")
    claim.check()  # DVC records params.yaml once the stage exits: it must be what ran


if __name__ == "__main__":
    try:
        main()
    except (ParamError, CatalogError, FileNotFoundError, OutputError, workspace.WorkspaceBusyError) as e:
        sys.exit(f"filter: {e}")
    except KeyboardInterrupt:
        sys.exit("filter: interrupted; no output was half-written, re-run the stage")

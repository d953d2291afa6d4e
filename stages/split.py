"""split: stratified, seeded train/val/test manifests of the filtered catalogue."""

import sys

import pandas as pd

from cosmic import params, paths
from cosmic.params import ParamError
from cosmic.splitting import SplitError, split_summary, stratified_split
from cosmic.utils import setup_logging, write_json


def main() -> None:
    setup_logging()
    raw = params.load()
    base, p = params.base(raw), params.split(raw)
    catalog = pd.read_csv(paths.CATALOG)
    parts = stratified_split(catalog, {"train": p.train, "val": p.val, "test": p.test}, base.seed)
    paths.SPLIT_DIR.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        part.to_csv(paths.split_manifest(name), index=False)
    write_json(paths.stage_metrics("split"), split_summary(parts, base.class_names))


if __name__ == "__main__":
    try:
        main()
    except (ParamError, SplitError) as e:
        sys.exit(f"split: {e}")

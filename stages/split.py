"""split: stratified, seeded train/val/test manifests of the filtered catalogue."""

import pandas as pd

from cosmic import params, paths
from cosmic.data.splitting import split_summary, stratified_split
from cosmic.utils import atomic_path, write_json
from stages import run


def main(p: params.StageParams) -> None:
    """Split data/filtered/catalog.csv by class into the three manifests and count them."""
    s = p.own
    parts = stratified_split(pd.read_csv(paths.CATALOG), {"train": s.train, "val": s.val, "test": s.test}, p.base.seed)
    paths.SPLIT_DIR.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        with atomic_path(paths.split_manifest(name)) as tmp:
            part.to_csv(tmp, index=False)
    write_json(paths.stage_metrics("split"), split_summary(parts, p.base.class_names))


if __name__ == "__main__":
    run("split", main)

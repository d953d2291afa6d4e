"""split: stratified, seeded train/val/test manifests of the filtered catalogue."""

import sys

import pandas as pd

from cosmic import params, paths, workspace
from cosmic.params import ParamError
from cosmic.data.splitting import SplitError, split_summary, stratified_split
from cosmic.utils import OutputError, atomic_path, setup_logging, write_json


def main() -> None:
    setup_logging()
    claim = workspace.claim()  # before anything is read or written
    raw = params.load()
    base, p = params.base(raw), params.split(raw)
    catalog = pd.read_csv(paths.CATALOG)
    parts = stratified_split(catalog, {"train": p.train, "val": p.val, "test": p.test}, base.seed)
    paths.SPLIT_DIR.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        with atomic_path(paths.split_manifest(name)) as tmp:
            part.to_csv(tmp, index=False)
    write_json(paths.stage_metrics("split"), split_summary(parts, base.class_names))
    claim.check()  # DVC records params.yaml once the stage exits: it must be what ran


if __name__ == "__main__":
    try:
        main()
    except (ParamError, SplitError, OutputError, workspace.WorkspaceBusyError) as e:
        sys.exit(f"split: {e}")
    except KeyboardInterrupt:
        sys.exit("split: interrupted; no output was half-written, re-run the stage")

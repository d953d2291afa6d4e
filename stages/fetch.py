"""fetch: lay out the Kaggle-format training set in data/raw (synthetic or real)."""

import logging
import shutil

from cosmic import params, paths
from cosmic.data.fetch import check_separate, import_kaggle, write_manifest
from cosmic.data.synthetic import generate
from cosmic.utils import writing
from stages import run

log = logging.getLogger("fetch")


def main(p: params.StageParams) -> None:
    """Generate the synthetic set or import the Kaggle files into data/raw, with its SOURCE.json."""
    f = p.own
    if f.source == "kaggle":
        check_separate(f.kaggle_dir, paths.RAW_DIR)  # before emptying data/raw: it may hold the source
    shutil.rmtree(paths.RAW_DIR, ignore_errors=True)
    with writing(paths.RAW_DIR):
        if f.source == "synthetic":
            s = f.synthetic
            generate(paths.RAW_DIR, s.n_images, s.seed, workers=s.workers)
            info = {"source": "synthetic", "n_images": s.n_images, "seed": s.seed}
        else:
            info = import_kaggle(f.kaggle_dir, paths.RAW_DIR)
        write_manifest(paths.RAW_DIR, info)
    log.info("data/raw ready: %s", info)


if __name__ == "__main__":
    run("fetch", main, interrupted="data/raw is incomplete")

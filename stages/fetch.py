"""fetch: lay out the Kaggle-format training set in data/raw (synthetic or real)."""

import logging
import shutil
import sys

from cosmic import params, paths, workspace
from cosmic.data.fetch import FetchError, check_separate, import_kaggle, write_manifest
from cosmic.params import ParamError
from cosmic.data.synthetic import generate
from cosmic.utils import OutputError, setup_logging, writing

log = logging.getLogger("fetch")


def main() -> None:
    setup_logging()
    claim = workspace.claim()  # before anything is read or written
    p = params.fetch(params.load())
    if p.source == "kaggle":
        check_separate(p.kaggle_dir, paths.RAW_DIR)  # before emptying data/raw: it may hold the source
    shutil.rmtree(paths.RAW_DIR, ignore_errors=True)
    with writing(paths.RAW_DIR):
        if p.source == "synthetic":
            s = p.synthetic
            generate(paths.RAW_DIR, s.n_images, s.seed, workers=s.workers)
            info = {"source": "synthetic", "n_images": s.n_images, "seed": s.seed}
        else:
            info = import_kaggle(p.kaggle_dir, paths.RAW_DIR)
        write_manifest(paths.RAW_DIR, info)
    log.info("data/raw ready: %s", info)
    claim.check()  # DVC records params.yaml once the stage exits: it must be what ran


if __name__ == "__main__":
    try:
        main()
    except (ParamError, FetchError, OutputError, workspace.WorkspaceBusyError) as e:
        sys.exit(f"fetch: {e}")
    except KeyboardInterrupt:
        sys.exit("fetch: interrupted; data/raw is incomplete, re-run the stage")

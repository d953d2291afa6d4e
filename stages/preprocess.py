"""preprocess: centre-crop and resize every split into memory-mappable arrays."""

import logging
import shutil
import sys

import pandas as pd

from cosmic import params, paths, workspace
from cosmic.imageops import ImageError
from cosmic.packing import pack_split, write_meta
from cosmic.params import ParamError
from cosmic.utils import OutputError, setup_logging

log = logging.getLogger("preprocess")


def main() -> None:
    setup_logging()
    claim = workspace.claim()  # before anything is read or written
    raw = params.load()
    base, p = params.base(raw), params.preprocess(raw)
    shutil.rmtree(paths.PROCESSED_DIR, ignore_errors=True)
    counts = {}
    for split in paths.SPLITS:
        manifest = pd.read_csv(paths.split_manifest(split))
        counts[split] = pack_split(manifest, paths.PROCESSED_DIR / split, base.crop_size, base.image_size,
                                   p.chunk_size)
        log.info("%s: %d images packed at %dpx (crop %d)", split, counts[split], base.image_size,
                 base.crop_size)
    write_meta(paths.PROCESSED_DIR, base.crop_size, base.image_size, base.class_names, counts)
    claim.check()  # DVC records params.yaml once the stage exits: it must be what ran


if __name__ == "__main__":
    try:
        main()
    except (ParamError, ImageError, FileNotFoundError, ValueError, OutputError, workspace.WorkspaceBusyError) as e:
        sys.exit(f"preprocess: {e}")
    except KeyboardInterrupt:
        sys.exit("preprocess: interrupted; no output was half-written, re-run the stage")

"""preprocess: crop and resize every split into memory-mappable arrays."""

import logging
import shutil
import sys

import pandas as pd

from cosmic import params, paths, workspace
from cosmic.data.imageops import ImageError, crop_of
from cosmic.data.packing import pack_split, write_meta
from cosmic.params import ParamError
from cosmic.utils import OutputError, setup_logging

log = logging.getLogger("preprocess")


def main() -> None:
    setup_logging()
    claim = workspace.claim()  # before anything is read or written
    raw = params.load()
    base, p = params.base(raw), params.preprocess(raw)
    shutil.rmtree(paths.PROCESSED_DIR, ignore_errors=True)
    crop = crop_of(base.crop, base.crop_size, base.crop_factor)
    counts, fallbacks = {}, {}
    for split in paths.SPLITS:
        manifest = pd.read_csv(paths.split_manifest(split))
        counts[split], fallbacks[split] = pack_split(manifest, paths.PROCESSED_DIR / split, crop,
                                                     base.image_size, p.chunk_size)
        log.info("%s: %d images packed at %dpx (%s)", split, counts[split], base.image_size, crop_note(base))
        if fallbacks[split]:
            log.warning("%s: no central source found in %d of %d images; the fixed %d-px centre crop was used "
                        "for them (counted in %s)", split, fallbacks[split], counts[split], base.crop_size,
                        paths.PROCESSED_DIR / "meta.json")
    write_meta(paths.PROCESSED_DIR, crop, base.image_size, base.class_names, counts, fallbacks)
    claim.check()  # DVC records params.yaml once the stage exits: it must be what ran


def crop_note(base: params.Base) -> str:
    """The crop as a log line says it."""
    if base.crop == "fixed":
        return f"fixed {base.crop_size}-px centre crop"
    return f"adaptive crop, {base.crop_factor:g} x Petrosian radius"


if __name__ == "__main__":
    try:
        main()
    except (ParamError, ImageError, FileNotFoundError, ValueError, OutputError, workspace.WorkspaceBusyError) as e:
        sys.exit(f"preprocess: {e}")
    except KeyboardInterrupt:
        sys.exit("preprocess: interrupted; no output was half-written, re-run the stage")

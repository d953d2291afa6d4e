"""preprocess: crop and resize every split into memory-mappable arrays."""

import logging
import shutil

import pandas as pd

from cosmic import params, paths
from cosmic.data.imageops import crop_of
from cosmic.data.packing import pack_split, write_meta
from stages import run

log = logging.getLogger("preprocess")


def main(p: params.StageParams) -> None:
    """Pack each split's images, cut as `base.crop` says, into data/processed, with meta.json."""
    base = p.base
    shutil.rmtree(paths.PROCESSED_DIR, ignore_errors=True)
    crop = crop_of(base)
    counts, fallbacks = {}, {}
    for split in paths.SPLITS:
        manifest = pd.read_csv(paths.split_manifest(split))
        counts[split], fallbacks[split] = pack_split(manifest, paths.PROCESSED_DIR / split, crop,
                                                     base.image_size, p.own.chunk_size)
        log.info("%s: %d images packed at %dpx (%s)", split, counts[split], base.image_size, crop_note(base))
        if fallbacks[split]:
            log.warning("%s: no central source found in %d of %d images; the fixed %d-px centre crop was used "
                        "for them (counted in %s)", split, fallbacks[split], counts[split], base.crop_size,
                        paths.PROCESSED_DIR / "meta.json")
    write_meta(paths.PROCESSED_DIR, crop, base.image_size, base.class_names, counts, fallbacks)


def crop_note(base: params.Base) -> str:
    """The crop as a log line says it."""
    if base.crop == "fixed":
        return f"fixed {base.crop_size}-px centre crop"
    return f"adaptive crop, {base.crop_factor:g} x Petrosian radius"


if __name__ == "__main__":
    run("preprocess", main, also=(ValueError,))

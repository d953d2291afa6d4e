"""Save Keras models reproducibly, with the preprocessing they expect recorded inside the file."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from cosmic.data.imageops import Crop
from cosmic.utils import writing

if TYPE_CHECKING:  # Keras is imported where a model is loaded, so cosmic.commands.predict can name MODEL_FIX cheaply
    import keras

PREPROCESSING_ENTRY = "cosmic_preprocessing.json"
# What to tell a user whose model file is missing or damaged.
MODEL_FIX = ("run `make repro` to train the models, or `dvc pull` to fetch them from the project's DVC remote "
             "(`make verify` finds a damaged file and prints the command that repairs it)")
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def preprocessing_record(crop: Crop, image_size: int, class_names: tuple[str, str]) -> dict:
    """What a saved model expects: its crop (adaptive or fixed, with the fixed fraction), input size, classes."""
    adaptive = {} if crop.factor is None else {"crop_factor": crop.factor}
    return {"crop": crop.mode, **adaptive, "crop_fraction": crop.fraction,
            "image_size": image_size,
            "input_range": [0, 255], "class_names": list(class_names), "output": f"p({class_names[1]})"}


def save_model(model: keras.Model, path: Path | str, preprocessing: dict) -> None:
    """Save a .keras file byte-identically for identical weights, with the preprocessing inside.

    Keras stamps the save date into metadata.json and the zip entries; both are fixed here
    so a re-run that produces the same weights produces the same file (and dvc.lock hash).
    The extra JSON entry is ignored by `keras.models.load_model`.

    Raises:
        OutputError: naming `path` and about the space the weights take when the disk is full or
            the folder read-only; no file is left beside it.
    """
    path = Path(path)
    with writing(path, sum(w.nbytes for w in model.get_weights())), \
            tempfile.TemporaryDirectory(dir=_made(path.parent)) as tmp:
        raw = Path(tmp) / "raw.keras"
        model.save(raw)
        out = Path(tmp) / "out.keras"
        with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for name in sorted(src.namelist()):
                data = src.read(name)
                if name == "config.json":
                    data = json.dumps(_renumber_shared_objects(json.loads(data))).encode()
                elif name == "metadata.json":
                    meta = json.loads(data)
                    meta.pop("date_saved", None)
                    data = json.dumps(meta, sort_keys=True).encode()
                dst.writestr(zipfile.ZipInfo(name, _FIXED_DATE), data, zipfile.ZIP_DEFLATED)
            dst.writestr(zipfile.ZipInfo(PREPROCESSING_ENTRY, _FIXED_DATE),
                         json.dumps(preprocessing, sort_keys=True, indent=2).encode(), zipfile.ZIP_DEFLATED)
        os.replace(out, path)


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _renumber_shared_objects(config):
    """Replace Keras's shared_object_id values (Python object ids) by 1, 2, ... in order of appearance.

    The ids only link repeated references to one object, so consistent renumbering keeps the
    meaning while making config.json independent of memory addresses.
    """
    mapping: dict = {}

    def walk(node):
        if isinstance(node, dict):
            return {k: (mapping.setdefault(v, len(mapping) + 1) if k == "shared_object_id" else walk(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(config)


def read_preprocessing(path: Path | str) -> dict:
    """Read the preprocessing a saved model expects.

    Raises:
        ValueError: naming the file if it is not a Cosmic Classifier .keras model.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read(PREPROCESSING_ENTRY))
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise ValueError(f"{path}: not a Cosmic Classifier .keras model with a preprocessing record ({e})") \
            from None


def load_model(path: Path | str) -> tuple[keras.Model, dict]:
    """Load a saved model (no custom objects needed) and its preprocessing record.

    Raises:
        FileNotFoundError: naming the missing file and MODEL_FIX.
        ValueError: naming the file and MODEL_FIX when it is not a Cosmic Classifier model or Keras
            cannot load it (a damaged archive: a bad CRC, a truncated weights file...).
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found; {MODEL_FIX}")
    try:
        pre = read_preprocessing(path)
    except ValueError as e:
        raise ValueError(f"{e}; {MODEL_FIX}") from None
    try:
        return keras.models.load_model(path, compile=False), pre
    except Exception as e:  # noqa: BLE001  Keras raises many types for a damaged archive
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: cannot load the Keras model ({first_line}); {MODEL_FIX}") from None

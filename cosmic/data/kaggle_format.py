"""The Kaggle "Galaxy Zoo - The Galaxy Challenge" training-set layout and its constraints."""

from __future__ import annotations

import numpy as np

SOLUTIONS_CSV = "training_solutions_rev1.csv"
IMAGES_DIR = "images_training_rev1"
IMAGES_ZIP = "images_training_rev1.zip"
SOLUTIONS_ZIP = "training_solutions_rev1.zip"
COMPETITION = "galaxy-zoo-the-galaxy-challenge"
IMAGE_SIZE = 424

ID_COLUMN = "GalaxyID"
# Number of answers per question Q1..Q11, in column order.
ANSWERS_PER_QUESTION = (3, 2, 2, 2, 4, 2, 3, 7, 3, 3, 6)
CLASS_COLUMNS = tuple(
    f"Class{q}.{a}"
    for q, n in enumerate(ANSWERS_PER_QUESTION, start=1)
    for a in range(1, n + 1)
)
ALL_COLUMNS = (ID_COLUMN, *CLASS_COLUMNS)


def _question_slices() -> dict[int, slice]:
    slices, start = {}, 0
    for q, n in enumerate(ANSWERS_PER_QUESTION, start=1):
        slices[q] = slice(start, start + n)
        start += n
    return slices


QUESTION_SLICES = _question_slices()

# Each question's answers sum to this parent answer's fraction (None: sums to 1).
QUESTION_PARENT = {
    1: None,
    2: "Class1.2",
    3: "Class2.2",
    4: "Class2.2",
    5: "Class2.2",
    6: None,
    7: "Class1.1",
    8: "Class6.1",
    9: "Class2.1",
    10: "Class4.1",
    11: "Class4.1",
}


def constraint_residuals(values: np.ndarray) -> np.ndarray:
    """Return |sum(answers) - parent| per galaxy and question.

    Args:
        values: array of shape (n, 37) in `CLASS_COLUMNS` order.

    Returns:
        Array of shape (n, 11); column q-1 is the residual of question q.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(CLASS_COLUMNS):
        raise ValueError(
            f"expected an (n, {len(CLASS_COLUMNS)}) array of vote fractions, got shape {values.shape}"
        )
    out = np.empty((values.shape[0], len(ANSWERS_PER_QUESTION)))
    for q, sl in QUESTION_SLICES.items():
        parent = QUESTION_PARENT[q]
        target = 1.0 if parent is None else values[:, CLASS_COLUMNS.index(parent)]
        out[:, q - 1] = np.abs(values[:, sl].sum(axis=1) - target)
    return out

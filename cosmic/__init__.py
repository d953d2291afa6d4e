"""Cosmic Classifier: elliptical-vs-spiral galaxy classification on Galaxy Zoo data."""

__version__ = "0.1.0"

"""Data: from the Kaggle (or synthetic) catalogue and images to the packed arrays the models read."""

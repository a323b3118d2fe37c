"""Bundled demo data and loaders for public datasets."""

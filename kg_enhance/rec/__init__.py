"""Recommenders: data splits, models, training, evaluation, top-K."""

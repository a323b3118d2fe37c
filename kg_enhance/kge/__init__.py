"""Knowledge-graph embeddings with PyKEEN: training, evaluation, write-back and export."""

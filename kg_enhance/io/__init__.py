"""Readers and writers of files: catalog tables, fact files, RDF."""

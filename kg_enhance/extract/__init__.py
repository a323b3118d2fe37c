"""Extraction: prompts, LLM client, cache, validation, quarantine."""

"""The run report people look at: ``report.html``, one self-contained page per run folder.

:func:`write_html_report` reads ``report.json`` and the run folder (see
:mod:`kg_enhance.report.html` for the sections); ``kg-enhance report JOB`` and
:func:`kg_enhance.api.report` call it, and ``kg-enhance demo`` writes it after the run.
"""

from __future__ import annotations

from kg_enhance.report.html import SECTIONS, build_html, write_html_report

__all__ = ["SECTIONS", "build_html", "write_html_report"]

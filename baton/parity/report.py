"""The parity report's home before the results became a leaf: :mod:`baton.results.report`."""

from __future__ import annotations

from baton.results.report import REPORT_VERSION, Report, environment

__all__ = ["REPORT_VERSION", "Report", "environment"]

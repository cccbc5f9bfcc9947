"""The dataset report: a static web page (counts, yield funnel, licences, plots, a gallery of clip previews) built
from a job's tables by DuckDB queries (queries.py, the only module that names table columns)."""

from stages.report.funnel import Funnel, build_funnel, merge_counts
from stages.report.page import ReportPage, Table, render_page, write_page
from stages.report.previews import PreviewRun, PreviewSettings, render_previews

__all__ = ["Funnel", "PreviewRun", "PreviewSettings", "ReportPage", "Table", "build_funnel", "merge_counts",
           "render_page", "render_previews", "write_page"]

"""HTML review pages for clinicians (per encounter) and the run report's index."""

from medscribe.review.page import IndexEntry, render_index_page, render_review_page

__all__ = ["IndexEntry", "render_index_page", "render_review_page"]

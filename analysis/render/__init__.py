"""Rendering the judgement: summary.json, charts and the report page."""

"""Judging a run: scaling, resources, load adequacy, findings, SLOs and what-ifs."""

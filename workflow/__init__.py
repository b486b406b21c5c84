"""The workflow layer: analysis joined with storage.

Ingest, analysing stored studies, loading a patient, the report, saving a review, the demo
cohort and the speed benchmark. It imports core and db, never ui, pages or cli.
"""

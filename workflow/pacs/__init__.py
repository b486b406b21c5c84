"""The product as a DICOM node: receive studies, query and retrieve them, send results back.

Settings come from :mod:`workflow.pacs.settings` (environment variables or a TOML file).
"""

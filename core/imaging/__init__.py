"""Image stages on one view.

Display grey levels, normalisation, the quality gate, skeletal regions, overlays,
classifier crops and resizing.
"""

"""Image stages on one view: display grey levels, normalisation, quality gate, regions,
overlays and classifier crops."""

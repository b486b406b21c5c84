"""Tumour burden and its course: BSTBI and the other indices, a physician's lesion review,
follow-up between studies, treatment response and the trajectory chart."""

"""Tumour burden and its course.

BSTBI and the other indices, a physician's lesion review, follow-up between studies,
treatment response, one patient's records and the trajectory chart.
"""

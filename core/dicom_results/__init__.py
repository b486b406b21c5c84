"""The analysis results as DICOM objects that any PACS viewer opens.

Two objects per analysed study, both in the source study (same Study Instance UID and
patient) but in new series, so a PACS files them beside the scan they describe:

* a Secondary Capture image per view (:mod:`core.dicom_results.secondary_capture`):
  the overlay picture with the figures burned into a caption band, for viewers that
  show only pixels;
* a Comprehensive SR measurement report (TID 1500,
  :mod:`core.dicom_results.measurement_report`): the same figures as coded,
  machine-readable measurements, for systems that read structured reports.

The builders are pure: they take plain data (:mod:`core.dicom_results.summary`) and
return pydicom datasets; sending them is the caller's business.
"""

"""Reading scans from files: DICOM, exported pictures and their layouts, LabelMe, datasets."""

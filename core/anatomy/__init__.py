"""Anatomy stage: the skeleton's regions and the network that finds them on a view.

* :mod:`.regions` — the one table of skeletal regions (label index, side, share of
  skeletal mass for the Bone Scan Index); pure Python, read by every other stage.
* :mod:`.network` — the skeleton-segmentation network (MONAI UNet), its frozen config,
  its input normalisation, inference and fp16 safetensors files.
"""

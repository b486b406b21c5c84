"""The two networks.

Configs and weights, the compute device, inference, augmentation, training and the
threshold calibration.
"""

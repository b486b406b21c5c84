"""The two networks: configs and weights, device, inference, augmentation, training and
threshold calibration."""

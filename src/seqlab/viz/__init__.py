"""Pictures where a picture says more than a table: attention heatmaps, training curves."""

"""Pictures where a picture says more than a table: attention heatmaps, training curves.

Importing any of them first puts a CJK font behind matplotlib's own (:mod:`seqlab.viz.fonts`)."""

from .fonts import use_cjk_fallback

use_cjk_fallback()

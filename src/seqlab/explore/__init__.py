"""``seqlab explore RUN_DIR``: a local web app to look inside a trained run — its outputs, every
layer's and head's attention, its positional encoding and its training curves."""

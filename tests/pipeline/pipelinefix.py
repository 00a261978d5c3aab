"""Settings shared by the pipeline tests (imported like ``tests/data/datafix.py``)."""

SYNTH = {"synth_n_train": 280, "synth_n_test": 70}  # the smoke pipeline's SynthFER
TINY_TRAINING = {"image_size": 32, "max_train_samples": 128}  # the smoke preset cut to 2 epochs of 4 steps
# 03_evaluate at smoke scale: fewer mistakes, Grad-CAM faces and attention images than its
# defaults (16, 2 per class, 3000); every figure of the notebook is still drawn
EVALUATE = {"n_mistakes": 4, "gradcam_per_class": 1, "attention_max_samples": 64}

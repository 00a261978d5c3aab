"""Settings shared by the pipeline tests (imported like ``tests/data/datafix.py``)."""

SYNTH = {"synth_n_train": 280, "synth_n_test": 70}  # the smoke pipeline's SynthFER
TINY_TRAINING = {"image_size": 32, "max_train_samples": 128}  # the smoke preset cut to 2 epochs of 4 steps

"""What users call: inference on images and the train / test launcher.

* :mod:`.inference`  ``tools/infer.py``: a config's model (or, with ``--artifact``, a deployed
  file) on pictures, through the toolboxes' Inferencers;
* :mod:`.launch`     ``tools/train.py`` / ``tools/test.py`` for the three toolboxes, CPU torchrun.

Imported where used (each toolbox is optional).
"""

"""The model zoo: what was published and how it reaches the OpenMMLab tools.

* :mod:`.releases`   release files, URLs, Hugging Face Hub names and the paper's numbers (one
  table);
* :mod:`.metafiles`  the OpenMMLab metafiles / ``model-index.yml`` built from the releases and
  measured with :mod:`iformer_mm.flops` (``tools/make_model_index.py``);
* :mod:`.model_hub`  the model names in mmpretrain's ``ModelHub`` (``get_model('iformer-m_in1k')``);
* :mod:`.convert`    checkpoints from any layout into ours (mm), timm's or the release layout;
  :mod:`.convert_cli` its command line (``tools/convert.py``);
* :mod:`.mm_loader`  mmengine's ``load_checkpoint`` for paths, URLs and Hub names, on our caches,
  safe loader and key conversion.

Modules are imported where they are used (mmpretrain is optional).
"""

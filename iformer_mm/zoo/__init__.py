"""The model zoo: what was published and how it reaches the OpenMMLab tools.

* :mod:`.releases`   release files, URLs and the paper's numbers (one table);
* :mod:`.metafiles`  the OpenMMLab metafiles / ``model-index.yml`` built from the releases and
  measured with :mod:`iformer_mm.flops` (``tools/make_model_index.py``);
* :mod:`.model_hub`  the model names in mmpretrain's ``ModelHub`` (``get_model('iformer-m_in1k')``);
* :mod:`.convert`    published files -> mm-format files (``tools/convert_official.py``);
* :mod:`.mm_loader`  mmengine's ``load_checkpoint`` for URLs, on our cache, safe loader and
  key conversion.

Modules are imported where they are used (mmpretrain is optional).
"""

"""The model zoo: weights by URL, the model index, mmpretrain's model names, inference on pictures.

One module per job (imported where needed; this file imports nothing, so that the checkpoint
loader can use :mod:`.download` without pulling in the toolboxes):

* :mod:`.download`   URL -> verified file in the torch hub cache (``resolve_checkpoint``);
* :mod:`.mm_loader`  the same for mmengine's ``load_checkpoint`` (http/https scheme);
* :mod:`.releases`   what was published: release files, URLs, the paper's numbers;
* :mod:`.metafiles`  the OpenMMLab metafiles / ``model-index.yml`` built from the releases and
  measured with our FLOPs tool (``tools/make_model_index.py``);
* :mod:`.model_hub`  the model names in mmpretrain's ``ModelHub`` (``get_model('iformer-m_in1k')``);
* :mod:`.scope`      the mm default scope a toolbox needs, set for a block and restored;
* :mod:`.infer`      ``tools/infer.py``: the toolboxes' Inferencers on images.
"""

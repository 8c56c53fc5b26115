"""mmpretrain's ``ImageClassifier`` that ``inference_model`` recognises whatever built it.

Why: ``mmpretrain.inference_model(model, img)`` picks its Inferencer from ``model._metainfo``, the
model-index entry ``get_model`` stores on the model. ``get_model(CONFIG)`` stores ``None`` there
(a config file has no index entry), so ``inference_model`` failed with "No available inferencer
for the model" for every config. Our classifiers answer ``None`` with a minimal entry saying what
they are, an image classifier; an index entry (``get_model('iformer-m_in1k')``) is kept as it is.
"""
from __future__ import annotations

from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS

__all__ = ['ImageClassificationMetainfo', 'IFormerImageClassifier']


class ImageClassificationMetainfo:
    """Mixin: ``_metainfo`` falls back to a model-index entry with the Image Classification task."""

    @property
    def _metainfo(self):
        stored = self.__dict__.get('_index_metainfo')
        if stored is not None:
            return stored
        from modelindex.models.Model import Model
        config = getattr(self, '_config', None)
        name = getattr(config, 'filename', None) or type(self).__name__
        return Model(name=str(name), results=[
            {'Task': 'Image Classification', 'Dataset': 'not given', 'Metrics': {}}])

    @_metainfo.setter
    def _metainfo(self, value) -> None:
        self.__dict__['_index_metainfo'] = value


@MODELS.register_module()
class IFormerImageClassifier(ImageClassificationMetainfo, ImageClassifier):
    """``ImageClassifier`` (same arguments, same behaviour) usable with ``inference_model``."""

"""Checkpoint files: safe (``weights_only``) loading, format detection, downloads into the cache.

One module per job, lowest first:

* :mod:`.files`         what a PyTorch checkpoint looks like on disk (header, zip directory),
  checked without unpickling; :class:`CheckpointError`;
* :mod:`.safe_globals`  the ``weights_only`` allowlists (mmengine checkpoints, release files);
* :mod:`.download`      a URL -> a verified file in the torch hub cache (``resolve_checkpoint``);
* :mod:`.load`          ``safe_load`` (path or URL), the one state_dict finder, atomic saving.

What the keys inside mean (published vs our names, which variant) is the model's business:
:mod:`iformer_mm.models.backbones.iformer_keys`.
"""
from .download import DownloadError, is_url, resolve_checkpoint, resolve_on_rank_zero_first
from .files import CheckpointError
from .load import StateDict, atomic_torch_save, find_state_dict, preview_keys, safe_load

__all__ = ['CheckpointError', 'DownloadError', 'StateDict', 'atomic_torch_save',
           'find_state_dict', 'is_url', 'preview_keys', 'resolve_checkpoint',
           'resolve_on_rank_zero_first', 'safe_load']

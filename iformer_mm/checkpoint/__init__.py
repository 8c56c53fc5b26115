"""Checkpoint files: safe (``weights_only``) loading, format detection, downloads into the cache.

One module per job, lowest first:

* :mod:`.files`         what a checkpoint looks like on disk (PyTorch zip / pickle, safetensors),
  checked without loading it; :class:`CheckpointError`, :class:`DownloadError`;
* :mod:`.safe_globals`  the ``weights_only`` allowlists (mmengine checkpoints, release files);
* :mod:`.hub`           an ``hf-hub:ORG/REPO`` name -> a file in the Hugging Face Hub cache;
* :mod:`.download`      a URL -> a verified file in the torch hub cache; ``resolve_checkpoint``
  (path, URL or Hub name -> a local file);
* :mod:`.load`          ``safe_load`` (path, URL or Hub name), the one state_dict finder, atomic
  saving (``torch.save`` and safetensors).

What the keys inside mean (published vs our names, which variant) is the model's business:
:mod:`iformer_mm.models.backbones.iformer_keys`.
"""
from .download import is_remote, is_url, resolve_checkpoint, resolve_on_rank_zero_first
from .files import CheckpointError, DownloadError
from .hub import is_hub_name
from .load import (StateDict, atomic_safetensors_save, atomic_torch_save, find_state_dict,
                   preview_keys, safe_load)

__all__ = ['CheckpointError', 'DownloadError', 'StateDict', 'atomic_safetensors_save',
           'atomic_torch_save', 'find_state_dict', 'is_hub_name', 'is_remote', 'is_url',
           'preview_keys', 'resolve_checkpoint', 'resolve_on_rank_zero_first', 'safe_load']

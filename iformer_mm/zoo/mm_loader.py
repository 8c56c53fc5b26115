"""mmengine's ``load_checkpoint`` for http(s) URLs, on our cache and our safe loader.

Why: ``load_from = URL``, mmpretrain's ``get_model(name, pretrained=True)``, the Inferencers'
``weights=URL`` and ``init_cfg=dict(type='Pretrained', checkpoint=URL)`` on non-iFormer modules
all read through mmengine's ``CheckpointLoader``. Its http loader downloads with torch hub (which
caches an HTML error page like a checkpoint) and unpickles with ``weights_only`` and no allowlist
for the release files' ``argparse.Namespace``; and it hands a published iFormer file
(``{'model': ...}`` with published key names) to the model as it is, so nothing would load.

:func:`register_url_loader` (run by ``import iformer_mm``) replaces that loader for ``http://``
and ``https://``: the file goes through :func:`~iformer_mm.checkpoint.download.resolve_on_rank_zero_first`
(same cache folder, atomic, verified; rank 0 first, as mmengine's loader does) and
:func:`~iformer_mm.checkpoint.safe_load`; a published iFormer classification file is given to the
model in the mm layout (``backbone.*``, ``head.*``), every other checkpoint as it is. Local paths
keep mmengine's own loader.
"""
from __future__ import annotations

from typing import Optional

from ..checkpoint import resolve_on_rank_zero_first

__all__ = ['load_from_url', 'register_url_loader']


def load_from_url(filename: str, map_location: Optional[object] = None,
                  model_dir: Optional[str] = None) -> dict:
    """The checkpoint at ``filename`` (a URL), fetched once; tensors are read onto the CPU.

    ``map_location`` is accepted for mmengine's interface; tensors are always read onto the CPU
    (``load_state_dict`` copies them to the model's device). ``model_dir`` overrides the cache.
    """
    from ..checkpoint import CheckpointError, find_state_dict, safe_load
    ckpt = safe_load(resolve_on_rank_zero_first(filename, model_dir))
    try:
        state_dict, fmt = find_state_dict(ckpt, source=filename)
    except CheckpointError:
        return ckpt
    if fmt != 'official':
        return ckpt
    from ..models.backbones.iformer_keys import official_to_mm
    try:
        converted = official_to_mm(state_dict)
    except CheckpointError:  # a {'model': ...} file of another network
        return ckpt
    return {'state_dict': converted, 'meta': {'source': filename, 'format': 'published iFormer'}}


def register_url_loader() -> None:
    """Make mmengine read http(s) checkpoints through :func:`load_from_url` (idempotent)."""
    from mmengine.runner import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), loader=load_from_url,
                                     force=True)

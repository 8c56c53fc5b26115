"""Checkpoints by Hugging Face Hub name: ``hf-hub:ORG/REPO[@REVISION]``, resolved the way timm does.

Why: most people meet iFormer through timm, whose pretrained tags (``iformer_m.in1k``) are Hub
repositories (``timm/iformer_m.in1k``) holding ``model.safetensors`` / ``pytorch_model.bin`` in
timm's key layout. Every loader of this package takes such a name where it takes a path or URL
(:func:`~iformer_mm.checkpoint.download.resolve_checkpoint`).

* The file is fetched by ``huggingface_hub`` into *its* cache (``HF_HUB_CACHE``, default
  ``~/.cache/huggingface/hub``), so a file timm or transformers already downloaded is reused and
  ``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` behave as everywhere else.
* ``model.safetensors`` is preferred, ``pytorch_model.bin`` is the fallback (timm's order).
* Offline (``HF_HUB_OFFLINE=1`` or no network) a cached file is used; without one the
  :class:`~.files.DownloadError` names the repository and the cache folder, in one line. With
  no network huggingface_hub first retries for a while (and logs each retry): only once, for
  the first file; the others are looked up in the cache alone.
"""
from __future__ import annotations

import re
from typing import Optional, Tuple

from .files import DownloadError
from ..version import __version__

__all__ = ['HUB_PREFIX', 'HUB_FILES', 'is_hub_name', 'parse_hub_name', 'resolve_hub_name']

HUB_PREFIX = 'hf-hub:'
#: the weight files looked for in a repository, in order (timm's preference)
HUB_FILES = ('model.safetensors', 'pytorch_model.bin')
_REPO = re.compile(r'[\w.-]{1,96}/[\w.-]{1,96}')


def is_hub_name(path: object) -> bool:
    """True for ``hf-hub:...`` (what :func:`resolve_hub_name` resolves)."""
    return isinstance(path, str) and path.startswith(HUB_PREFIX)


def parse_hub_name(name: str) -> Tuple[str, Optional[str]]:
    """``'hf-hub:timm/iformer_m.in1k@main'`` -> ``('timm/iformer_m.in1k', 'main')``."""
    repo, _, revision = name[len(HUB_PREFIX):].partition('@')
    if not _REPO.fullmatch(repo) or (_ and not revision):
        raise DownloadError(f'{name!r} is not a Hub name; expected hf-hub:ORG/REPO or '
                            'hf-hub:ORG/REPO@REVISION, e.g. hf-hub:timm/iformer_m.in1k')
    return repo, revision or None


def resolve_hub_name(name: str, local_only: bool = False) -> str:
    """The local file of Hub name ``name``: from the Hub cache, downloaded there if needed.

    ``local_only`` never asks the Hub (what the other ranks of a distributed job do after rank 0
    downloaded). Raises :class:`DownloadError` with a one-line message.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError,
                                        LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)
    repo, revision = parse_hub_name(name)
    not_cached = False
    for filename in HUB_FILES:
        try:
            return hf_hub_download(repo, filename, revision=revision,
                                   local_files_only=local_only or not_cached,
                                   library_name='iformer-mm', library_version=__version__)
        except LocalEntryNotFoundError:  # the Hub cannot be asked and the cache has no such file
            not_cached = True  # the next files: the cache only (no second round of retries)
        except EntryNotFoundError:  # the Hub says the repository has no such file
            continue
        except RepositoryNotFoundError:
            raise DownloadError(f'cannot download {name}: the Hub ({constants.ENDPOINT}) has no '
                                f'repository {repo} (or it is private or gated: log in with '
                                '`hf auth login` or set HF_TOKEN)') from None
        except RevisionNotFoundError:
            raise DownloadError(f'cannot download {name}: {repo} has no revision '
                                f'{revision!r}') from None
        except (HfHubHTTPError, OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DownloadError(f'cannot download {name}: {first}') from None
    files = ' or '.join(HUB_FILES)
    if not_cached:
        why = ('offline (HF_HUB_OFFLINE is set)' if constants.HF_HUB_OFFLINE else
               'the Hub was not asked' if local_only else
               f'the Hub ({constants.ENDPOINT}) cannot be reached')
        raise DownloadError(f'cannot load {name}: {why} and the Hub cache {constants.HF_HUB_CACHE} '
                            f'has no {files} of {repo}; run once online, or download the file '
                            'and pass its path')
    raise DownloadError(f'{name}: the Hub repository {repo} has no {files}')

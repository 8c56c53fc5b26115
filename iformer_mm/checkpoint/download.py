"""Checkpoints by URL or Hub name: fetched once into a cache, verified, then read as local files.

Why: OpenMMLab configs name their weights by URL and fetch them on first use; timm names them by
Hugging Face Hub repository. Every loader of this package reads through :func:`resolve_checkpoint`
(via :func:`~iformer_mm.checkpoint.load.safe_load`), so configs, ``tools/test.py``,
``tools/convert.py``, ``init_cfg=dict(type='Pretrained', checkpoint=URL)`` and the exporters take
a URL or ``hf-hub:ORG/REPO`` wherever they take a path. Hub names go through ``huggingface_hub``
into its own cache (:mod:`.hub`); URLs are handled here:

* The cache is the one mmengine and torch hub use, ``torch.hub.get_dir()/checkpoints``
  (``$TORCH_HOME/hub/checkpoints``), under the URL's file name: a file fetched by either is reused.
* A download is written to a hidden temporary sibling and renamed into the cache only after it
  was checked to be a complete checkpoint (all bytes announced, readable zip directory or
  safetensors header): a killed or cut-off transfer, or an HTML error page, never leaves a file
  under the final name.
* Failures raise :class:`DownloadError` (a :class:`~.files.CheckpointError`,
  so every command line reports it as one line) naming the URL, the cache path and what to do.

Standard library (``urllib``) only; proxies from the usual environment variables apply.
"""
from __future__ import annotations

import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Optional

from .files import DownloadError, file_problem, header_problem
from .hub import is_hub_name, resolve_hub_name
from ..utils.fileio import atomic_path
from ..version import __version__

__all__ = ['DownloadError', 'is_url', 'is_remote', 'cache_dir', 'cache_path',
           'resolve_checkpoint', 'download_checkpoint', 'resolve_on_rank_zero_first']

URL_PREFIXES = ('http://', 'https://')
TIMEOUT_S = 60.0          # per blocking socket operation, not for the whole transfer
_CHUNK = 1 << 20


def is_url(path: object) -> bool:
    """True for an http(s) URL (what :func:`resolve_checkpoint` downloads)."""
    return isinstance(path, str) and path.lower().startswith(URL_PREFIXES)


def is_remote(path: object) -> bool:
    """True for what :func:`resolve_checkpoint` fetches: an http(s) URL or an ``hf-hub:`` name."""
    return is_url(path) or is_hub_name(path)


def cache_dir() -> str:
    """The checkpoint cache of torch hub and mmengine: ``torch.hub.get_dir()/checkpoints``."""
    import torch.hub
    return os.path.join(torch.hub.get_dir(), 'checkpoints')


def cache_path(url: str, folder: Optional[str] = None) -> str:
    """Where ``url`` is cached: the URL's file name in ``folder`` (default :func:`cache_dir`)."""
    name = os.path.basename(urllib.parse.urlparse(url).path)
    if not name or name in ('.', '..'):
        raise DownloadError(f'checkpoint URL {url} does not end in a file name; expected e.g. '
                            'https://host/path/iFormer_m.pth')
    return os.path.join(folder or cache_dir(), urllib.parse.unquote(name))


def resolve_checkpoint(path_or_url: str, folder: Optional[str] = None,
                       progress: Optional[bool] = None) -> str:
    """A local path for ``path_or_url``: local paths unchanged, URLs and Hub names through their
    caches.

    A URL whose file is already cached is not fetched again. ``folder`` overrides the cache
    folder of URLs; ``progress`` (default: stderr is a terminal) draws a progress bar on stderr.
    Hub names always use the Hub cache (:mod:`.hub`).
    """
    if is_hub_name(path_or_url):
        return resolve_hub_name(path_or_url)
    if not is_url(path_or_url):
        return path_or_url
    dst = cache_path(path_or_url, folder)
    if not os.path.isfile(dst):
        download_checkpoint(path_or_url, dst, progress)
    return dst


def resolve_on_rank_zero_first(path_or_url: str, folder: Optional[str] = None) -> str:
    """:func:`resolve_checkpoint` for code that *every* rank of a distributed job runs.

    Rank 0 downloads while the others wait at a barrier, then they read its file (as mmengine's
    own URL loader does; a Hub name is then looked up in the Hub cache only, without asking the
    Hub again); outside a process group it is :func:`resolve_checkpoint`.
    """
    if not is_remote(path_or_url):
        return path_or_url
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return resolve_checkpoint(path_or_url, folder)
    if dist.get_rank() == 0:
        try:
            return resolve_checkpoint(path_or_url, folder)
        finally:
            dist.barrier()
    dist.barrier()
    if is_hub_name(path_or_url):
        return resolve_hub_name(path_or_url, local_only=True)
    return resolve_checkpoint(path_or_url, folder)


def _by_hand(dst: str) -> str:
    return (f'tried to cache it at {dst}; offline? download the file elsewhere and place it '
            'there by hand, or pass a local path instead of the URL')


def download_checkpoint(url: str, dst: str, progress: Optional[bool] = None) -> None:
    """Fetch ``url`` to ``dst`` atomically; refuse (and keep nothing) unless it is a checkpoint."""
    folder = os.path.dirname(os.path.abspath(dst))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise DownloadError(f'cannot cache {url}: {folder} cannot be created ({e.strerror or e}); '
                            'set TORCH_HOME to a writable folder or pass a local path') from None
    if progress is None:
        progress = sys.stderr.isatty()
    request = urllib.request.Request(url, headers={'User-Agent': f'iformer-mm/{__version__}'})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            _save(response, url, dst, progress)
    except DownloadError:
        raise
    except urllib.error.HTTPError as e:
        raise DownloadError(f'cannot download {url}: HTTP {e.code} {e.reason}; {_by_hand(dst)}') from None
    except urllib.error.URLError as e:
        raise DownloadError(f'cannot download {url}: {e.reason}; {_by_hand(dst)}') from None
    except (http.client.HTTPException, socket.timeout, ConnectionError) as e:
        raise DownloadError(f'download of {url} failed ({type(e).__name__}: {e}); nothing was '
                            f'cached; {_by_hand(dst)}') from None
    except ValueError as e:  # malformed URL
        raise DownloadError(f'cannot download {url}: {e}') from None
    except OSError as e:  # the cache folder: not writable, disk full
        raise DownloadError(f'cannot cache {url} in {folder} ({e.strerror or e}); set '
                            'TORCH_HOME to a writable folder or pass a local path') from None


def _save(response, url: str, dst: str, progress: bool) -> None:
    """Stream the body into a temporary sibling, verify it, rename it to ``dst``."""
    kind = response.headers.get('Content-Type', '')
    length = response.headers.get('Content-Length')
    total = int(length) if length and length.isdigit() else None
    head = response.read(16)
    problem = header_problem(head) if head else 'the server sent an empty body'
    if problem:
        raise DownloadError(f'{url} did not give a checkpoint ({problem}; Content-Type '
                            f'{kind or "not given"}); nothing was cached; {_by_hand(dst)}')
    sys.stderr.write(f'Downloading {url} to {dst}\n')  # announced once the server answered
    bar = _ProgressBar(os.path.basename(dst), total) if progress else None
    with atomic_path(dst) as tmp:
        received = len(head)
        with open(tmp, 'wb') as f:
            f.write(head)
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                f.write(chunk)
                received += len(chunk)
                if bar:
                    bar.update(received)
        if bar:
            bar.close(received)
        if total is not None and received != total:
            raise DownloadError(f'download of {url} stopped after {received} of {total} bytes; '
                                f'nothing was cached; run again to retry, or {_by_hand(dst)}')
        problem = file_problem(tmp)
        if problem:
            raise DownloadError(f'{url} did not give a complete checkpoint ({problem}); '
                                f'nothing was cached; {_by_hand(dst)}')


class _ProgressBar:
    """``name  42%  12.3/29.1 MB`` redrawn in place on stderr, at most ten times a second."""

    def __init__(self, name: str, total: Optional[int]):
        self.name, self.total, self.last = name, total, 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.1:
            return
        self.last = now
        if self.total:
            text = f'{100 * done // self.total:3d}%  {done / 1e6:.1f}/{self.total / 1e6:.1f} MB'
        else:
            text = f'{done / 1e6:.1f} MB'
        sys.stderr.write(f'\r{self.name}  {text}')
        sys.stderr.flush()

    def close(self, done: int) -> None:
        self.last = 0.0
        self.update(done)
        sys.stderr.write('\n')

#!/usr/bin/env python
"""Write configs/*/metafile.yml and model-index.yml from the release table and tools/flops.py.

    python tools/make_model_index.py            # (re)write the files
    python tools/make_model_index.py --check    # exit 1 and name the files that are out of date
See iformer_mm.zoo.metafiles.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from iformer_mm.utils.cli import quiet_known_warnings  # noqa: E402

quiet_known_warnings()


def main(argv=None) -> int:
    from iformer_mm.utils.cli import ToolParser
    parser = ToolParser(prog='make_model_index.py', description=__doc__.split('\n\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='compare with the committed files instead of writing them')
    args = parser.parse_args(argv)
    from iformer_mm.zoo.metafiles import metafile_texts, write_metafiles
    texts = metafile_texts()
    if args.check:
        stale = []
        for rel, text in texts.items():
            path = os.path.join(ROOT, rel)
            if not os.path.isfile(path) or open(path, encoding='utf-8').read() != text:
                stale.append(rel)
        if stale:
            print(f'make_model_index.py: error: out of date: {", ".join(stale)} (run python tools/make_model_index.py)',
                  file=sys.stderr)
            return 1
        print(f'{len(texts)} files up to date')
        return 0
    for path in write_metafiles(ROOT, texts):
        print(os.path.relpath(path, ROOT))
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""The benchmark harness (``tools/benchmark.py``): developer tooling, in the repository only.

Not part of the installed package: it measures the library (ours against timm, exported
artifacts per runtime, GPU training throughput) and writes the committed results beside it.

* :mod:`.cli`               the command: ``latency``, ``deploy``, ``detector``, ``pareto`` and
                            ``train-throughput`` modes;
* :mod:`.latency`           PyTorch CPU latency per backend (+ :mod:`.latency_report`, :mod:`.latency_plot`);
* :mod:`.deploy_latency`    exported-model latency per runtime and precision;
* :mod:`.pareto`            iFormer against its mobile peers on each runtime's accuracy-latency
                            front (+ :mod:`.pareto_models`, :mod:`.pareto_report`, :mod:`.pareto_plot`);
* :mod:`.train_throughput`  GPU training images/s (+ :mod:`.throughput_report`);
* :mod:`.timing`, :mod:`.machine`, :mod:`.timm_twins`, :mod:`.argtypes`: what they share.
"""

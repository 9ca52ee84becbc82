"""Bridges to other tools' files: lm-evaluation-harness results into the prediction store.

Each bridge reads another tool's output format, checks it as strictly as
xcal's own readers check the XTREME files (errors name the file and line),
and writes ordinary store runs, so everything downstream (``xcal analyze``,
``xcal.stats``) treats imported runs like runs of ``xcal infer``.
"""

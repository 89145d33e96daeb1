"""The course website: every chapter executed and rendered, the guides, model cards and benchmarks.

`grader site --out site/` stages a Sphinx source tree (`pages.stage`), executes the chapters
in parallel into MyST-NB's cache (`execution.execute`; only chapters whose code changed run
again), and builds the HTML with every warning an error (`build`).
"""

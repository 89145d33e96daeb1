"""Sphinx configuration of the course site (copied into the staged source by `grader site`)."""

import os

project = "JAX and Generative AI for Science"
author = "the course's authors"
copyright = "the course's authors"

extensions = ["myst_nb", "sphinx.ext.mathjax"]
exclude_patterns = ["**/_files/**", "jupyter_execute", ".jupyter_cache"]
suppress_warnings = ["mystnb.unknown_mime_type"]

# MyST: $...$ math in the chapters' markdown, heading anchors for links within a page.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# Chapters were executed into this cache by `grader site`; a miss executes here, and any
# error fails the build.
nb_execution_mode = "cache"
nb_execution_cache_path = os.environ["COURSE_SITE_CACHE"]
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
nb_render_image_options = {"alt": "figure"}

# MathJax 3 from the django-static-mathjax package, one file with its fonts: no CDN.
mathjax_path = "mathjax/tex-svg-full.js"
mathjax3_config = {"svg": {"fontCache": "global"}}

html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["_static"]
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
}
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False

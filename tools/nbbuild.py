"""Build a notebook from a compact cell list: used while writing notebooks, then executed.

Usage (from the repo root): python tools/nbbuild.py SPEC.py OUT.ipynb
SPEC.py defines CELLS = [("md", "..."), ("code", "..."), ...].
"""
import runpy
import sys

import nbformat

spec = runpy.run_path(sys.argv[1])
nb = nbformat.v4.new_notebook()
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.metadata["language_info"] = {"name": "python"}
for kind, src in spec["CELLS"]:
    src = src.strip("\n")
    nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src))
nbformat.write(nb, sys.argv[2])

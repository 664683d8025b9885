"""Refuse answers the template cannot turn into a working adapter package.

The rules live in ``provara_names.problems``; cookiecutter renders their verdict into this
script, which only reports it.
"""

import json
import sys

PROBLEMS: list[str] = json.loads(r"""{{ cookiecutter | template_problems | tojson }}""")

if PROBLEMS:
    print("Cannot generate the adapter package:", file=sys.stderr)
    for problem in PROBLEMS:
        print(f"  - {problem}", file=sys.stderr)
    sys.exit(1)

"""Keep the files of the chosen wire shape, drop the others, and say what comes next."""

import shutil
from pathlib import Path

NAME = "{{ cookiecutter.provider_name }}"
DIST = "{{ cookiecutter.__dist }}"
SLUG = "{{ cookiecutter.__slug }}"
MODULE = "{{ cookiecutter.__module }}"
ADAPTER = "{{ cookiecutter.__class }}"
ENV = "{{ cookiecutter.__env }}"
SHAPE = "{{ cookiecutter.wire_shape }}"
WIRE = "{{ cookiecutter.__wire }}"
KIT = "{{ cookiecutter.__kit }}"  # the checkout the template came from, if any

shapes = Path("_shapes")
chosen = shapes / SHAPE
for name in ("provider.py", "dialect.py"):
    (chosen / name).replace(Path("src", MODULE, name))
(chosen / "test_provider.py").replace(Path("tests", "test_provider.py"))
(chosen / "fixtures").replace(Path("tests", "fixtures"))
shutil.rmtree(shapes)

print(f"""
Created {DIST}/ for {NAME} ({SHAPE} wire):
  provider  {SLUG}  ({MODULE}.{ADAPTER})
  key       {ENV}_API_KEY, base URL {ENV}_BASE_URL
  dialect   {WIRE}  (for the conformance suite)

Next:
  cd {DIST}
  python -m pip install -e {KIT or "path/to/provara-kit"}
  python -m pip install -e ".[test]"
  pytest                               # your tests and every conformance check
Then follow README.md to adapt the adapter to the real API.
""")

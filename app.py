"""CMCD's Gradio app, the Hugging Face Spaces entry point: the app itself is cmcd/app/main.py, so
that an installed package starts it too (`cmcd app`). `import app` gives that module itself."""

import sys

from cmcd.app import main

if __name__ == "__main__":
    main.launch()
else:  # tests and tools that `import app` see (and may patch) the app module itself
    sys.modules[__name__] = main

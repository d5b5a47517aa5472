import sys

from cmcd.cli import main

sys.exit(main())

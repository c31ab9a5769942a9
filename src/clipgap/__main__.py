import sys

from clipgap.cli import main

sys.exit(main())

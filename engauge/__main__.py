import sys

from engauge.cli import main

sys.exit(main())

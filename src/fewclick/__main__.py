from fewclick.cli import main

raise SystemExit(main())

from medscribe.cli import main

raise SystemExit(main())

from medscribe_local.cli import main

raise SystemExit(main())

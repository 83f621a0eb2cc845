from clipbridge.cli import main

raise SystemExit(main())

from bottle_dash.cli import main

raise SystemExit(main())

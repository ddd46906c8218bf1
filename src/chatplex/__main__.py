from chatplex.cli import main

raise SystemExit(main())

from rtai.cli import main

raise SystemExit(main())

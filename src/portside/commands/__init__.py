"""`portside` subcommands beyond serving: accounts, projects and robots."""

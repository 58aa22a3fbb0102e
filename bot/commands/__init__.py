"""One module per CLI command; `bot.cli.COMMANDS` lists them."""

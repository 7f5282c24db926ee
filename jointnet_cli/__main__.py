from jointnet_cli.cli.app import main

main()

from arbkit.cli.app import main

main()

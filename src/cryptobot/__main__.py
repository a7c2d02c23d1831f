from cryptobot.cli.app import main

main()

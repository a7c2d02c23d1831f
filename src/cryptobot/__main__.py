from cryptobot.cli.app import run

run()

"""DAgger with the scripted expert, N rounds as one command.

Same as the installed command; see ``s2robot.commands.dagger``."""

from s2robot.commands.dagger import main

if __name__ == "__main__":
    main()
